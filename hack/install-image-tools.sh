#!/usr/bin/env bash
# Installs the tools `make images` and `make check-images` need, from Debian's archive, when missing:
#   umoci   builds and unpacks OCI image layouts without a container daemon (rootless)
#   skopeo  converts them to oci-archive / docker-archive files and pushes them to registries
# binutils (strip) and libc-bin (ldd) come with any Debian toolchain; chroot is in coreutils.
# Idempotent: does nothing when both tools are on PATH.
set -euo pipefail

need=()
command -v umoci >/dev/null || need+=(umoci)
command -v skopeo >/dev/null || need+=(skopeo)
if ((${#need[@]} == 0)); then
  echo "umoci $(umoci --version | awk '{print $3}') and skopeo $(skopeo --version | awk '{print $3}') already installed"
  exit 0
fi
command -v apt-get >/dev/null || {
  echo "install-image-tools: ${need[*]} missing and no apt-get here: install them with your package manager" >&2
  exit 1
}
sudo_cmd=()
[[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "installed ${need[*]}: umoci $(umoci --version | awk '{print $3}'), skopeo $(skopeo --version | awk '{print $3}')"
