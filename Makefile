# The study's two commands:  make reproduce   and   make test   (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
PROFILE ?= embedded
REPRODUCE_PROFILES := embedded paper
PYTEST_ARGS ?=
# pytest-xdist workers, a test module per unit, the longest first (tests/conftest.py), plus one worker for the modules
# that mostly wait (tests/conftest.py: WAITING), which it runs alone; TEST_WORKERS=0 runs in-process
TEST_WORKERS ?= 2
XDIST := $(if $(filter-out 0,$(TEST_WORKERS)),-n $(shell echo $$(($(TEST_WORKERS) + 1))) --dist loadscope \
         --no-loadscope-reorder)

.PHONY: help setup venv npm chromium tex cc test-stress reproduce paper memo product test test-fast lab clean distclean lock benchmarks check compare reference artifact

help:
	@echo "make reproduce [PROFILE=embedded|paper]  run every notebook (results/, figures/); cached ones are skipped"
	@echo "               [FORCE=1] [ONLY=\"04 05\"] [DRY_RUN=1]"
	@echo "make paper [PROFILE=embedded|paper]      the paper draft paper/build/draft.pdf (reproduces first if needed)"
	@echo "make memo [PROFILE=...]                  the decision memo of notebook 10's shortlist (paper/build-memo/memo.pdf)"
	@echo "make product [PROFILE=...] [PORT=8470]    after make reproduce: the simple product page on 127.0.0.1 (Ctrl-C stops)"
	@echo "make test                                unit tests + every notebook with its smallest parameters"
	@echo "make test-fast                           the edit loop: everything not marked slow (<= 90 s)"
	@echo "make test-stress [STRESS_RUNS=10]        the fault and resource tests throttled, then under two CPU burners"
	@echo "make lab                                 JupyterLab on the project's kernel"
	@echo "make reference [PROFILE=embedded|smoke] [FROM=DIR]  ship the latest run's snapshot as reference/PROFILE/"
	@echo "make artifact [PROFILE=...] [JUNIT=FILE]  one archive for deposit (results/artifact/*.zip; study verify)"
	@echo "make setup | clean | distclean | lock | benchmarks | check"

setup: venv npm chromium tex cc

venv: $(VENV)/.installed
$(VENV)/.installed: requirements/base.txt requirements/nodeps.txt requirements/ray.txt requirements/removed.txt \
                   requirements/lock.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q pip==25.3
	$(PIP) install -c requirements/lock.txt -c requirements/removed.txt -r requirements/base.txt
	$(PIP) install --no-deps -r requirements/nodeps.txt
	$(PIP) install -c requirements/lock.txt -c requirements/removed.txt -r requirements/ray.txt
	$(PIP) uninstall -y -q -r requirements/removed.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	@touch $@

npm: web/node_modules/.installed
web/node_modules/.installed: web/package.json web/package-lock.json
	@command -v npm >/dev/null || $(MAKE) --no-print-directory apt PKGS="nodejs npm"
	cd web && npm ci --no-audit --no-fund
	@touch $@

chromium:
	@command -v chromium >/dev/null || $(MAKE) --no-print-directory apt PKGS="chromium"

# A C compiler: the Sampler's GPU path is tested against a stand-in NVML library built from tests/fixtures/nvml/.
cc:
	@command -v cc >/dev/null || command -v gcc >/dev/null || $(MAKE) --no-print-directory apt PKGS="gcc libc6-dev"

# TeX Live for the paper draft (pdfLaTeX, BibTeX, latexmk) and poppler-utils (pdftotext, pdfinfo: the draft's tests).
TEX_PKGS := latexmk texlive-latex-recommended texlive-fonts-recommended poppler-utils
tex:
	@command -v latexmk >/dev/null && command -v pdflatex >/dev/null && command -v pdftotext >/dev/null \
	  && command -v pdfinfo >/dev/null && kpsewhich booktabs.sty pdflscape.sty >/dev/null \
	  || $(MAKE) --no-print-directory apt PKGS="$(TEX_PKGS)"

# Debian packages: installed when running as root; otherwise setup stops (exit 2) with the exact command.
# ALLOW_MISSING=1 goes on without them and says what will be skipped (the tests that need them skip; under CI=true
# they fail: a CI run is never green by skipping).
apt:
	@if [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages: $(PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(PKGS); \
	elif [ "$(ALLOW_MISSING)" = 1 ]; then \
	  echo "warning: missing Debian packages $(PKGS) (ALLOW_MISSING=1): the tests that need them will be skipped" \
	       "(failed under CI=true); install with: sudo apt-get install -y $(PKGS)" >&2; \
	else \
	  echo "error: missing Debian packages $(PKGS); run: sudo apt-get install -y $(PKGS)" \
	       "(or make setup ALLOW_MISSING=1 to go on without them)" >&2; exit 2; \
	fi

check-profile:
	@case " $(REPRODUCE_PROFILES) " in *" $(PROFILE) "*) ;; \
	  *) echo "error: unknown PROFILE=$(PROFILE); valid profiles: $(REPRODUCE_PROFILES)" >&2; exit 2;; esac

