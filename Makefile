# One-line entry points for a fresh machine: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Allure Report 3 (npm `allure`, pinned in package.json / package-lock.json) for `station report`
NODE_STAMP := node_modules/.installed

.PHONY: run test lint install clean check-install

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm install --no-audit --no-fund && touch $(NODE_STAMP); \
	else \
		echo "npm not found: the HTML report (station report) needs Node.js 20+ and npm; everything else works"; \
	fi

install: $(STAMP) $(NODE_STAMP)

run: install
	$(VENV)/bin/station run

test: install
	$(VENV)/bin/ruff check station calibration targets fixtures tests
	$(PY) -m pytest -n 2 --dist loadgroup tests/unit

lint: $(STAMP)
	$(VENV)/bin/ruff check station calibration targets fixtures tests

# the wheel installed into a fresh venv outside the checkout runs a plan subset on the twin
check-install: $(STAMP)
	PYTHON=$(abspath $(PY)) sh tools/check_install.sh

clean:
	rm -rf $(VENV) node_modules reports/runs reports/records reports/allure-results reports/html
