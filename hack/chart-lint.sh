#!/usr/bin/env bash
# Lints every chart and proves its rendered objects are accepted by an API server:
#   helm lint and helm template, with default values and with ci/nondefault-values.yaml, then a
#   server-side dry run (kubectl apply --dry-run=server) of every rendering against kube-sim, with
#   the kubedb-crds chart applied first so the catalog's custom resources validate.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
helm="$root/.tools/bin/helm"
kubectl="$root/.tools/bin/kubectl"
[[ -x "$helm" && -x "$kubectl" ]] || { echo "chart-lint: run hack/install-tools.sh first" >&2; exit 1; }
kube_sim="${KUBE_SIM:-$root/target/debug/kube-sim}"
[[ -x "$kube_sim" ]] || cargo build -q -p kube-sim

work="$(mktemp -d)"
sim_pid=""
cleanup() { [[ -n "$sim_pid" ]] && kill "$sim_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$kube_sim" serve --listen 127.0.0.1:0 --kubeconfig-out "$work/kubeconfig" >"$work/sim.out" 2>"$work/sim.err" &
sim_pid=$!
for _ in $(seq 100); do grep -q '^kube-sim ready' "$work/sim.out" && break; sleep 0.1; done
grep -q '^kube-sim ready' "$work/sim.out" || { echo "chart-lint: kube-sim did not start:" >&2; cat "$work/sim.err" >&2; exit 1; }
export KUBECONFIG="$work/kubeconfig"

"$kubectl" create namespace kubedb >/dev/null
"$kubectl" apply -f hack/testdata/servicemonitor-crd.yaml >/dev/null
"$helm" template kubedb-crds charts/kubedb-crds | "$kubectl" apply -f - >/dev/null
for crd in $("$kubectl" get crd -o name); do
  "$kubectl" wait --for=condition=Established --timeout=30s "$crd" >/dev/null
done

failed=0
for chart in charts/*/; do
  chart="${chart%/}"; name="$(basename "$chart")"
  variants=(default)
  [[ -f "$chart/ci/nondefault-values.yaml" ]] && variants+=(nondefault)
  for variant in "${variants[@]}"; do
    args=()
    [[ "$variant" == nondefault ]] && args=(-f "$chart/ci/nondefault-values.yaml")
    label="$name ($variant values)"
    if ! "$helm" lint --strict "$chart" "${args[@]}" >"$work/lint.out" 2>&1; then
      echo "FAIL helm lint $label"; cat "$work/lint.out"; failed=1; continue
    fi
    if ! "$helm" template "$name" "$chart" --namespace kubedb "${args[@]}" >"$work/rendered.yaml" 2>"$work/template.err"; then
      echo "FAIL helm template $label"; cat "$work/template.err"; failed=1; continue
    fi
    if ! "$kubectl" apply --dry-run=server -n kubedb -f "$work/rendered.yaml" >"$work/apply.out" 2>&1; then
      echo "FAIL server-side dry run $label"; cat "$work/apply.out"; failed=1; continue
    fi
    echo "ok   $label: lint, template, server-side dry run ($(grep -c '^kind:' "$work/rendered.yaml") objects)"
  done
done
exit "$failed"
