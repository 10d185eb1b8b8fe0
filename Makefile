# ftlab: two commands do everything on a fresh Linux machine with Python 3.10+.
#   make test       unit tests + every notebook under nbval, fast profile
#   make reproduce  every notebook in order, classroom profile, reports into reports/
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ftlab-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
PROFILE ?= classroom
REPORTS ?= reports

.PHONY: install test unit notebooks reproduce lab bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 >/dev/null
	@touch $(STAMP)

test: $(STAMP)
	@rm -rf $(REPORTS)/_fast   # the fast profile always runs fresh (its sweeps would otherwise resume)
	FTLAB_PROFILE=fast $(PY) -m pytest -q tests $(NOTEBOOKS) \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider

unit: $(STAMP)
	FTLAB_PROFILE=fast $(PY) -m pytest -q tests -p no:nbval

notebooks: $(STAMP)
	FTLAB_PROFILE=fast $(PY) -m pytest -q $(NOTEBOOKS) --nbval-lax --nbval-current-env --nbval-cell-timeout=600

reproduce: $(STAMP)
	@mkdir -p $(REPORTS)
	@set -e; for nb in $(NOTEBOOKS); do \
		name=$$(basename $$nb .ipynb); \
		echo "== $$name ($(PROFILE) profile)"; \
		( cd notebooks && FTLAB_PROFILE=$(PROFILE) ../$(PY) -m papermill --cwd . $$name.ipynb ../$(REPORTS)/$$name.ipynb -k python3 ); \
		$(PY) -m jupyter nbconvert --to html --log-level WARN $(REPORTS)/$$name.ipynb --output-dir $(REPORTS); \
	done
	@echo "Reports, figures and tables are in $(REPORTS)/"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf $(REPORTS) .pytest_cache
