# The project's commands. `make test` is what CI runs (.ci/run) and what the
# README tells a new user to run; it installs or builds whatever is missing.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
GO ?= go
BIN := $(CURDIR)/bin
TOOLS := $(GO) run -modfile=$(CURDIR)/hack/tools/go.mod
CONTROLLER_GEN := $(TOOLS) sigs.k8s.io/controller-tools/cmd/controller-gen
STATICCHECK := $(TOOLS) honnef.co/go/tools/cmd/staticcheck
# Helm has a module of its own: its k8s.io versions need not agree with
# controller-tools'.
HELM := $(GO) run -modfile=$(CURDIR)/hack/tools/helm/go.mod helm.sh/helm/v4/cmd/helm
CHART := deploy/helm/edgebridge

# The image `make image` builds. Its tag is the chart's appVersion, which
# the chart runs by default and the kustomize manifests name too
# (deploy/image_test.go checks all three agree). Set on the command line
# (make image IMAGE=... IMAGE_TAG=...), never taken from the environment.
IMAGE := ghcr.io/edgebridge/edgebridge
IMAGE_TAG := $(shell awk '$$1 == "appVersion:" {print $$2}' $(CHART)/Chart.yaml)

# Upper bound for one test binary; the suite as a whole stays far below it.
TEST_TIMEOUT ?= 15m

.PHONY: all build generate lint test test-compat test-deps image image-ref demo bench bench-bins bench-small chaos clean

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

generate:
	$(CONTROLLER_GEN) object paths=./api/...
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:dir=deploy/crds
	@# The chart installs the very same CRDs: one generation feeds both.
	rm -f $(CHART)/crds/*.yaml
	cp deploy/crds/iot.openyurt.io_*.yaml $(CHART)/crds/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	hack/verify-generated.sh
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) --set workload.kind=Deployment,workload.nodePool=pool-a,admission.enabled=true
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

# The same tests that matter for the API server's version, against the oldest
# Kubernetes the project supports (README, "Supported Kubernetes versions"):
# a kube-apiserver built from hack/tools/kube-compat's own pin into
# bin/kube-apiserver-1.MINOR. The CRD and admission packages run whole; of
# devicecontroller, the sync, command, import, pool-selection and shutdown
# tests, which cover every path that reads or writes the API server. The
# binary-kill test stays out: it measures the machine more than the server.
COMPAT_RUN ?= ^(TestPool|TestManagedObjects|TestImportedObjects|TestMissedEventsAreRepairedByResync|TestFailedResyncDeletesNothing|TestManagedObjectAdopts|TestEdgeObjectsAreImported|TestCommandsReachTheDevice|TestCommandsAreLevelTriggered|TestForbiddenValuesAreNotSent|TestLockedDeviceGetsNoCommands|TestBinaryStopsOnSIGTERM)

test-compat:
	hack/ensure-test-deps.sh
	apiserver=$$(hack/build-kube.sh kube-apiserver compat | tail -n 1); \
	export EDGEBRIDGE_KUBE_APISERVER=$$apiserver; \
	echo ">> tests against $$($$apiserver --version)"; \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -race ./api/... ./devicecontroller/admission/... && \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -race -run '$(COMPAT_RUN)' ./devicecontroller/

# The OCI image, built with no container daemon: static binaries on an
# empty base (hack/image says why), written to bin/image (an OCI layout) and
# bin/image.tar (for `docker load -i` or `crane push`).
image:
	$(GO) run ./hack/image/build -tag $(IMAGE):$(IMAGE_TAG) -version $(IMAGE_TAG) \
		-oci-layout $(BIN)/image -tarball $(BIN)/image.tar

image-ref:
	@echo $(IMAGE):$(IMAGE_TAG)

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
