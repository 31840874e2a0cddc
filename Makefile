# sap-llm-release: `make demo` runs a full release rehearsal on the local stack, `make test` runs the tests.
# Both install what they need first (Debian packages, the virtualenv with pinned dependencies).

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
LOADTEST_VENV := .venv-loadtest

.PHONY: setup demo demo-rollback test lint benchmarks clean

setup: $(VENV)/.installed $(LOADTEST_VENV)/.installed
	@scripts/ensure_system_packages.sh

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $@

# The load-test image's own environment (locust), used by its local-process entrypoint and its tests.
$(LOADTEST_VENV)/.installed: inference_images/loadtest/requirements.txt
	$(PYTHON) -m venv $(LOADTEST_VENV)
	$(LOADTEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOADTEST_VENV)/bin/python -m pip install -q -r inference_images/loadtest/requirements.txt
	touch $@

demo: setup
	$(PY) scripts/demo.py

demo-rollback: setup
	$(PY) scripts/demo.py --inject-errors-at 20

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

lint: setup
	$(VENV)/bin/ruff check sap_llm_release operators dags plugins scripts benchmarks tests inference_images

benchmarks: setup
	$(PY) benchmarks/dag_parse.py
	$(PY) benchmarks/rollback_reaction.py

clean:
	rm -rf $(VENV) $(LOADTEST_VENV) .stack .airflow
