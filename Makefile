# rankops — the two commands a newcomer runs are `make demo` and `make test`.
# Both create .venv and install everything on first use; later runs reuse it
# (the install is redone only when setup.py or constraints.txt change).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ENV    ?= dev
HOME_DIR ?= .rankops
PYTEST_ARGS ?=

export SPARK_LOCAL_IP ?= 127.0.0.1
export AWS_DEFAULT_REGION ?= eu-west-1
export CDK_DISABLE_CLI_TELEMETRY = 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION = 18,20,22
export PIP_DISABLE_PIP_VERSION_CHECK = 1

INSTALLED := $(VENV)/.installed
NODE_OK   := node_modules/.installed

.PHONY: demo test lint unit synth deploy diff destroy install clean constraints bench chaos help promtool

help:
	@echo "make demo    - install, then run the whole local loop end to end (prints where to look)"
	@echo "make test    - install, then lint and run the full test suite"
	@echo "make lint    - ruff + mypy"
	@echo "make synth ENV=dev|staging|prod   - synthesize the CDK app offline"
	@echo "make deploy ENV=dev [STACKS=...]  - deploy to the AWS account in your credentials (README: bootstrap order)"
	@echo "make bench   - run the benchmarks (JSON on stdout)"
	@echo "make chaos   - the chaos suite: faults under load, exits 1 when a figure misses its bound"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=70" wheel

$(INSTALLED): $(BIN)/python setup.py constraints.txt
	@echo ">> installing rankops and its dependencies into $(VENV) (first run takes a few minutes)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

$(NODE_OK): package.json package-lock.json
	@echo ">> installing the pinned AWS CDK CLI (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# promtool (alert-rule checks in the tests) comes from Debian's prometheus package, installed
# when missing (CI runs as root; elsewhere install it yourself: apt-get install prometheus).
promtool:
	@command -v promtool >/dev/null || { echo ">> installing promtool (Debian package prometheus)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/rankops --home $(HOME_DIR) demo

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two pytest workers, one test file each at a time (module fixtures stay whole): the rehearsal and
# the simulation are long and mostly single-threaded, so the rest of the suite runs beside them.
# --no-loadscope-reorder keeps collection order, which puts the long files first (tests/conftest.py).
TEST_WORKERS ?= 2

test: $(INSTALLED) $(NODE_OK) promtool lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

unit: $(INSTALLED)
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

synth: $(INSTALLED) $(NODE_OK)
	npx cdk synth --no-notices -c env=$(ENV) --quiet

diff: $(INSTALLED) $(NODE_OK)
	npx cdk diff --no-notices -c env=$(ENV)

deploy: $(INSTALLED) $(NODE_OK)
	npx cdk deploy --no-notices -c env=$(ENV) $(or $(STACKS),--all) --require-approval broadening

destroy: $(INSTALLED) $(NODE_OK)
	npx cdk destroy --no-notices -c env=$(ENV) $(or $(STACKS),--all)

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks

# needs redis-server (private instances only; the shared 6379 is never touched)
chaos: $(INSTALLED)
	$(BIN)/python -m benchmarks.chaos $(CHAOS_ARGS)

constraints: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	{ echo "# Exact versions that make and CI install (pip install -c constraints.txt)."; \
	  echo "# Regenerate with: make constraints   (after changing setup.py)"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v -i -E '^(pip|setuptools|wheel)=='; } > constraints.txt

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
