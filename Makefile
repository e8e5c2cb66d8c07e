# One-command setup: every target creates or reuses .venv from the pinned requirements.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test test-fast demo bench zip clean

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 tests

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow" tests

demo: $(STAMP)
	$(PY) -m chromm_addon demo --out demo_out

zip: $(STAMP)
	$(PY) -m chromm_addon.packaging --out dist

clean:
	rm -rf dist demo_out .pytest_cache
