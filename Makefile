# The two commands of the README: `make demo` and `make test`. Everything they need is installed
# by the targets below, idempotently (stamps), so both work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system python helm opensearch vega demo test lint clean

setup: system python helm opensearch vega

system:
	bash tools/install-system.sh

python: $(STAMP)

$(STAMP): requirements.txt constraints.txt setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

helm:
	bash tools/install-helm.sh

vega:
	bash tools/install-vega.sh

opensearch: python
	$(BIN)/python -c "from srcohort.server.distribution import ensure_distribution; print(ensure_distribution())"

demo: setup
	$(BIN)/srcohort demo --out demo-out

test: setup
	CI=$${CI:-} $(BIN)/python -m pytest -q

clean:
	rm -rf demo-out .pytest_cache
