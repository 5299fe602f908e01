# The two commands of the README: `make run` and `make test`. Everything else is what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ASSETS := web/static/vendor/graphiql.min.js
DEMO := var/demo-keys.json
LOCK := requirements.lock

.PHONY: run test test-deep lint format lock loadtest loadtest-cluster bench bench-peers demo install assets clean

run: install assets demo
	$(BIN)/govshare serve

test: install assets
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The property tests at full depth, kept out of `make test` for its time: random examples instead of the suite's
# fixed ones, five times as many (1000 decisions per policy property, 60 HTTP scenarios), failures replayed from
# .hypothesis/. GOVSHARE_PROPERTY_EXAMPLES / GOVSHARE_HTTP_PROPERTY_EXAMPLES set any other number.
PROPERTY_TESTS := tests/test_policy_properties.py tests/test_policy_index.py tests/test_http_properties.py
test-deep: install
	$(BIN)/python -m pytest --hypothesis-profile=deep $(PYTEST_ARGS) $(PROPERTY_TESTS)

# 50 clients for 60 s against a real server while a source loses its table (LOADTEST_CLIENTS, LOADTEST_SECONDS).
loadtest: install
	$(BIN)/python bench/loadtest.py

# deploy/'s layout under load and faults: HAProxy, 2 govshare processes, a PostgreSQL and a Redis of its own, 50 clients;
# the platform database restarted, Redis killed, a process SIGKILLed, a source slowed (bench/cluster.py,
# docs/operations.md; CLUSTER_CLIENTS, CLUSTER_SECONDS, CLUSTER_TINY=1). Writes bench/cluster.json.
loadtest-cluster: install
	command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || { apt-get update -qq && apt-get install -y -qq haproxy; }
	command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }
	$(BIN)/python bench/cluster.py

# What enforcement costs: ratios of medians measured in one run; prints a table, writes bench/results.json (BENCH_TINY=1: seconds).
bench: install
	$(BIN)/python bench/bench.py

# govshare beside PostGraphile 4 (bench/peers/, npm ci from its lock) and a hand-written Starlette endpoint on the same
# PostgreSQL data, one load generator for all (Debian's wrk): bench/peers.json, ~14 min (PEERS_SECONDS, PEERS_ROUNDS;
# bench/peers.py says the rest).
bench-peers: install
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(BIN)/python bench/peers.py

# ruff (format and lint), mypy (strict packages: [tool.mypy] files), and the import contracts of README's Layout table.
lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python tests/contracts.py

# The mechanical rewrites `make lint` asks for: ruff's fixes (the unsafe ones only for rules whose fix keeps the
# meaning), then the formatter. What no fix can mend is left for `make lint` to report.
format: install
	$(BIN)/ruff check --fix --quiet . || true
	$(BIN)/ruff check --fix --unsafe-fixes --quiet --select RUF005,RUF007,RUF059,UP031,UP044,SIM103,SIM105,PIE810,C416,B007 . || true
	$(BIN)/ruff check --fix --quiet . || true
	$(BIN)/ruff format .

install: $(INSTALLED)

# Every package (all extras, pip and the build backend too) from the lock, each checked against its hashes; then
# the project itself without dependencies. `pip check` fails when pyproject.toml needs what the lock lacks.
$(INSTALLED): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check || { echo "$(LOCK) is behind pyproject.toml: run make lock" >&2; exit 1; }
	touch $@

# Regenerate the lock from pyproject.toml (every extra, every platform, with hashes), keeping the pins it has
# where pyproject.toml allows them. Then `make install`.
lock:
	test -x $(BIN)/uv || { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); \
	  $(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK); }
	$(BIN)/uv pip compile pyproject.toml --all-extras --generate-hashes --universal --python-version 3.11 \
	  --quiet -o $(LOCK)

assets: $(ASSETS)

$(ASSETS): web/package.json web/package-lock.json web/fetch-assets.sh
	bash web/fetch-assets.sh

demo: install
	$(BIN)/govshare demo

clean:
	rm -rf $(VENV) var web/node_modules web/static/vendor
