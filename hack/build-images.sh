#!/usr/bin/env bash
# Builds an OCI image per binary of IMAGES (hack/images.sh) without a container daemon, with
# umoci and skopeo (hack/install-image-tools.sh), from binaries cargo built:
#   base layer    the binaries' shared-library closure (ldd), /etc/passwd and /etc/group with
#                 uid/gid 65532 "nonroot", /tmp (1777), /usr/local/bin and Debian's CA bundle
#   binary layer  the stripped binary at /usr/local/bin/<binary>
#   config        user 65532:65532, entrypoint /usr/local/bin/<binary>, cmd run, workdir /,
#                 org.opencontainers.image.* labels
# Output in target/images: oci/ (an OCI layout, one tag per binary), <binary>.oci.tar (oci-archive)
# and <binary>.docker.tar (docker-archive tagged ghcr.io/kubedb-rs/<binary>:<version>).
#
# Environment:
#   PROFILE=release (default) | debug | <any cargo profile>: which target/<dir> the binaries come from
#   BUILD=0              do not run cargo; package the binaries already built (fail if one is missing)
#   SOURCE_DATE_EPOCH    timestamp of every file and of the image (default: the HEAD commit's time),
#                        so the same commit and binaries give the same image digests
#   IMAGE_SOURCE         org.opencontainers.image.source (default: `git remote get-url origin`)
set -euo pipefail
umask 022
export LC_ALL=C
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=hack/images.sh
source hack/images.sh

die() { echo "build-images: $*" >&2; exit 1; }
trap 'echo "build-images: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

for tool in umoci skopeo strip ldd tar python3; do
  command -v "$tool" >/dev/null || die "'$tool' is missing (hack/install-image-tools.sh installs umoci and skopeo)"
done

profile="${PROFILE:-release}"
case "$profile" in
  debug | dev) cargo_profile=dev; profile_dir=debug ;;
  *) cargo_profile="$profile"; profile_dir="$profile" ;;
esac
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin_dir="$target_dir/$profile_dir"

version="$(workspace_version)"
[[ -n "$version" ]] || die "no [workspace.package] version in Cargo.toml"

# Each listed binary must be a bin target of this workspace; its package's description and
# license become labels.
metadata="$(cargo metadata --no-deps --format-version 1 --offline)"
declare -A description license
for bin in "${IMAGES[@]}"; do
  line="$(python3 -c '
import json, sys
bin = sys.argv[1]
for p in json.load(sys.stdin)["packages"]:
    if any(t["name"] == bin and "bin" in t["kind"] for t in p["targets"]):
        print((p.get("license") or "") + "\t" + (p.get("description") or ""))
        break
' "$bin" <<<"$metadata")"
  [[ -n "$line" ]] || die "IMAGES lists '$bin', but no package of this workspace has a binary named '$bin'"
  license[$bin]="${line%%$'\t'*}"
  description[$bin]="${line#*$'\t'}"
done

if [[ "${BUILD:-1}" != 0 ]]; then
  bin_args=()
  for bin in "${IMAGES[@]}"; do bin_args+=(--bin "$bin"); done
  echo "build-images: cargo build --profile $cargo_profile ${bin_args[*]}"
  cargo build --profile "$cargo_profile" "${bin_args[@]}"
fi
for bin in "${IMAGES[@]}"; do
  [[ -x "$bin_dir/$bin" ]] ||
    die "$bin_dir/$bin is missing (IMAGES lists '$bin'): build it with cargo build --profile $cargo_profile --bin $bin"
done

if [[ -z "${SOURCE_DATE_EPOCH:-}" ]]; then
  SOURCE_DATE_EPOCH="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
fi
created="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
revision=""
if git rev-parse --verify -q HEAD >/dev/null 2>&1; then
  revision="$(git rev-parse HEAD)"
  git diff --quiet HEAD -- 2>/dev/null || revision="$revision-dirty"
fi
source_url="${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || true)}"
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  *) arch="$(uname -m)" ;;
esac

out_tmp="$IMAGES_DIR.tmp"
rm -rf "$out_tmp"
mkdir -p "$out_tmp"
work="$(mktemp -d)"
trap 'rm -rf "$work" "$out_tmp"' EXIT

# A reproducible, valid tar of a staging directory: sorted names, fixed mtime, owner root, the
# end-of-archive blocks (`umoci insert` of Debian's umoci 0.4.7 omits them, which GNU tar and
# Go's archive/tar reject at the last file; umoci issue #436), added to the image verbatim.
layer_tar() {
  local dir="$1" out="$2"
  find "$dir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  # shellcheck disable=SC2046
  tar --create --file="$out" --directory="$dir" --format=gnu --sort=name \
    --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
    $(cd "$dir" && ls -A)
}

# Base layer: every shared library the binaries load, by ldd, with the loader.
base="$work/base"
mkdir -p "$base/etc/ssl/certs" "$base/tmp" "$base/usr/local/bin"
chmod 1777 "$base/tmp"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
  "$IMAGE_UID" "$IMAGE_UID" >"$base/etc/passwd"
