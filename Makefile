# jobsim: the two commands of the quick start are `make e2e` and `make test`.
# Each installs what it needs (Debian packages, the Cylc compatibility
# overlay, JupyterHub) the first time; later runs find it in place.

GO        ?= go
BIN       ?= bin
JOBSIM    := $(BIN)/jobsim
PKGS      ?= ./...
TESTFLAGS ?=
OUT       ?= out
export JOBSIM_CACHE ?= $(HOME)/.cache/jobsim

.PHONY: all build setup setup-base setup-cylc setup-hub setup-slurm test e2e bench lint fmt vet staticcheck clean

all: build

build: ## The static jobsim binary (what the job-host image carries).
	CGO_ENABLED=0 $(GO) build -trimpath -o $(JOBSIM) ./cmd/jobsim

setup: setup-base setup-cylc setup-hub setup-slurm ## Install everything the tests and e2e suites use.

setup-base:
	@bash scripts/setup.sh

setup-cylc:
	@bash scripts/setup-cylc.sh

setup-hub:
	@bash scripts/setup-hub.sh

setup-slurm:
	@bash scripts/setup-slurm.sh

SUITE_SHARDS ?= 2
test: setup lint ## Unit, contract, golden and integration tests (race detector on); the in-process scenario suite runs in SUITE_SHARDS shards at once.
	@GO=$(GO) PKGS='$(PKGS)' TESTFLAGS='$(TESTFLAGS)' SUITE_SHARDS=$(SUITE_SHARDS) bash scripts/test.sh

e2e: setup build ## The gate suites against real Cylc and JupyterHub on job-host containers; JUnit and artifacts in out/e2e (docs/e2e.md).
	@OUT=$(OUT) JOBSIM=$(JOBSIM) bash scripts/e2e.sh

bench: setup ## Benchmarks; numbers are ratios against references measured in the same run.
	@mkdir -p $(OUT)
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m $(PKGS) | tee $(OUT)/bench.txt

lint: fmt vet staticcheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

# staticcheck at a pinned version, fetched through the module proxy the first
# time (go run caches the build), so that no tool needs installing by hand.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
staticcheck:
	$(GO) run $(STATICCHECK) $(PKGS)

clean:
	rm -rf $(BIN) $(OUT)
