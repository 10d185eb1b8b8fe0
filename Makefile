# ftlab: two commands do everything on a fresh Linux machine with Python 3.10+.
#   make test       unit tests + every notebook under nbval, fast profile
#   make reproduce  every notebook in order, classroom profile, reports into reports/
#   make data       find or fetch (MD5-checked) the files the notebooks need, or say what is missing
#   make book       the notebooks executed in $(PROFILE) as an HTML book -> book/_build/$(PROFILE)/html
#   make reference  the book, then each executed notebook as docs/reference/NN.html (answers left out, stamped)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ftlab-installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
PROFILE ?= classroom
REPORTS ?= reports
# Notebooks 05 and 07 need a polyp folder (CVC-ClinicDB from its owners, or Kvasir-SEG: see data/README.md).
# Without one, make test runs it on a synthetic folder that helpers.detection.data builds, so it is never skipped,
# and make reproduce skips it, saying why.
HAVE_POLYP = $(shell $(PY) -m helpers.detection.data find >/dev/null 2>&1 && echo yes)
SYNTHETIC_POLYP := $(REPORTS)/_synthetic_polyp
POLYP_ENV = $(if $(HAVE_POLYP),,FTLAB_POLYP_DIR=$(abspath $(SYNTHETIC_POLYP)))
TEST_NOTEBOOKS = $(NOTEBOOKS)
# Student copies (make student): nbgrader's student version of the notebooks (answers replaced by stubs, hidden
# tests left out). make test runs their graded cells under nbval (their checks say "not done"); every other cell
# is the teacher's, unchanged (tests/test_grading.py), and runs in the teacher's notebook.
STUDENT_SOURCES = $(TEST_NOTEBOOKS)
STUDENT_NOTEBOOKS = $(patsubst notebooks/%,student/%,$(STUDENT_SOURCES))
# make test and make quick use both cores (pytest-xdist; =0: one process). Notebook kernels start on IPC sockets of
# their own (conftest.py, helpers/kernels.py), so the two workers never share a kernel port (docs/benchmarks.md).
QUICK_WORKERS ?= 2
TEST_WORKERS ?= 2

.PHONY: install data test quick unit notebooks synthetic-polyp student browser book reference reproduce lab bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[lab,teach,docs,test,cluster,tensorboard,dicom]'
	$(PY) -m ipykernel install --prefix $(VENV) --name python3 >/dev/null
	@touch $(STAMP)

# Every data set the notebooks read for $(PROFILE) (FTLAB_DATASET or PneumoniaMNIST): found, MD5-checked
# or downloaded; when one is missing and cannot be fetched, this stops at once and says what to do.
data: $(STAMP)
	$(PY) -m helpers.preflight --profile $(PROFILE)
	@$(PY) -m helpers.detection.data find >/dev/null 2>&1 || $(PY) -m helpers.detection.data fetch-kvasir || \
		echo "Kvasir-SEG could not be downloaded (see the error above): make reproduce will skip notebooks 05 and 07; put CVC-ClinicDB or Kvasir-SEG in data/polyp/ (data/README.md)."

test: $(STAMP)
	@$(PY) -m helpers.preflight --profile fast
	@$(MAKE) --no-print-directory synthetic-polyp
	@rm -rf $(REPORTS)/_fast   # the fast profile always runs fresh (its sweeps would otherwise resume)
	@$(PY) -m helpers.classroom student $(STUDENT_SOURCES) >/dev/null
	$(POLYP_ENV) FTLAB_PROFILE=fast $(PY) -m pytest -q tests $(TEST_NOTEBOOKS) $(STUDENT_NOTEBOOKS) \
		--nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider \
		-n $(TEST_WORKERS) --dist loadscope --durations=25

synthetic-polyp: $(STAMP)
	@$(if $(HAVE_POLYP),,echo "No polyp data set found (FTLAB_POLYP_DIR, data/polyp/): notebooks 05 and 07 run on a synthetic folder, $(SYNTHETIC_POLYP)." && \
		$(PY) -m helpers.detection.data synthetic $(SYNTHETIC_POLYP) --frames 60 --sequences 6 >/dev/null)

# The quick loop for one's own edits: unit tests without notebook subprocesses, the browser, the toy-scale full
# profile, the data-set matrices, the cluster or tests marked slow (calibration, reproducibility); prints the slowest.
quick: $(STAMP)
	FTLAB_PROFILE=fast $(PY) -m pytest -q tests -p no:nbval -p no:cacheprovider -m "not slow" --durations=10 \
		-n $(QUICK_WORKERS) --dist loadscope

