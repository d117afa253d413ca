# The two commands of the README, `make book` and `make test`, work on a brand-new machine:
# they create .venv, install the pinned requirements and the package, obtain the data, then
# run. `make bench` measures wall times (a benchmark, never a timed test).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup data book test bench clean

$(STAMP): requirements.txt pyproject.toml
	@start=$$(date +%s); set -e; \
	if [ ! -x $(PY) ]; then $(PYTHON) -m venv $(VENV); fi; \
	$(PY) -m pip install --quiet -r requirements.txt; \
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .; \
	echo $$(( $$(date +%s) - start )) > $(VENV)/.install-seconds; \
	touch $@; \
	echo "set-up: venv and pinned packages installed in $$(cat $(VENV)/.install-seconds) s"

setup: $(STAMP)

# Fashion-MNIST: Debian's package when root on Debian, else torchvision's download.
data: $(STAMP)
	@$(PY) -m initstudy data fetch fashion-mnist mnist-5k digits

# Executes every notebook at the cpu profile (cached: unchanged notebooks are not re-run),
# then builds the HTML book into _build/html with warnings as errors.
book: data
	$(PY) -m initstudy run --profile cpu
	$(PY) -m initstudy book --profile cpu

test: data
	$(PY) -m pytest

bench: data
	$(PY) -m initstudy.bench

clean:
	rm -rf _build results/smoke
