# The two commands of the README, `make book` and `make test`, work on a brand-new machine:
# they create .venv, install the pinned requirements and the package, obtain the data, then
# run. `make bench` measures wall times (a benchmark, never a timed test).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

MATHJAX_VERSION := 3.2.2
MATHJAX := _static/mathjax/tex-mml-chtml.js

.PHONY: setup data book stability test bench pdf release clean

$(STAMP): requirements.txt pyproject.toml
	@start=$$(date +%s); set -e; \
	if [ ! -x $(PY) ]; then $(PYTHON) -m venv $(VENV); fi; \
	$(PY) -m pip install --quiet -r requirements.txt; \
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .; \
	echo $$(( $$(date +%s) - start )) > $(VENV)/.install-seconds; \
	touch $@; \
	echo "set-up: venv and pinned packages installed in $$(cat $(VENV)/.install-seconds) s"

setup: $(STAMP)

# MathJax served by the book itself (HTML that works from disk): from the npm registry.
$(MATHJAX):
	@set -e; rm -rf .cache/mathjax && mkdir -p .cache/mathjax _static/mathjax/output/chtml/fonts; \
	(cd .cache/mathjax && npm pack --silent mathjax@$(MATHJAX_VERSION) >/dev/null); \
	tar xzf .cache/mathjax/mathjax-$(MATHJAX_VERSION).tgz -C .cache/mathjax \
	    package/es5/tex-mml-chtml.js package/es5/output/chtml/fonts/woff-v2 package/LICENSE; \
	rm -rf _static/mathjax/output/chtml/fonts/woff-v2; \
	cp -r .cache/mathjax/package/es5/output/chtml/fonts/woff-v2 _static/mathjax/output/chtml/fonts/; \
	cp .cache/mathjax/package/LICENSE _static/mathjax/LICENSE; \
	cp .cache/mathjax/package/es5/tex-mml-chtml.js $(MATHJAX); \
	echo "mathjax $(MATHJAX_VERSION): served from _static/mathjax"

# Fashion-MNIST: Debian's package when root on Debian, else torchvision's download.
data: $(STAMP)
	@$(PY) -m initstudy data fetch fashion-mnist mnist-5k digits

# Executes every notebook at the cpu profile (cached: unchanged notebooks are not re-run),
# then builds the HTML book into _build/html with warnings as errors.
book: data $(MATHJAX)
	$(PY) -m initstudy run --profile cpu
	$(PY) -m initstudy book --profile cpu

# Every chapter rerun on fresh seeds (2000 on) into results/fresh-seeds/cpu, verdicts compared;
# then the book rebuilt, so the claims table shows the comparison. About as long as the cpu run.
stability: data $(MATHJAX)
	$(PY) -m initstudy run --profile cpu
	$(PY) -m initstudy stability --profile cpu
	$(PY) -m initstudy book --profile cpu

# The browser tests (the book from disk with no network request, the interactive figure)
# need Chromium: Debian's package, installed here when root on Debian; they skip without it.
test: data $(MATHJAX)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v chromium >/dev/null; then \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	           --no-install-recommends chromium >/dev/null; }; } \
	    || echo "make test: chromium could not be installed; the browser tests will skip"; fi
	$(PY) -m pytest

bench: data
	$(PY) -m initstudy.study.bench

# A PDF of the book through LaTeX (Debian's TeX Live, installed here when root on Debian).
pdf: data $(MATHJAX)
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v xelatex >/dev/null; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends texlive-latex-recommended \
	    texlive-latex-extra texlive-fonts-recommended texlive-xetex texlive-plain-generic latexmk \
	    fonts-freefont-otf lmodern tex-gyre; fi
	$(PY) -m initstudy run --profile cpu
	$(PY) -m initstudy book --profile cpu --builder pdflatex

# A release: `make release VERSION=x.y.z [DATE=YYYY-MM-DD]` sets the version and its date in
# pyproject.toml (their one place) and rewrites CITATION.cff, .zenodo.json, the book's entry of
# references.bib and book/cite.md from them (python -m initstudy.book.release; README "Publishing").
release: $(STAMP)
	@if [ -z "$(VERSION)" ]; then echo "usage: make release VERSION=x.y.z [DATE=YYYY-MM-DD]" >&2; exit 2; fi
	$(PY) -m initstudy.book.release bump $(VERSION) $(if $(DATE),--date $(DATE))
	$(PY) -m initstudy.book.release check

clean:
	rm -rf _build results/smoke
