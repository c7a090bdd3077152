# KubeDB MSSQLServer and Singlestore operators in Rust. `make help` lists the targets.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
CRD_DIR := charts/kubedb-crds/templates
TOOLS_BIN := $(CURDIR)/.tools/bin
export PATH := $(TOOLS_BIN):$(PATH)

.PHONY: help build test unit lint fmt generate check-generated chart-lint tools demo e2e bench images image-tools debug-images check-images

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

build: ## Build every crate
	$(CARGO) build --workspace --all-targets

tools: ## Install the static helm binary into .tools/bin
	hack/install-tools.sh

test: tools lint check-generated chart-lint check-images unit ## Everything CI runs: lint, generated-file drift, chart checks, image checks, all tests
# The e2e scenario that runs the operators from their images (e2e/tests/images.rs) must not skip.
test: export E2E_REQUIRE_IMAGES := 1

unit: ## Run the workspace's tests (the e2e suite on kube-sim included)
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace --no-fail-fast

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	$(CARGO) fmt --all

chart-lint: tools ## helm lint + template of every chart (default and ci/ values), server-side dry run on kube-sim
	$(CARGO) build -q -p kube-sim
	hack/chart-lint.sh

generate: ## Write the CRDs (from the Rust types) into the kubedb-crds chart
	$(CARGO) run -q -p provisioner -- crd > $(CRD_DIR)/provisioner-crds.yaml
	$(CARGO) run -q -p ops-manager -- crd > $(CRD_DIR)/ops-manager-crds.yaml

check-generated: ## Fail when the committed CRDs differ from the Rust types
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(CARGO) run -q -p provisioner -- crd > $$tmp/provisioner-crds.yaml; \
	$(CARGO) run -q -p ops-manager -- crd > $$tmp/ops-manager-crds.yaml; \
	for f in provisioner-crds.yaml ops-manager-crds.yaml; do \
	  diff -u $(CRD_DIR)/$$f $$tmp/$$f >/dev/null || { \
	    echo "$(CRD_DIR)/$$f is out of date with the Rust types: run 'make generate' and commit the result" >&2; exit 1; }; \
	done; echo "generated CRDs are up to date"

demo: tools ## The embedded cluster, both operators, two databases and their version updates; KEEP=1 keeps it running
	$(CARGO) build -q --workspace --bins
	target/debug/demo $(if $(KEEP),--keep)

e2e: tools ## End-to-end suite: kube-sim by default, the cluster of E2E_KUBECONFIG when set
	$(CARGO) build --workspace --bins
	@if command -v umoci >/dev/null && command -v skopeo >/dev/null; then PROFILE=debug BUILD=0 hack/build-images.sh; \
	else echo "e2e: no umoci/skopeo (make image-tools installs them): tests/images.rs will skip"; fi
	$(CARGO) test -p e2e --no-fail-fast -- --test-threads=1

image-tools: ## Install umoci and skopeo (Debian packages) when missing
	hack/install-image-tools.sh

images: image-tools ## OCI images of the operators in target/images, no daemon needed (release build; PROFILE=debug: target/debug)
	hack/build-images.sh

debug-images: image-tools ## The images from the debug binaries (what make test checks and the e2e suite runs)
	$(CARGO) build --workspace --bins
	PROFILE=debug BUILD=0 hack/build-images.sh

check-images: debug-images ## Each image: config, labels, archives, and `<binary> version` as uid 65532 in a chroot of only its rootfs
	hack/check-images.sh

bench: ## Benchmarks of the release builds on kube-sim (docs/performance.md); BENCH_QUICK=1 for a short smoke run
	$(CARGO) build --release -p kube-sim -p provisioner -p ops-manager -p db-agent -p bench
	target/release/bench
