"""Test-wide set-up: an isolated Airflow home and ledger, the PostgreSQL server for the ledger tests, and the
live local stack (nginx, Prometheus, blue/green) for the tests marked ``stack``."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.support.approvals import SIGNING_SECRET
from tests.support.queue_order import order_the_queue, uses_stack

ROOT = Path(__file__).resolve().parent.parent

_HOME = Path(tempfile.mkdtemp(prefix="sap-llm-tests-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
# One directory for the whole run, shared by the pytest-xdist workers (they inherit it from the controller, which
# loads this file first): the migrated Airflow database they all copy lives there.
if "SAP_LLM_TEST_SHARED_DIR" not in os.environ:
    os.environ["SAP_LLM_TEST_SHARED_DIR"] = tempfile.mkdtemp(prefix="sap-llm-tests-shared-")
    atexit.register(shutil.rmtree, os.environ["SAP_LLM_TEST_SHARED_DIR"], ignore_errors=True)
os.environ.update(
    {
        "AIRFLOW_HOME": str(_HOME / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW_CONN_SAP_LLM_LEDGER": f'{{"conn_type": "sqlite", "host": "{_HOME / "ledger.db"}"}}',
        "AIRFLOW__API_AUTH__JWT_SECRET": "release-board-tests-only-" + "x" * 48,
        "AIRFLOW_CONN_SAP_LLM_SLACK_SIGNING": f'{{"conn_type": "generic", "password": "{SIGNING_SECRET}"}}',
    }
)

from sap_llm_release.rehearsal.local_postgres import temporary_postgres  # noqa: E402

# Each pytest-xdist worker runs its own live stack on its own 20 ports: the session's stack on the first ten, a
# benchmark's stack on the next ten. Below Linux's ephemeral range (32768-60999): a port there can be taken at any
# moment by the local end of an outgoing connection (a Prometheus scrape, a keep-alive client), and green's deploy
# then fails to bind.
WORKER_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
BASE_PORT = int(os.environ.get("SAP_LLM_TEST_BASE_PORT", "28080")) + 20 * WORKER_INDEX


@pytest.fixture(scope="session")
def postgres_url():
    """URL of a throwaway PostgreSQL database: the ledger runs on PostgreSQL too, so its absence is a failure."""
    with temporary_postgres() as url:
        if url is None:
            pytest.fail("PostgreSQL binaries are missing (make setup installs Debian's postgresql)")
        yield url


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated Airflow metadata database in the test home: a copy of the run's one migrated database."""
    from tests.support.airflow_db import copy_migrated_airflow_db

    copy_migrated_airflow_db(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db")
    return os.environ["AIRFLOW_HOME"]


_stack: dict = {}  # the worker's live stack, while its tests need it


@pytest.fixture
def local_stack():
    """The worker's live local stack on its own ports: started for the first test that needs it and stopped after
    the last of a run of such tests (the queue keeps them together: tests/support/queue_order.py). Its Prometheus is
    up: a rehearsal that killed it may have run just before on this worker."""
    return live_stack()


def live_stack():
    """The worker's live stack (see ``local_stack``), for a fixture of a wider scope that needs it."""
    from tests.support.stack import LiveStack

    if "live" not in _stack:
        _stack["live"] = stack = LiveStack.start(_HOME / "stack", base_port=BASE_PORT)
        os.environ["SAP_LLM_STACK_DIR"] = str(stack.dir)
        os.environ["AIRFLOW_CONN_SAP_LLM_PROMETHEUS"] = stack.prometheus_connection
    _stack["live"].ensure_prometheus()
    return _stack["live"]


def _stop_stack() -> None:
    stack = _stack.pop("live", None)
    if stack is not None:
        stack.stop()
        for name in ("SAP_LLM_STACK_DIR", "AIRFLOW_CONN_SAP_LLM_PROMETHEUS"):
            os.environ.pop(name, None)


def pytest_configure(config):
    config.addinivalue_line("markers", "celery: a rehearsal on Airflow's real components and the CeleryExecutor "
                                       "left out of make test for its CPU (make test-celery)")


def pytest_collection_modifyitems(items):
    order_the_queue(items)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """Stop the live stack once the next test needs none (it would burn a tenth of a core while the rest runs)."""
    if nextitem is None or not uses_stack(nextitem):
        _stop_stack()


def pytest_sessionfinish(session):
    _stop_stack()


ARTEFACTS = Path(__file__).resolve().parent.parent / "test-artefacts"  # kept after the run (CI uploads it)


@pytest.fixture
def artefacts(request) -> Path:
    """A folder of this test's own under test-artefacts/ for what people look at afterwards (screenshots)."""
    folder = ARTEFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def unused_stack_ports() -> int:
    """The first of ten ports this worker keeps free for a stack of a test's own (a benchmark's)."""
    return BASE_PORT + 10


@pytest.fixture(scope="session")
def notification_standins():
    """Slack's Web API and PagerDuty's Events API stand-ins, wired in as the release's Airflow connections."""
    import json

    from sap_llm_release.rehearsal.standins import slack_and_pagerduty

    with slack_and_pagerduty(_HOME / "pagerduty-tls") as (slack, pagerduty):
        os.environ["AIRFLOW_CONN_SAP_LLM_SLACK"] = json.dumps(
            {"conn_type": "slack", "password": "xoxb-release-tests", "extra": {"base_url": slack.url,
                                                                               "channel": "#releases"}})
        os.environ["AIRFLOW_CONN_SAP_LLM_PAGERDUTY"] = json.dumps(
            {"conn_type": "pagerduty_events", "password": "R0UT1NGKEY0000000000000000000000",
             "extra": {"url": pagerduty.url, "verify": pagerduty.ca_file}})
        try:
            yield slack, pagerduty
        finally:
            for name in ("AIRFLOW_CONN_SAP_LLM_SLACK", "AIRFLOW_CONN_SAP_LLM_PAGERDUTY"):
                os.environ.pop(name, None)


@pytest.fixture
def fresh_stack(local_stack):
    """The stack as production looks before a release: blue at 100 %, no green, no faults."""
    local_stack.reset()
    return local_stack


@pytest.fixture
def quiet_stack(fresh_stack):
    """A fresh stack with no critical alert pending or firing, for releases that must pass SLO windows."""
    fresh_stack.forget_alerts()
    return fresh_stack


@pytest.fixture
def traffic_spec(tmp_path, monkeypatch) -> Path:
    """The release built from the spec cut down to what happens once traffic moves (``write_traffic_spec``), for
    the rehearsals whose every assertion is about the shifts, their windows, the approvals and the rollback: each
    skips about ninety gate tasks, the model evaluation and the load test that the full spec's rehearsals run."""
    from tests.support.runs import write_traffic_spec

    path = write_traffic_spec(tmp_path / "traffic-spec.yaml")
    monkeypatch.setenv("SAP_LLM_RELEASE_SPEC", str(path))
    return path


@pytest.fixture
def kube_api():
    """A Kubernetes API server stand-in on a loopback port (tests/support/kube_api.py), fresh for each test."""
    from tests.support.kube_api import ClusterStandIn

    with ClusterStandIn() as kube:
        yield kube
