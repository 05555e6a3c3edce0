# Two entry points (see README): `make run` and `make test`. Both create .venv and install the
# package from pyproject.toml first, so they work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SCALE ?= lab
OUT ?= outputs

.PHONY: setup run test clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e ".[all]"
	$(BIN)/python -c "from neurodepth_lib.cells import ensure_mechanisms; ensure_mechanisms(verbose=True)"
	touch $@

# The main job: every notebook, headless, at $(SCALE), into $(OUT)/, with a summary of each receipt.
run: setup
	$(BIN)/neurodepth notebooks --scale $(SCALE) --out $(OUT)

# The whole test suite: unit tests, every notebook once under nbval at quick scale, then the checks of
# their receipts (conftest.py orders them); a timing report is printed and written to outputs/test-timings.json.
test: setup
	NEURODEPTH_SCALE=quick $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

clean:
	rm -rf $(VENV) $(OUT)
