# Two commands matter: `make run` and `make test`. Each installs what it needs first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# checkov (static security scan of deploy/) lives in a venv of its own: its pins clash with ours.
CHECKOV := .venv-checkov/bin/checkov
# Older anthropic SDK generations, each in a venv of its own, for tests/compat.
SDK_VENVS := .venv-sdk-0.40.0/.installed .venv-sdk-1.0.0/.installed
# Claude Code (the CLI bundled in claude-agent-sdk's wheel, a native binary) for tests/agents.
CLAUDE_VENV := .venv-claude/.installed

.PHONY: run test lint bench reliability proto clean install native

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The request path compiled with mypyc (setup.py says which modules and why), beside the sources.
# Rebuilt when any source of the package changes: a compiled module type-checks against all of them.
NATIVE := sidecar/_native.built
$(NATIVE): $(STAMP) setup.py $(shell find sidecar -name '*.py') | cc
	find sidecar -name "*.so" -delete
	SIDECAR_NATIVE=1 $(BIN)/python setup.py -q build_ext --inplace
	# An extension whose generated C did not change is copied from build/ with its old time;
	# the build is now, and tests/conftest.py compares the sources' times with it.
	find sidecar -name "*.so" -exec touch {} +
	touch $(NATIVE)

native: $(NATIVE)

$(CHECKOV):
	$(PY) -m venv .venv-checkov
	.venv-checkov/bin/pip install --quiet --upgrade pip
	.venv-checkov/bin/pip install --quiet checkov==3.3.30

.venv-sdk-%/.installed:
	$(PY) -m venv .venv-sdk-$*
	.venv-sdk-$*/bin/pip install --quiet anthropic==$*
	touch $@

$(CLAUDE_VENV):
	$(PY) -m venv .venv-claude
	.venv-claude/bin/pip install --quiet claude-agent-sdk==0.2.190
	touch $@

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --silent
	touch $(NODE_STAMP)

run: $(STAMP) $(NATIVE)
	$(BIN)/sidecar $(ARGS)

# The native build compiles C: Debian's gcc, when the machine has no C compiler.
.PHONY: cc
cc:
	@command -v gcc >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev)

# The admission tests start their own redis-server (Debian's package) on a free loopback port.
.PHONY: redis-server
redis-server:
	@command -v redis-server >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server)

# The bench measures nginx (Debian's package) as its yardstick: it runs its own instance (a config in a
# temp dir, a free loopback port, daemon off), never the system service.
.PHONY: nginx
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx)

# promtool (Debian's prometheus package, in /usr/bin) checks and unit-tests the alert rules. The
# package's service is never started: tests run what they need on free loopback ports.
.PHONY: prometheus
prometheus:
	@command -v promtool >/dev/null || test -x /usr/bin/promtool || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)

test: $(STAMP) $(NATIVE) $(CHECKOV) $(SDK_VENVS) $(CLAUDE_VENV) redis-server nginx prometheus
	$(BIN)/pytest -q $(PYTEST_ARGS)

lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check sidecar tests bench reliability setup.py
	$(BIN)/ruff format --check sidecar tests bench reliability setup.py
	$(BIN)/mypy
	npx --no-install buf lint proto

# Regenerate the committed protobuf/gRPC code from proto/ (tests fail when they differ).
proto: $(STAMP)
	$(BIN)/python -m sidecar.grpc.codegen --write

bench: $(STAMP) $(NATIVE) nginx
	$(BIN)/python -m bench $(ARGS)

# The reliability campaigns (README "Reliability") against the sidecar as it ships; the reduced
# sizes run in CI after `make test`, `make reliability ARGS=--full` runs the full ones.
reliability: $(STAMP) $(NATIVE)
	$(BIN)/python -m reliability $(ARGS)

clean:
	find sidecar -name '*.so' -delete
	rm -f $(NATIVE)
	rm -rf build $(VENV) .venv-checkov .venv-sdk-* .venv-claude node_modules .pytest_cache .mypy_cache .ruff_cache
