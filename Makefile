# lakeop — every target prepares what it needs first, so each works from a fresh clone.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
KUBECTL := .devcluster/bin/kubectl
KUBECONFIG_PATH := .devcluster/kubeconfig

.PHONY: venv constraints lint unit e2e test demo bench cluster-bin cluster-up cluster-down image clean

$(VENV_STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt -e '.[dev]'
	touch $@

venv: $(VENV_STAMP)

# requirements/constraints.txt from pyproject.toml and the installed versions (runtime, then
# dev; see tests/ship/pins.py). After adding a dependency: pip install it, then this.
constraints: venv
	$(PY) tests/ship/pins.py > requirements/constraints.txt.new
	mv requirements/constraints.txt.new requirements/constraints.txt

lint: venv
	$(VENV)/bin/ruff check operator tests devcluster bench
	$(VENV)/bin/ruff format --check operator tests devcluster bench
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy devcluster/procnode devcluster/pki.py
	$(VENV)/bin/lint-imports

unit: venv
	$(PY) -m pytest -m "not e2e" tests

cluster-bin:
	bash devcluster/packages.sh
	bash devcluster/build.sh

# The project's image (Dockerfile) and the pause image, built without a registry (BASE=...
# overrides the debootstrap base, e.g. BASE=python:3.11-slim-bookworm).
image:
	bash devcluster/image.sh

cluster-up: venv cluster-bin
	bash devcluster/cluster.sh up

cluster-down:
	bash devcluster/cluster.sh down

e2e: cluster-up
	KUBECONFIG=$(CURDIR)/$(KUBECONFIG_PATH) $(PY) -m pytest -m e2e tests

test: venv cluster-up lint
	KUBECONFIG=$(CURDIR)/$(KUBECONFIG_PATH) $(PY) -m pytest tests

demo: venv cluster-up
	bash examples/demo.sh

bench: venv cluster-up
	$(PY) bench/run.py

clean: cluster-down
	rm -rf $(VENV) .devcluster .bench