# FORCE=1: run even cached notebooks (and recompute their steps); ONLY="04 05": those notebooks; DRY_RUN=1 (or
# STUDY_DRY_RUN=1): print what would run and why, run nothing. CLUSTER=HOST:PORT (default $RAY_ADDRESS): the
# deployment matrix (01), the fine-tuning sweep and its repeated runs (04), the browser test (05), the version costs
# (08) and the per-member fidelity (09) run on that Ray cluster, one measured task per node (docs/cluster.md).
CLUSTER ?= $(RAY_ADDRESS)
reproduce: check-profile setup
	$(PY) -m study reproduce --profile $(PROFILE) $(if $(filter-out 0,$(FORCE)),--force) \
	  $(if $(ONLY),--only $(ONLY)) $(if $(filter-out 0,$(DRY_RUN)),--dry-run) $(if $(CLUSTER),--param cluster=$(CLUSTER)) $(if $(REFERENCE),--reference $(REFERENCE))

# The draft from the profile's results; `make reproduce` first when a notebook has none for that profile.
paper: check-profile setup
	@$(PY) -m study draft --profile $(PROFILE) --missing || $(MAKE) --no-print-directory reproduce PROFILE=$(PROFILE)
	$(PY) -m study draft --profile $(PROFILE) $(if $(filter-out 0,$(STRICT)),--strict) $(if $(REFERENCE),--reference $(REFERENCE))

# A product team's decision memo for notebook 10's shortlist: paper/build-memo/memo.pdf (after make reproduce).
memo: check-profile setup
	$(PY) -m study draft --profile $(PROFILE) --shortlist

# The simple product, released (docs/product.md): serves the published versions (or the sweep's members) of
# `make reproduce` on 127.0.0.1 and prints the URL; Ctrl-C stops it.
PORT ?= 8470
product: venv npm
	$(PY) -m study product --profile $(PROFILE) --port $(PORT)

# Did a re-run reproduce? A=DIR B=DIR: two results folders (default: the last two runs in results/history/);
# CSV=FILE|- every compared cell (docs/reproducibility.md).
compare: venv
	$(PY) -m study compare $(if $(A),$(A) $(B),--previous) $(if $(CSV),--csv $(CSV))

# The shipped reference run of a profile (reference/PROFILE/, docs/artifact.md): the latest snapshot of that profile in
# results/history/ (FROM=DIR: another), written deliberately; review its diff like code. Every `make reproduce` ends
# with its verdict against it (REFERENCE=DIR|ARCHIVE: against another).
reference: venv
	$(PY) -m study reference --profile $(PROFILE) $(if $(FROM),--from $(FROM))

# One archive for deposit of the last `make reproduce` (and `make paper`): results/artifact/study-PROFILE-COMMIT.zip
# (docs/artifact.md); JUNIT=FILE: the `make test` result (default results/junit.xml).
artifact: venv
	$(PY) -m study artifact --profile $(PROFILE) $(if $(OUT),--out $(OUT)) $(if $(JUNIT),--junit $(JUNIT))

test: setup
	$(PY) -m pytest $(XDIST) -m "not load" --durations=30 $(PYTEST_ARGS)

# The fault and resource tests (marker `stress`) once on one core at nice 19, then STRESS_RUNS times under two CPU
# burners, each followed by the tests with burners of their own (marker `load`, which `make test` leaves out; no
# other load beside them) (tests/stress.py); the table goes to STRESS_OUT after every run (docs/measured/tests.md).
STRESS_RUNS ?= 10
STRESS_OUT ?= results/stress.md
test-stress: setup
	@mkdir -p $(dir $(STRESS_OUT))
	$(PY) -m tests.stress --runs $(STRESS_RUNS) --out $(STRESS_OUT) $(if $(PYTEST_ARGS),-- $(PYTEST_ARGS))

test-fast: venv
	$(PY) -m pytest $(XDIST) -m "not slow" $(PYTEST_ARGS)

check: setup
	$(PY) -m study check --profile $(PROFILE)

lab: setup
	$(PY) -m jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

benchmarks: setup
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lock: venv
	$(PY) -m study.runs.lockfile > requirements/lock.txt.new && mv requirements/lock.txt.new requirements/lock.txt

clean:
	rm -rf results .cache figures/*.pdf figures/*.png .pytest_cache paper/build paper/build.failed

distclean: clean
	rm -rf $(VENV) web/node_modules
