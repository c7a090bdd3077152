#!/usr/bin/env bash
# Checks the images hack/build-images.sh wrote to target/images, for every binary of IMAGES
# (hack/images.sh); any failure fails the script, nothing is skipped:
#   - the OCI layout has the tag, its layers are valid tar files (GNU tar reads them to the end),
#     <binary>.oci.tar and <binary>.docker.tar name ghcr.io/kubedb-rs/<binary>:<version>;
#   - the image config: user 65532:65532, entrypoint /usr/local/bin/<binary>, cmd run, workdir /,
#     labels title, description, version, licenses, created (and revision when built in git);
#   - unpacked rootless with umoci, the root filesystem has no shell, the binary's libraries all
#     resolve inside it (its own loader, --list), and `<binary> version` run as uid/gid 65532 in a
#     chroot of only that root filesystem prints "<binary> <version>" and exits 0;
#   - the chart charts/<binary>, when there is one, pulls exactly that name: image.registry,
#     image.repository and appVersion (the default tag);
#   - the Containerfile has a final stage for the binary.
# chroot needs root (or passwordless sudo).
set -euo pipefail
export LC_ALL=C
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=hack/images.sh
source hack/images.sh

fail() { echo "check-images: $*" >&2; exit 1; }
trap 'echo "check-images: failed at line $LINENO: $BASH_COMMAND" >&2' ERR
for tool in umoci skopeo chroot tar python3; do
  command -v "$tool" >/dev/null || fail "'$tool' is missing (hack/install-image-tools.sh installs umoci and skopeo)"
done
as_root=()
if [[ $(id -u) -ne 0 ]]; then
  sudo -n true 2>/dev/null || fail "chroot needs root: run as root or with passwordless sudo"
  as_root=(sudo -n)
fi

version="$(workspace_version)"
layout="$IMAGES_DIR/oci"
[[ -f "$layout/index.json" ]] || fail "no images in $IMAGES_DIR: run 'make images' (or PROFILE=debug hack/build-images.sh)"
tags="$(umoci ls --layout "$layout")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$SECONDS
for bin in "${IMAGES[@]}"; do
  name="$IMAGE_PREFIX/$bin:$version"
  grep -qx "$bin" <<<"$tags" || fail "$layout has no tag '$bin' (IMAGES lists it): rebuild with hack/build-images.sh"
  for archive in "$bin.oci.tar" "$bin.docker.tar"; do
    [[ -s "$IMAGES_DIR/$archive" ]] || fail "$IMAGES_DIR/$archive is missing"
  done

  # Layers, archives and config, read from the files themselves.
  skopeo inspect --raw "oci:$layout:$bin" >"$work/manifest.json"
  skopeo inspect --config "oci:$layout:$bin" >"$work/config.json"
  tar -xOf "$IMAGES_DIR/$bin.docker.tar" manifest.json >"$work/docker-manifest.json"
  tar -xOf "$IMAGES_DIR/$bin.oci.tar" index.json >"$work/oci-archive-index.json"
  python3 - "$bin" "$version" "$name" "$IMAGE_UID" "$work" <<'EOF' || exit 1
import json, re, sys
bin, version, name, uid, work = sys.argv[1:]
load = lambda f: json.load(open(f"{work}/{f}"))
config = load("config.json")["config"]
labels = config.get("Labels") or {}
want = {
    "User": f"{uid}:{uid}",
    "Entrypoint": [f"/usr/local/bin/{bin}"],
    "Cmd": ["run"],
    "WorkingDir": "/",
}
errors = [f"config {k} is {config.get(k)!r}, want {v!r}" for k, v in want.items() if config.get(k) != v]
for key, value in {"title": bin, "version": version}.items():
    if labels.get(f"org.opencontainers.image.{key}") != value:
        errors.append(f"label org.opencontainers.image.{key} is {labels.get(f'org.opencontainers.image.{key}')!r}, want {value!r}")
for key in ["description", "licenses", "created"]:
    if not labels.get(f"org.opencontainers.image.{key}"):
        errors.append(f"label org.opencontainers.image.{key} is missing")
revision = labels.get("org.opencontainers.image.revision")
if revision is not None and not re.fullmatch(r"[0-9a-f]{40}(-dirty)?", revision):
    errors.append(f"label org.opencontainers.image.revision is {revision!r}")
tags = [t for entry in load("docker-manifest.json") for t in entry.get("RepoTags") or []]
if tags != [name]:
    errors.append(f"{bin}.docker.tar is tagged {tags}, want [{name!r}]")
