# The two commands of the README: `make demo` and `make test`. Everything they need is installed
# by the targets below, idempotently (stamps), so both work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system python helm minio opensearch vega demo test kaapana-images lint clean

setup: system python helm minio opensearch vega

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

# MinIO's server (the Kaapana test platform's S3), built through the Go module proxy into the cache.
minio:
	bash tools/install-minio.sh

vega:
	bash tools/install-vega.sh

opensearch: python
	$(BIN)/python -c "from srcohort.server.distribution import ensure_distribution; print(ensure_distribution())"

demo: setup
	$(BIN)/srcohort demo --out demo-out

test: setup
	CI=$${CI:-} $(BIN)/python -m pytest -q

# srcohort's two Kaapana images built for real (buildah, on a debootstrap stand-in of Kaapana's
# base image), then the Kaapana workflows run with every processing container inside them.
# Separate from `make test` for time: about 5 min to build with a cold base (2 min warm) and
# 10 min of workflows; run it after changing the Dockerfiles, the package or the steps.
kaapana-images: setup
	bash tools/build-kaapana-images.sh
	CI=$${CI:-} SRCOHORT_TEST_IMAGES=1 $(BIN)/python -m pytest -q tests/test_kaapana_workflows.py -k image

clean:
	rm -rf demo-out .pytest_cache
