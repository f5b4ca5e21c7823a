# Zeroscale developer entry points. `make up` and `make test` are the two a newcomer needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export ZEROSCALE_CACHE ?= $(HOME)/.cache/zeroscale
CARGO ?= cargo

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: deps
deps: ## install what this machine lacks (Debian packages; checks Go and Rust); fast when all is there
	bash scripts/install-deps.sh

.PHONY: build
build: ## build every Rust binary (debug)
	$(CARGO) build --workspace --bins

.PHONY: up
up: deps ## local cluster + Zeroscale + the hello function, then print a curl
	bash scripts/up.sh

.PHONY: down
down: ## tear down everything `make up` started
	bash scripts/down.sh

.PHONY: cluster-up
cluster-up: deps ## start the local cluster: a real one-node Kubernetes (control plane, containerd, kubelet, kube-proxy, CoreDNS, registry)
	bash e2e/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## stop the local cluster and remove everything it created
	bash e2e/cluster/down.sh

.PHONY: cluster-status
cluster-status: ## show what runs in the local cluster
	bash e2e/cluster/status.sh

.PHONY: cluster-smoke
cluster-smoke: ## check the running local cluster: pods, Services, DNS, OOM kills, logs/exec (e2e/cluster/smoke.sh)
	bash e2e/cluster/smoke.sh

.PHONY: generate
generate: ## regenerate the CRD YAML (and chart copies) from the Rust types, and deploy/ from the chart
	$(CARGO) run -q -p zeroscale-crds --bin crdgen -- --write
	bash scripts/gen-deploy.sh

.PHONY: lint
lint: ## rustfmt, clippy with warnings as errors, module cycles, generated-file drift, dashboard and alert rules (promtool)
	$(CARGO) fmt --all -- --check
	bash scripts/module-cycles.sh --with-tests
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) run -q -p zeroscale-crds --bin crdgen -- --check
	bash scripts/gen-deploy.sh --check
	bash images/check.sh
	bash scripts/check-dashboards.sh

.PHONY: unit
unit: ## tests that need no cluster (the JetStream tests start a real nats-server, the tracing tests an OpenTelemetry Collector; both built first)
	bash e2e/cluster/build.sh nats otelcol
	$(CARGO) test --workspace --exclude zeroscale-e2e

.PHONY: e2e
e2e: build ## end-to-end tests on the local cluster (brings it up and down)
	bash scripts/e2e.sh

.PHONY: test
test: deps lint unit e2e ## every test: lint, unit, end-to-end

.PHONY: images
images: deps ## build the OCI images (no container daemon) and push them to ZEROSCALE_REGISTRY (default localhost:5000)
	bash scripts/images.sh

.PHONY: bench
bench: deps ## benchmarks; writes target/bench/report.json and report.md
	bash scripts/bench.sh
