# keelwatch: the two commands are `make run` and `make test`; everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export KEELWATCH_SHARED ?= $(abspath ..)/shared
# Debian packages the test suite drives for real (a registry, an image copier, rpm tools, a browser).
TEST_DEBS := docker-registry skopeo rpm openssl podman chromium libpango-1.0-0 libpangoft2-1.0-0

.PHONY: run test install install-test system-deps postgres lint bench clean demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make run: install and run the demo on the embedded default store (SQLite under .keelwatch/).
run: install
	KEELWATCH_HOME=$(CURDIR)/.keelwatch $(BIN)/keelwatch demo --serve

## Install the Debian packages the tests use, where missing (needs root or sudo and apt).
system-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

## Start the local PostgreSQL cluster when it is installed but not running.
postgres:
	@if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1; then \
	  for v in $$(ls /etc/postgresql 2>/dev/null); do pg_ctlcluster --skip-systemctl-redirect $$v main start || true; done; \
	fi
	@if ! command -v pg_isready >/dev/null; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -qq postgresql >/dev/null && \
	  for v in $$(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect $$v main start; done; \
	fi

## make test: everything the suite needs, then the whole suite (PostgreSQL included).
test: install-test system-deps postgres
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

bench: install-test
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/catalog.py

clean:
	rm -rf $(VENV) .keelwatch build *.egg-info .pytest_cache .ruff_cache .mypy_cache
