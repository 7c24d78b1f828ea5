# Bulwark — `make help` lists the targets.
SHELL := bash
.DEFAULT_GOAL := help

VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG        := github.com/bulwarkhq/bulwark/internal/version
LDFLAGS    := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).BuildDate=$(BUILD_DATE)
export GOFLAGS ?= -buildvcs=false

.PHONY: help build test test-short testdeps lint bench generate fuzz clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/bulwark with version, commit and build date stamped in
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/bulwark ./cmd/bulwark

test: ## install test components, lint, run all unit and integration tests (what CI runs)
	hack/test.sh

test-short: ## run unit tests only (no components started)
	go test -short -count=1 ./...

testdeps: ## install the Debian packages and build the Kubernetes binaries the tests use
	hack/testdeps.sh

lint: ## gofmt, go vet and staticcheck (pinned version, installed on first use)
	hack/lint.sh

bench: ## run the Go benchmarks
	go test -run '^$$' -bench . -benchmem ./...

FUZZTIME ?= 30s
fuzz: ## run each fuzz target for FUZZTIME (default 30s)
	@set -e; for pkg in $$(go list ./...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 2s $$pkg; \
	  done; \
	done

generate: ## regenerate generated code (go generate)
	go generate ./...

clean: ## remove build output
	rm -rf bin

.PHONY: generate-bpf
generate-bpf: ## recompile bpf/ into internal/sensor/probe with bpf2go (needs clang-14, llvm-14, libbpf-dev)
	go generate ./internal/sensor/probe/
