# sap-llm-release: `make demo` runs a full release rehearsal on the local stack, `make test` runs the tests.
# Both install what they need first (Debian packages, the virtualenv with pinned dependencies).

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
LOADTEST_VENV := .venv-loadtest
VALIDATOR_VENV := .venv-validator
VALIDATOR := PYTHONPATH=inference_images:inference_images/validator $(VALIDATOR_VENV)/bin/python
# The rehearsal's model: SAP_LLM's three components at the tiny size, trained for seconds on synthetic documents,
# with its manifest, its labelled train / test / held-out sets (70/15/15) and their dataset manifest (the rehearsal
# profile's job inputs point here).
REHEARSAL_MODEL := .models/rehearsal
# The rehearsal's knowledge base and process memory graph (SQLite, the stores' schemas in stack/stores/): the local
# stack's data stores, which the data gates query.
REHEARSAL_STORES := $(REHEARSAL_MODEL)/stores
# pip without byte-compiling: Python compiles the modules a process imports when it first imports them, a small part
# of torch's and Airflow's trees, and the install takes half the time (the validator's venv: 73 s -> 23 s). That
# needs Python to keep what it compiled: with PYTHONDONTWRITEBYTECODE set (as in some CI images) every process would
# compile torch, transformers and Airflow again (a model evaluation: 8.4 s of CPU with the bytecode, 17.5 s without).
PIP_INSTALL := -m pip install -q --no-compile
unexport PYTHONDONTWRITEBYTECODE

.PHONY: setup demo demo-rollback demo-audits test test-celery lint benchmarks clean

SETUP_ARTEFACTS := $(VENV)/.installed $(LOADTEST_VENV)/.installed $(VALIDATOR_VENV)/.installed \
	$(REHEARSAL_MODEL)/manifest.json $(REHEARSAL_MODEL)/evaluation.json $(REHEARSAL_MODEL)/review/sample.jsonl \
	$(REHEARSAL_STORES)/.built

# The three environments install side by side, the rehearsal model trains while the others install.
setup:
	@$(MAKE) --no-print-directory --jobs=3 --output-sync=target $(SETUP_ARTEFACTS)
	@scripts/ensure_system_packages.sh

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) $(PIP_INSTALL) --upgrade pip
	$(PY) $(PIP_INSTALL) -c constraints.txt -e ".[test]"
	touch $@

# The load-test image's own environment (locust), used by its local-process entrypoint and its tests.
$(LOADTEST_VENV)/.installed: inference_images/loadtest/requirements.txt
	$(PYTHON) -m venv $(LOADTEST_VENV)
	$(LOADTEST_VENV)/bin/python $(PIP_INSTALL) --upgrade pip
	$(LOADTEST_VENV)/bin/python $(PIP_INSTALL) -r inference_images/loadtest/requirements.txt
	touch $@

# The validator image's own environment: torch's CPU build (never a CUDA one here), then the frozen requirements.
$(VALIDATOR_VENV)/.installed: inference_images/validator/requirements.txt
	$(PYTHON) -m venv $(VALIDATOR_VENV)
	$(VALIDATOR_VENV)/bin/python $(PIP_INSTALL) --upgrade pip
	$(VALIDATOR_VENV)/bin/python $(PIP_INSTALL) torch==2.13.0
	$(VALIDATOR_VENV)/bin/python $(PIP_INSTALL) -r inference_images/validator/requirements.txt
	touch $@