unit: $(STAMP)
	FTLAB_PROFILE=fast $(PY) -m pytest -q tests -p no:nbval

notebooks: $(STAMP) synthetic-polyp
	$(POLYP_ENV) FTLAB_PROFILE=fast $(PY) -m pytest -q $(TEST_NOTEBOOKS) --nbval-lax --nbval-current-env --nbval-cell-timeout=600

# Student copies by nbgrader generate_assignment (git-ignored: always made fresh from notebooks/, never stale);
# nbgrader's course directory, for autograding submissions, is build/nbgrader (docs/teaching.md).
student: $(STAMP)
	$(PY) -m helpers.classroom student $(STUDENT_SOURCES)

# The rendered book (Sphinx + myst-nb, sources in book/): every notebook executed in $(PROFILE) in its own folder,
# a landing page with the findings, and the docs/ pages (results, methods, teaching...) ->
# $(BOOK_BUILD)/html/index.html. jupyter-cache keeps each executed notebook: a rebuild reruns only notebooks whose
# code changed (a change to helpers/, the profile or the data variables reruns all). Classroom from scratch: about as long as make reproduce; without a polyp data set
# notebooks 05 and 07 are left out, as in make reproduce.
BOOK_BUILD = book/_build/$(PROFILE)
BOOK_NOTEBOOKS = $(if $(HAVE_POLYP),,$(filter-out 05_polyp_detection 07_polyp_segmentation,$(basename $(notdir $(NOTEBOOKS)))))
book: $(STAMP)
	@$(PY) -m helpers.preflight --profile $(PROFILE)
	@start=$$(date +%s); \
	FTLAB_PROGRESS=off FTLAB_PROFILE=$(PROFILE) FTLAB_BOOK_BUILD=$(abspath $(BOOK_BUILD)) FTLAB_BOOK_NOTEBOOKS="$(BOOK_NOTEBOOKS)" \
		FTLAB_BOOK_POLYP=$(if $(HAVE_POLYP),yes,no) \
		$(PY) -m sphinx -b html -d $(BOOK_BUILD)/doctrees book $(BOOK_BUILD)/html && \
	echo "== the book ($(PROFILE) profile, $$(( $$(date +%s) - start )) s): $(BOOK_BUILD)/html/index.html"

# Reference copies for students (docs/reference/NN.html, answers left out, stamped with the commit, the date, the
# machine and each notebook's execution time): the book's executed notebooks exported to HTML. The sweeps resume
# from the book's results store, so an interrupted build continues where it stopped.
reference: book
	$(PY) -m helpers.reference $(BOOK_BUILD) docs/reference --profile $(PROFILE)

# Only the browser test: JupyterLab in Debian's chromium runs notebooks 03 and 04, and a small rendered book
# (notebook 01) is opened page by page (part of make test too).
browser: $(STAMP)
	FTLAB_PROFILE=fast $(PY) -m pytest -q tests/test_browser.py -p no:nbval -p no:cacheprovider

reproduce: $(STAMP)
	@$(PY) -m helpers.preflight --profile $(PROFILE)
	@mkdir -p $(REPORTS)
	@set -e; for nb in $(NOTEBOOKS); do \
		name=$$(basename $$nb .ipynb); start=$$(date +%s); \
		if { [ "$$name" = 05_polyp_detection ] || [ "$$name" = 07_polyp_segmentation ]; } && [ -z "$(HAVE_POLYP)" ]; then \
			echo "== $$name skipped: no polyp data set (no CVC-ClinicDB or Kvasir-SEG in data/polyp/ or FTLAB_POLYP_DIR; run make data with network, see data/README.md)"; \
			continue; fi; \
		echo "== $$name ($(PROFILE) profile)"; \
		( cd notebooks && FTLAB_PROGRESS=off FTLAB_PROFILE=$(PROFILE) FTLAB_REPORTS_DIR=$(abspath $(REPORTS)) ../$(PY) -m helpers.kernels --progress-bar --cwd . $$name.ipynb ../$(REPORTS)/$$name.ipynb ); \
		$(PY) -m jupyter nbconvert --to html --log-level WARN $(REPORTS)/$$name.ipynb --output-dir $(REPORTS); \
		echo "== $$name took $$(( $$(date +%s) - start )) s"; \
	done
	@echo "Reports, figures and tables are in $(REPORTS)/"

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

bench: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf book/_build   # make book: the HTML and its execution cache
	rm -rf $(REPORTS) .pytest_cache student build/nbgrader
