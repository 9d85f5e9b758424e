# FieldKit: one target per everyday action. `make run` and `make test` do all set-up.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# libzbar0: pyzbar; tmux and chromium: the UI and console tests; swtpm, libtss2-dev and
# pkg-config: a software TPM and the headers tpm2-pytss builds against (the TPM tests);
# libreoffice-calc-nogui: the test that LibreOffice opens our charts.
SYSPKGS := libzbar0 tmux chromium swtpm libtss2-dev pkg-config libreoffice-calc-nogui

.PHONY: run test test-fast lint bench system-deps clean help

help:
	@echo "make run    - set up .venv and start FieldKit (embedded SQLite in your data directory)"
	@echo "make test   - set up .venv and run the whole test suite"
	@echo "make lint   - ruff format --check, ruff check, mypy and the import contracts"
	@echo "make bench  - run the benchmarks in bench/"

$(STAMP): pyproject.toml constraints.txt
	@$(MAKE) --no-print-directory system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# TPM sealing (the tpm extra: tpm2-pytss builds against libtss2-dev) only where that is there.
	@extras=test; if pkg-config --exists tss2-esys 2>/dev/null; then extras=test,tpm; else \
	  echo "note: no libtss2-dev: TPM sealing not installed (sudo apt-get install -y libtss2-dev pkg-config)"; fi; \
	echo "$(BIN)/pip install -c constraints.txt -e '.[$$extras]'"; \
	$(BIN)/pip install --quiet -c constraints.txt -e ".[$$extras]"
	@touch $(STAMP)

# System libraries: installed with apt-get when root, otherwise the exact command is printed.
# FieldKit starts without them and says which scanning engine is missing.
system-deps:
	@missing=""; \
	for p in $(SYSPKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "note: install$$missing with your package manager (pyzbar needs the zbar library)"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  (apt-get install -y -q $$missing >/dev/null 2>&1 || \
	   (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $$missing >/dev/null 2>&1)) \
	  && echo "installed:$$missing" || echo "warning: could not install$$missing; FieldKit runs without them"; \
	else \
	  echo "note: missing system packages:$$missing"; \
	  echo "      install them with: sudo apt-get install -y$$missing"; \
	fi

run: $(STAMP)
	$(BIN)/fieldkit $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

# Style, types and the import contracts (pyproject.toml: [tool.ruff], [tool.mypy],
# [tool.importlinter]); CI runs it before the tests.
lint: $(STAMP)
	$(BIN)/ruff format --check fieldkit scanners sync tests bench
	$(BIN)/ruff check fieldkit scanners sync tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
