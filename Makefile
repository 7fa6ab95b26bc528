# The project's commands. `make test` is what CI runs (.ci/run) and what the
# README tells a new user to run; it installs or builds whatever is missing.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
BIN := $(CURDIR)/bin
TOOLS := $(GO) run -modfile=$(CURDIR)/hack/tools/go.mod
CONTROLLER_GEN := $(TOOLS) sigs.k8s.io/controller-tools/cmd/controller-gen
STATICCHECK := $(TOOLS) honnef.co/go/tools/cmd/staticcheck

# Upper bound for one test binary; the suite as a whole stays far below it.
TEST_TIMEOUT ?= 15m

.PHONY: all build generate lint test test-deps demo bench bench-bins bench-small chaos clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

generate:
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:dir=deploy/crds

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	hack/verify-generated.sh
	$(GO) run ./hack/checkpaths

# Real parts: etcd and mosquitto from Debian, kube-apiserver built from the
# pinned k8s.io/kubernetes module.
test-deps:
	hack/ensure-test-deps.sh
	hack/build-kube.sh kube-apiserver

# Every package runs under the race detector (the controllers and the EdgeX
# clients are where it matters; one build mode for all keeps the build once).
test: test-deps
	$(GO) test -timeout $(TEST_TIMEOUT) -race ./...

# The tour's commands use the kubectl on PATH; only without one is kubectl
# built (once) into bin/, and the tour then names it by its path.
demo: test-deps build
	@command -v kubectl >/dev/null 2>&1 || hack/build-kube.sh kubectl
	$(BIN)/demo

# The benchmark runs the bridge as its own process, beside the real API
# server, etcd and mosquitto the tests use; it needs only those two binaries.
# Results go to bench/ (results.md, results.json, latency.svg). BENCH_DEVICES
# sets the pool size; BENCH_FLAGS passes more (bin/bench -h lists them).
bench-bins:
	$(GO) build -o $(BIN)/ ./cmd/devicecontroller ./cmd/bench

bench: test-deps bench-bins
	$(BIN)/bench $(BENCH_FLAGS)

bench-small: test-deps bench-bins
	BENCH_DEVICES=$${BENCH_DEVICES:-1000} $(BIN)/bench -small $(BENCH_FLAGS)

# The chaos tests also run the bridge behind a real YurtHub, built once from
# the OpenYurt release pinned in hack/openyurt.version.
chaos: test-deps
	hack/build-yurthub.sh
	$(GO) test -timeout 60m -tags chaos -run Chaos -v ./devicecontroller/...

clean:
	rm -rf $(BIN) bench
