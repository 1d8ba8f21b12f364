# visionserve: `make run` starts the service, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The service alone (make run), then the test tools on top (make test): two stamps, so each adds only what is missing.
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# A CPU-only torch wheel (no CUDA libraries, about 3 GB less), where PyTorch's CPU index can be reached:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
# pip then also looks there, and takes its torch+cpu build for the pinned version (as the Dockerfile's CPU lock does).
TORCH_INDEX ?=
PIP_INSTALL := $(PY) -m pip install --quiet$(if $(TORCH_INDEX), --extra-index-url $(TORCH_INDEX))

.PHONY: help install install-test run run-random test test-unit test-gpu lint format bench attacks train-cifar-head kind-demo \
	manifests lock monitor screenshot clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "visionserve needs Python 3.11 or newer: make PYTHON=python3.11 ..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PIP_INSTALL) -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PIP_INSTALL) -e '.[test]'
	touch $(TEST_STAMP)

install: $(STAMP) ## Create .venv and install the service (TORCH_INDEX=https://download.pytorch.org/whl/cpu: CPU-only torch)

install-test: $(TEST_STAMP) ## install, then add the test tools (make test does this)

run: $(STAMP) ## Start the service on 127.0.0.1:8080 (VISIONSERVE_WEIGHTS=imagenet by default)
	$(PY) -m app

run-random: $(STAMP) ## Start the service with explicitly random weights (no download needed)
	VISIONSERVE_WEIGHTS=random VISIONSERVE_CIFAR_HEAD=$${VISIONSERVE_CIFAR_HEAD:-random} $(PY) -m app

test: lint ## Lint, then run the whole test suite
	$(PY) -m pytest

test-unit: $(TEST_STAMP) ## Unit tests only (no server, no tools)
	$(PY) -m pytest tests/app tests/scripts -m "not service"

test-gpu: $(TEST_STAMP) ## The CUDA tests alone (they skip where torch sees no GPU)
	$(PY) -m pytest tests/gpu

lint: $(TEST_STAMP) ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(TEST_STAMP) ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(TEST_STAMP) ## Benchmark: OpenVINO and torch servers vs in-process ceilings (BENCH_ARGS="--strict ...")
	$(PY) scripts/bench.py $(BENCH_ARGS)

attacks: $(TEST_STAMP) ## Attack a real server as hostile clients would; print each attack's status and time
	$(PY) scripts/attack_table.py $(ATTACK_ARGS)

train-cifar-head: $(STAMP) ## Train the CIFAR-10 head (CIFAR-10 online; offline a FAKE head); TRAIN_ARGS="--epochs 5 ..."
	$(PY) scripts/train_cifar_head.py --data-dir data/cifar10 --output weights/cifar10_head.pt --offline-fallback \
		$(TRAIN_ARGS)

kind-demo: $(STAMP) ## The chart on a local kind cluster: build, load, install small, smoke-test (docker or podman, kind, kubectl, helm)
	$(PY) scripts/kind_demo.py $(KIND_DEMO_ARGS)

monitor: ## Start a local Prometheus on 127.0.0.1:9091 scraping the service started by make run
	prometheus --config.file=monitoring/prometheus.yml --storage.tsdb.path=.prometheus-data \
		--web.listen-address=127.0.0.1:9091

manifests: $(TEST_STAMP) ## Regenerate what is derived: chart files/ and schema, kubernetes/ manifests, values table
	$(PY) scripts/chart_files.py
	$(PY) scripts/chart_schema.py
	$(PY) scripts/render_manifests.py
	$(PY) scripts/values_table.py

lock: $(TEST_STAMP) ## Regenerate the image's hash locks in requirements/ from pyproject.toml (TORCH=cpu: also the CPU-index lock)
	$(PY) scripts/lock_requirements.py $(if $(TORCH),--torch pypi --torch $(TORCH))

screenshot: $(TEST_STAMP) ## Retake docs/page.png: the page at / in headless Chromium, random weights (the README shows it)
	VISIONSERVE_UPDATE_SCREENSHOT=1 $(PY) -m pytest tests/server/test_page_browser.py -k top_label

clean: ## Remove caches (keeps .venv)
	rm -rf .pytest_cache .ruff_cache build *.egg-info .bench
