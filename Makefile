# crmflow — `make dev` runs the whole stack, `make test` runs every check.
# Tools are installed into .tools/bin from the Go module proxy; nothing needs
# to be installed by hand beyond Go and the PostgreSQL server binaries.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

# The build machines ship Go 1.26.8; every pinned module builds with it.
export GOTOOLCHAIN := local

TOOLS := $(CURDIR)/.tools/bin
STATICCHECK_VERSION := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0
STRIPE_MOCK_VERSION := v0.203.0

# Provider OpenAPI specs for contract tests, when the shared folder is beside us.
SPECS_DIR := $(abspath $(CURDIR)/../shared/specs)
ifneq ($(wildcard $(SPECS_DIR)/README.md),)
export CRMFLOW_SPECS_DIR ?= $(SPECS_DIR)
endif
export STRIPE_MOCK_BIN := $(TOOLS)/stripe-mock

GO_TEST_FLAGS ?= -count=1 -timeout 20m

# The binary's version (`crmflow version`), which is also its build id in
# the Worker Deployment: the commit (or tag) it is built from. A build with
# uncommitted changes gets a hash of them too, so two different dirty trees
# never share a build id.
VERSION ?= $(shell v=$$(git describe --tags --always 2>/dev/null) || exit 0; \
	if git diff --quiet HEAD 2>/dev/null; then echo $$v; else echo $$v-dirty-$$(git diff HEAD | sha256sum | cut -c1-8); fi)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build dev test lint fmt vet staticcheck workflowcheck tools bench clean

all: build

## build: compile bin/crmflow, stamped with $(VERSION)
build:
	go build -ldflags "$(LDFLAGS)" -o bin/crmflow ./cmd/crmflow

## dev: run the whole stack (Temporal + UI, PostgreSQL, worker, HTTP) in the foreground
dev: build
	./bin/crmflow dev

## test: formatting, vet, staticcheck, workflowcheck, then every test
test: lint tools chromium
	go test $(GO_TEST_FLAGS) ./...
	$(MAKE) --no-print-directory fuzz

## fuzz: run each fuzz target for a fixed number of inputs (every `go test`
## runs their seed corpora, testdata/fuzz); -fuzz takes one target per
## invocation. Counts rather than durations: under load a timed run can spend
## its time starting the worker (the webhook targets' worker starts its own
## PostgreSQL and Temporal) and then fail with "context deadline exceeded".
## A failing input is written to the package's testdata/fuzz: commit it with
## the fix. FUZZ_TIME overrides every target's (e.g. FUZZ_TIME=5m).
FUZZ_TARGETS := tests/e2e:FuzzStripeWebhook:3000x tests/e2e:FuzzClerkWebhook:3000x \
	tests/e2e:FuzzAPIBodies:1000x internal/codec:FuzzCodecHandler:5000x
.PHONY: fuzz
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; time=$${FUZZ_TIME:-$${rest#*:}}; \
		echo "fuzz $$name for $$time"; \
		go test ./$$pkg/ -run '^$$' -fuzz "^$$name\$$" -fuzztime $$time -parallel 1 -timeout 20m; \
	done

## record-histories: record a new version of the replay corpus from the end-to-end tests,
## e.g. make record-histories HISTORIES=v2 (docs/testing.md); sealed versions are refused
HISTORIES_DIR := workflows/testdata/histories
.PHONY: record-histories seal-histories
record-histories: tools
	@[[ "$(HISTORIES)" =~ ^v[1-9][0-9]*$$ ]] || { echo "name the new version: HISTORIES=v<N>"; exit 1; }
	CRMFLOW_RECORD_HISTORIES=$(HISTORIES) go test ./tests/e2e/ -count=1 -timeout 20m

## seal-histories: list a recorded version's files in the corpus manifest, freezing it
seal-histories:
	@[[ "$(HISTORIES)" =~ ^v[1-9][0-9]*$$ ]] || { echo "name the version to seal: HISTORIES=v<N>"; exit 1; }
	@cd $(HISTORIES_DIR) && if grep -q "  $(HISTORIES)/" MANIFEST.sha256; then \
		echo "$(HISTORIES) is sealed already: sealed versions never change"; exit 1; fi && \
		sha256sum $(HISTORIES)/*.json >> MANIFEST.sha256 && echo "sealed $(HISTORIES): $$(ls $(HISTORIES)/*.json | wc -l) histories"

## lint: every static check
lint: fmt-check vet staticcheck workflowcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$out" ]; then echo "gofmt needs to run on:"; echo "$$out"; exit 1; fi

## fmt: rewrite the sources with gofmt
fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	go vet ./...

staticcheck: $(TOOLS)/staticcheck
	$(TOOLS)/staticcheck ./...

# worker/ too: its interceptors (Sentry's) run in the workflow thread.
workflowcheck: $(TOOLS)/workflowcheck
	$(TOOLS)/workflowcheck ./workflows/... ./worker/...

## tools: install the pinned tools into .tools/bin
tools: $(TOOLS)/staticcheck $(TOOLS)/workflowcheck $(TOOLS)/stripe-mock

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(TOOLS)/workflowcheck:
	GOBIN=$(TOOLS) go install go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION)

$(TOOLS)/stripe-mock:
	GOBIN=$(TOOLS) go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

## chromium: install Debian's chromium (headless browser of the Temporal UI and console tests) when missing
.PHONY: chromium
chromium:
	@if [ -x /usr/bin/chromium ]; then exit 0; fi; \
	sudo=; if [ "$$(id -u)" -ne 0 ]; then sudo=sudo; fi; \
	$$sudo apt-get update; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

## bench: measure crmflow against PostgreSQL and Temporal (ratios to baselines measured in the
## same run), then the engine baselines, M4 and M6 on Temporal on SQLite and on PostgreSQL side
## by side; print one line per measurement and regenerate BENCHMARKS.md; a missed target is
## reported in both, it does not fail the target. The timeout covers a run on a busy two-core
## machine (the rates there fall several-fold, and the run's length grows with them).
# With M8-M10, M3's cold edge and both engines a run takes about 30 min on an idle two-core
# machine; 60m leaves room for a busier one.
BENCH_TIMEOUT ?= 60m
bench:
	go test -run '^$$' -bench '^BenchmarkReport$$' -benchtime 1x -count 1 -timeout $(BENCH_TIMEOUT) \
		./tests/bench/ -args -report=$(CURDIR)/BENCHMARKS.md

clean:
	rm -rf bin .tools
