# One check command (lint, types, layering) and one test command; .ci/run calls `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin

.PHONY: venv check test unit demo cluster-up cluster-down crds reliability operator-image

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

check: venv
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Lint, type checks, then every test: unit, router and the cluster tests on the real
# local control plane (kind/cluster builds it on first use). Nothing is skipped.
# Two workers, one test file at a time each (--dist loadfile: a module's cluster fixture is
# started once); each worker has its own session clusters. The slowest tests are listed last.
test: check
	$(BIN)/pytest -p no:cacheprovider -n 2 --dist loadfile --durations=25

unit: venv
	$(BIN)/pytest -m "not cluster"

# The operator's fault and bad-input suite; rewrites the figures in docs/reliability.md.
reliability: venv
	$(PY) -m bench.reliability_report

demo: venv
	bash kind/demo.sh

# Everything generated from the code: the CRDs (from the pydantic models) and docs/sizing.md
# (from the planner). Unit tests fail when either drifts.
crds: venv
	$(BIN)/gptoss-operator crds --output-dir crds
	$(BIN)/gptoss-operator crds --chart-dir charts/gpt-oss-operator
	$(BIN)/gptoss-operator plan --table > docs/sizing.md

# A local control plane named $(CLUSTER) (kind/README.md); `export KUBECONFIG=...` as printed.
CLUSTER ?= gptoss
cluster-up: venv
	kind/cluster up --name $(CLUSTER)

cluster-down:
	kind/cluster down --name $(CLUSTER)

# The operator image as the Helm chart names it, built with podman as the tests build it
# (docs/images.md), written as an OCI archive for `kind/cluster load-image` (kind/README.md).
OPERATOR_IMAGE ?= operator-image.tar
operator-image: venv
	$(PY) -m devtools.operator_image --output $(OPERATOR_IMAGE)