refs = [m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in load("oci-archive-index.json")["manifests"]]
if refs != [name]:
    errors.append(f"{bin}.oci.tar names {refs}, want [{name!r}]")
layers = load("manifest.json")["layers"]
if len(layers) != 2:
    errors.append(f"{len(layers)} layers, want 2 (base, binary)")
for error in errors:
    print(f"check-images: {bin}: {error}", file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
  python3 -c '
import json, sys
for layer in json.load(open(sys.argv[1]))["layers"]:
    print(layer["digest"].replace(":", "/"))' "$work/manifest.json" >"$work/layers"
  while read -r digest; do
    tar -tzf "$layout/blobs/$digest" >/dev/null 2>"$work/tar.err" ||
      fail "$bin: layer $digest is not a valid tar.gz: $(head -1 "$work/tar.err")"
  done <"$work/layers"

  # The root filesystem, as a runtime gets it.
  bundle="$work/$bin"
  umoci unpack --rootless --image "$layout:$bin" "$bundle" >/dev/null
  rootfs="$bundle/rootfs"
  python3 - "$bin" "$IMAGE_UID" "$bundle/config.json" <<'EOF' || exit 1
import json, sys
bin, uid, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
process = json.load(open(path))["process"]
got = (process["args"], process["user"]["uid"], process["user"]["gid"], process["cwd"])
want = ([f"/usr/local/bin/{bin}", "run"], uid, uid, "/")
if got != want:
    sys.exit(f"check-images: {bin}: runtime config (args, uid, gid, cwd) is {got}, want {want}")
EOF
  for shell in bin/sh usr/bin/sh bin/bash; do
    [[ ! -e "$rootfs/$shell" ]] || fail "$bin: the image has a shell ($shell); it should hold only the binary and its libraries"
  done
  loader=""
  for candidate in "$rootfs"/lib64/ld-linux-*.so.* "$rootfs"/lib/ld-linux-*.so.*; do
    [[ -e "$candidate" ]] && { loader="$candidate"; break; }
  done
  [[ -n "$loader" ]] || fail "$bin: no dynamic loader in the image"
  libdirs="$(find "$rootfs" -name '*.so*' -printf '%h\n' | sort -u | paste -sd:)"
  "$loader" --inhibit-cache --library-path "$libdirs" --list "$rootfs/usr/local/bin/$bin" >"$work/libs" 2>&1 ||
    fail "$bin: the image's loader cannot list its libraries: $(head -3 "$work/libs")"
  outside="$(grep '=>' "$work/libs" | grep -v "=> $rootfs/" || true)"
  [[ -z "$outside" ]] || fail "$bin: libraries not in the image: $(echo "$outside" | tr -s '\t\n ' ' ')"

  got="$("${as_root[@]}" chroot --userspec="$IMAGE_UID:$IMAGE_UID" "$rootfs" "/usr/local/bin/$bin" version 2>&1)" ||
    fail "$bin: 'chroot --userspec=$IMAGE_UID:$IMAGE_UID rootfs /usr/local/bin/$bin version' failed: $got"
  [[ "$got" == "$bin $version" ]] || fail "$bin: '$bin version' in the image printed '$got', want '$bin $version'"

  # The chart that deploys it asks for this very name.
  chart="charts/$bin"
  if [[ -d "$chart" ]]; then
    chart_image="$(python3 - "$chart" <<'EOF'
import re, sys
chart = sys.argv[1]
def scalar(text, key, indent=""):
    m = re.search(rf"^{indent}{key}:\s*\"?([^\"\s#]*)\"?", text, re.M)
    return m.group(1) if m else ""
values = open(f"{chart}/values.yaml").read()
image = values[values.index("\nimage:"):]
tag = scalar(image, "tag", "  ") or scalar(open(f"{chart}/Chart.yaml").read(), "appVersion")
print(f"{scalar(image, 'registry', '  ')}/{scalar(image, 'repository', '  ')}:{tag}")
EOF
)"
    [[ "$chart_image" == "$name" ]] || fail "$bin: $chart deploys '$chart_image' by default, the image is '$name'"
  fi
  grep -qx "FROM runtime AS $bin" Containerfile ||
    fail "$bin: Containerfile has no final stage 'FROM runtime AS $bin' (add one like the others)"

  size="$(du -sm "$rootfs" | cut -f1)"
  echo "ok   $name: config, labels, archives, layers; rootfs ${size} MB, no shell; '$got' as uid $IMAGE_UID in a chroot${chart_image:+; $chart default image}"
  chart_image=""
  rm -rf "$bundle"
done
echo "check-images: ${#IMAGES[@]} images checked in $((SECONDS - start)) s"
