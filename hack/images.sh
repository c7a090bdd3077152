# shellcheck shell=bash
# The operator images, in one place: sourced by hack/build-images.sh and hack/check-images.sh.
# One image per binary of this workspace, named $IMAGE_PREFIX/<binary>:<workspace version>;
# to ship another binary as an image, add its name to IMAGES (and nothing else).
IMAGES=(provisioner ops-manager db-agent)

# Where the charts (charts/<binary>/values.yaml image.registry/image.repository) expect them.
IMAGE_PREFIX="ghcr.io/kubedb-rs"
# Output: target/images/oci (an OCI layout with one tag per binary), <binary>.oci.tar and
# <binary>.docker.tar.
IMAGES_DIR="${IMAGES_DIR:-${CARGO_TARGET_DIR:-$root/target}/images}"

# The image user: distroless' "nonroot", as the charts' securityContext expects.
IMAGE_UID=65532

# [workspace.package] version of the workspace Cargo.toml: what `<binary> version` prints.
workspace_version() {
  awk '/^\[/ { inside = ($0 == "[workspace.package]") }
       inside && /^version *=/ { gsub(/^version *= *"|".*$/, ""); print; exit }' "$root/Cargo.toml"
}
