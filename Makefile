# Two entry points (see README): `make run` and `make test`. Both create .venv and install the
# package from pyproject.toml first, so they work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SCALE ?= lab
OUT ?= outputs

.PHONY: setup run test student lock clean

setup: $(VENV)/.installed

# pyproject.toml gives ranges; constraints.txt the exact versions the suite runs on.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e ".[all]"
	$(BIN)/python -c "from neurodepth_lib.cells import ensure_mechanisms; ensure_mechanisms(verbose=True)"
	touch $@

# The main job: every notebook, headless, at $(SCALE), into $(OUT)/, with a summary of each receipt.
run: setup
	$(BIN)/neurodepth notebooks --scale $(SCALE) --out $(OUT)

# The whole test suite: unit tests, every notebook once under nbval at quick scale, then the checks of
# their receipts (conftest.py orders them); a timing report is printed and written to outputs/test-timings.json.
test: setup
	NEURODEPTH_SCALE=quick $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

# The chapters without their solutions, for a class (tools/student_notebooks.py; build/ is ignored by git).
student:
	python3 tools/student_notebooks.py --out build/student_notebooks

# Rewrite constraints.txt from what .venv holds (after a dependency was added or upgraded there).
lock: setup
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable | grep -v '^neurodepth' \
	  | sed 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/'; } > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) $(OUT)