$(REHEARSAL_MODEL)/manifest.json: $(VALIDATOR_VENV)/.installed $(wildcard inference_images/sap_llm_model/*.py) \
		$(wildcard inference_images/sap_llm_contract/*.py) \
		inference_images/validator/sap_llm_validator/train.py Makefile
	rm -rf $(REHEARSAL_MODEL)/model $(REHEARSAL_MODEL)/*.json* && mkdir -p $(REHEARSAL_MODEL)  # not the stores
	$(VALIDATOR) -m sap_llm_contract.documents --count 700 --seed 1 --split train --out $(REHEARSAL_MODEL)/train.jsonl \
		--manifest $(REHEARSAL_MODEL)/dataset_manifest.jsonl
	$(VALIDATOR) -m sap_llm_contract.documents --count 150 --seed 2 --split test --out $(REHEARSAL_MODEL)/test.jsonl \
		--manifest $(REHEARSAL_MODEL)/dataset_manifest.jsonl
	$(VALIDATOR) -m sap_llm_contract.documents --count 150 --seed 3 --split heldout \
		--out $(REHEARSAL_MODEL)/heldout.jsonl --manifest $(REHEARSAL_MODEL)/dataset_manifest.jsonl
	$(VALIDATOR) -m sap_llm_validator train --train $(REHEARSAL_MODEL)/train.jsonl --out $(REHEARSAL_MODEL)/model \
		--manifest $(REHEARSAL_MODEL)/manifest.json.tmp --result $(REHEARSAL_MODEL)/train.json --workers 3 > /dev/null
	mv $(REHEARSAL_MODEL)/manifest.json.tmp $@

# The rehearsal model's evaluation on its test set, kept with it: the monthly audit's confidence drift compares
# production's confidences with the test set's histogram in it.
$(REHEARSAL_MODEL)/evaluation.json: $(REHEARSAL_MODEL)/manifest.json $(wildcard inference_images/validator/sap_llm_validator/*.py)
	$(VALIDATOR) -m sap_llm_validator evaluate --artifacts $(REHEARSAL_MODEL)/model --test $(REHEARSAL_MODEL)/test.jsonl \
		--heldout $(REHEARSAL_MODEL)/heldout.jsonl --result $@ > /dev/null

# The weekly audit's accuracy review sample on the rehearsal profile: labelled documents apart from the model's sets.
$(REHEARSAL_MODEL)/review/sample.jsonl: $(VALIDATOR_VENV)/.installed $(wildcard inference_images/sap_llm_contract/*.py)
	mkdir -p $(REHEARSAL_MODEL)/review
	$(VALIDATOR) -m sap_llm_contract.documents --count 150 --seed 4 --split test --out $@

$(REHEARSAL_STORES)/.built: $(VENV)/.installed sap_llm_release/rehearsal/stores.py $(wildcard stack/stores/*.sql) \
		$(wildcard inference_images/sap_llm_contract/*.py) | $(REHEARSAL_MODEL)/manifest.json
	$(PY) -m sap_llm_release.rehearsal.stores --dir $(REHEARSAL_STORES)
	touch $@

# EXECUTOR=celery runs the same rehearsal on Airflow's separate components with the CeleryExecutor and a Redis broker.
EXECUTOR ?= local

demo: setup
	$(PY) scripts/demo.py --executor $(EXECUTOR)

demo-rollback: setup
	$(PY) scripts/demo.py --executor $(EXECUTOR) --inject-errors-at 20

demo-audits: setup
	$(PY) scripts/demo_audits.py

# The live rehearsals wait out compressed traffic windows: four workers, each with its own stack on its own ports,
# run them side by side, each taking the next test as it frees (tests/support/queue_order.py says in which order).
TEST_WORKERS ?= 4

# The rehearsals on Airflow's real components with the CeleryExecutor (tests/dags/test_release_on_celery.py: a release
# and a rollback through restarts with the UI driven in a real browser; components killed mid-gate, mid-rollback,
# through a breach; two schedulers; the database restarted) cost more CPU than the suite's budget on two cores holds
# (with the first alone, make test took 14:04 and 14:58 from a fresh clone): `make test-celery` runs them.
test: setup
	$(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup --durations=20 -m "not celery"

test-celery: setup
	$(PY) -m pytest -q -p no:cacheprovider --durations=10 tests/dags/test_release_on_celery.py

lint: setup
	$(VENV)/bin/ruff check sap_llm_release operators dags plugins scripts benchmarks tests inference_images

benchmarks: setup
	$(PY) benchmarks/dag_parse.py
	$(PY) benchmarks/rollback_reaction.py
	$(PY) benchmarks/audit_month.py
	$(PY) benchmarks/dr_drill.py
	$(PY) benchmarks/stack_idle_cpu.py
	$(VALIDATOR) benchmarks/validator_cpu.py

clean:
	rm -rf $(VENV) $(LOADTEST_VENV) $(VALIDATOR_VENV) .models .stack .airflow .airflow-audits