printf 'root:x:0:\nnonroot:x:%s:\n' "$IMAGE_UID" >"$base/etc/group"
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[[ -s "$ca_bundle" ]] || die "$ca_bundle is missing (apt-get install ca-certificates)"
cp -L "$ca_bundle" "$base/etc/ssl/certs/"
libs=()
for bin in "${IMAGES[@]}"; do
  deps="$(ldd "$bin_dir/$bin" 2>&1)" || {
    grep -q 'not a dynamic executable' <<<"$deps" && continue
    die "ldd $bin_dir/$bin failed: $deps"
  }
  if grep -q 'not found' <<<"$deps"; then
    die "$bin needs a library this machine lacks: $(grep 'not found' <<<"$deps" | tr -s '\t ' ' ')"
  fi
  while read -r lib; do libs+=("$lib"); done < <(grep -o '/[^ ]*' <<<"$deps")
done
for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do
  cp -L --parents "$lib" "$base/"
done
layer_tar "$base" "$work/base.tar"

history=(--history.created "$created" --history.author "hack/build-images.sh")
layout="$out_tmp/oci"
umoci init --layout "$layout"
umoci new --image "$layout:base"
umoci raw add-layer --image "$layout:base" "${history[@]}" \
  --history.created_by "base: ldd closure ($(printf '%s ' "${libs[@]}" | xargs -r -n1 basename | sort -u | xargs)), passwd/group (nonroot $IMAGE_UID), /tmp, CA bundle" \
  "$work/base.tar"

for bin in "${IMAGES[@]}"; do
  stage="$work/bin-$bin"
  mkdir -p "$stage/usr/local/bin"
  strip --strip-all -o "$stage/usr/local/bin/$bin" "$bin_dir/$bin"
  chmod 0755 "$stage/usr/local/bin/$bin"
  layer_tar "$stage" "$work/$bin.tar"
  umoci raw add-layer --image "$layout:base" --tag "$bin" "${history[@]}" \
    --history.created_by "stripped $profile_dir/$bin at /usr/local/bin/$bin" "$work/$bin.tar"
  labels=(
    --config.label "org.opencontainers.image.title=$bin"
    --config.label "org.opencontainers.image.description=${description[$bin]}"
    --config.label "org.opencontainers.image.version=$version"
    --config.label "org.opencontainers.image.licenses=${license[$bin]}"
    --config.label "org.opencontainers.image.created=$created"
  )
  [[ -n "$revision" ]] && labels+=(--config.label "org.opencontainers.image.revision=$revision")
  [[ -n "$source_url" ]] && labels+=(--config.label "org.opencontainers.image.source=$source_url")
  umoci config --image "$layout:$bin" --no-history --created "$created" \
    --os linux --architecture "$arch" \
    --config.user "$IMAGE_UID:$IMAGE_UID" --config.workingdir / \
    --config.env PATH=/usr/local/bin \
    --config.entrypoint "/usr/local/bin/$bin" --config.cmd run \
    "${labels[@]}"
done
umoci rm --image "$layout:base"
umoci gc --layout "$layout"

for bin in "${IMAGES[@]}"; do
  name="$IMAGE_PREFIX/$bin:$version"
  # oci-archive: skopeo's own writer stamps the tar headers with the current time, so copy to a
  # one-image layout and tar that reproducibly.
  skopeo --insecure-policy copy -q "oci:$layout:$bin" "oci:$work/archive-$bin:$name"
  layer_tar "$work/archive-$bin" "$out_tmp/$bin.oci.tar"
  skopeo --insecure-policy copy -q "oci:$layout:$bin" "docker-archive:$out_tmp/$bin.docker.tar:$name"
done

chmod -R a+rX "$out_tmp" # umoci writes index.json 0600
rm -rf "$IMAGES_DIR"
mv "$out_tmp" "$IMAGES_DIR"
[[ -n "$source_url" ]] || echo "build-images: no git remote 'origin' and no IMAGE_SOURCE: label org.opencontainers.image.source left out"
python3 - "$IMAGES_DIR" "$IMAGE_PREFIX" "$version" "${IMAGES[@]}" <<'EOF'
import json, os, sys
out, prefix, version, bins = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
layout = os.path.join(out, "oci")
blob = lambda d: os.path.join(layout, "blobs", *d.split(":"))
index = json.load(open(os.path.join(layout, "index.json")))
mib = lambda n: f"{n / 2**20:.1f} MiB"
for m in index["manifests"]:
    bin = m["annotations"]["org.opencontainers.image.ref.name"]
    layers = json.load(open(blob(m["digest"])))["layers"]
    sizes = " + ".join(mib(l["size"]) for l in layers)
    print(f"{prefix}/{bin}:{version}  {m['digest'][:19]}  layers (gzip) {sizes}"
          f"  {bin}.oci.tar {mib(os.path.getsize(os.path.join(out, bin + '.oci.tar')))}"
          f"  {bin}.docker.tar {mib(os.path.getsize(os.path.join(out, bin + '.docker.tar')))}")
EOF
echo "build-images: images in $IMAGES_DIR (from $bin_dir)"
