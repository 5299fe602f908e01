# The two commands of the README: `make run` and `make test`. Everything else is what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
ASSETS := web/static/vendor/graphiql.min.js
DEMO := var/demo-keys.json

.PHONY: run test loadtest bench demo install assets clean

run: install assets demo
	$(BIN)/govshare serve

test: install assets
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# 50 clients for 60 s against a real server while a source loses its table (LOADTEST_CLIENTS, LOADTEST_SECONDS).
loadtest: install
	$(BIN)/python bench/loadtest.py

# What enforcement costs: ratios of medians measured in one run; prints a table, writes bench/results.json (BENCH_TINY=1: seconds).
bench: install
	$(BIN)/python bench/bench.py

install: $(INSTALLED)

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==25.3
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

assets: $(ASSETS)

$(ASSETS): web/package.json web/package-lock.json web/fetch-assets.sh
	bash web/fetch-assets.sh

demo: install
	$(BIN)/govshare demo

clean:
	rm -rf $(VENV) var web/node_modules web/static/vendor
