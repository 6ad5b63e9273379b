# One-line entry points for a fresh machine: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	mkdir -p reports
	$(VENV)/bin/station capture --sensor main --format dng -o reports/capture-main.dng

test: $(STAMP)
	$(VENV)/bin/ruff check station calibration targets fixtures tests
	$(PY) -m pytest -n 2 tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check station calibration targets fixtures tests

clean:
	rm -rf $(VENV) reports/allure-results reports/html
