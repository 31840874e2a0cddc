"""The promote-or-rollback decision: promote only on proof, roll back whenever traffic may have moved."""

from __future__ import annotations

import socket
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow.sdk.exceptions import AirflowFailException

from operators import traffic
from sap_llm_release.analysis.readiness import readiness_url
from sap_llm_release.deployers.local_process import LocalProcessDeployer
from tests.support.runs import release_dag

WATCHED = ("traffic_shift", "post_deployment")


@pytest.fixture(scope="module")
def decide():
    return release_dag().get_task("decide_promote_or_rollback")


def _states(decide, **overrides):
    states = {t.task_id: "success" for t in decide.dag.tasks if t.task_id.split(".")[0] in WATCHED}
    states["start_release"] = "success"
    states.update(overrides)
    return states


def _choose(monkeypatch, decide, states, green_has_traffic=False):
    monkeypatch.setattr(traffic, "task_states", lambda context: states)
    monkeypatch.setattr(type(decide), "_green_has_traffic", lambda self, context: green_has_traffic)
    return decide.choose_branch(context={})


def test_every_watched_task_succeeded_promotes(monkeypatch, decide):
    assert _choose(monkeypatch, decide, _states(decide)) == "decommission_blue.blue_has_no_traffic"


def test_a_failed_window_rolls_back(monkeypatch, decide):
    states = _states(decide, **{"traffic_shift.watch_020": "failed"})
    assert _choose(monkeypatch, decide, states) == "rollback.rollback_to_blue"


def test_a_watched_task_without_a_state_rolls_back_rather_than_promotes(monkeypatch, decide):
    states = _states(decide)
    del states["post_deployment.post_error_rate"]
    assert _choose(monkeypatch, decide, states) == "rollback.rollback_to_blue"


def test_nothing_touched_before_the_first_shift(monkeypatch, decide):
    states = _states(decide, **{"traffic_shift.shift_to_005": "upstream_failed"})
    assert _choose(monkeypatch, decide, states) == []


def test_a_router_sending_traffic_to_green_counts_as_touched(monkeypatch, decide):
    states = _states(decide, **{"traffic_shift.shift_to_005": "upstream_failed"})
    assert _choose(monkeypatch, decide, states, green_has_traffic=True) == "rollback.rollback_to_blue"


def test_a_release_that_never_started_touches_nothing(monkeypatch, decide):
    states = _states(decide, start_release="failed", **{"traffic_shift.shift_to_005": "upstream_failed"})
    assert _choose(monkeypatch, decide, states, green_has_traffic=True) == []


# -- the readiness check right before a shift ------------------------------------------------------------------------

class StandInRun:
    """What the shift's readiness check reads from a release run: the target's deployer, green's readiness URL, and
    the ledger's events it records."""

    def __init__(self, deployer, ready_url: str) -> None:
        self.target = types.SimpleNamespace(deployer=deployer)
        self.ready_url = ready_url
        self.events: list[tuple[str, str]] = []

    def green_ready_url(self) -> str:
        return self.ready_url

    def event(self, name: str, detail: str = "") -> None:
        self.events.append((name, detail))


class ReadyDeployer:
    def wait_ready(self, colour: str, timeout_s: float) -> tuple[bool, str]:
        return True, f"{colour} ready"


@pytest.fixture
def answering_green():
    """A readiness endpoint answering 200, on a loopback port."""

    class Ready(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(200 if self.path == "/health/ready" else 404)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _shift(weight: int = 50) -> traffic.ShiftTrafficOperator:
    return traffic.ShiftTrafficOperator(task_id=f"shift_to_{weight:03d}", spec_path="specs/sap_llm.yaml",
                                        weight=weight)


def test_a_dead_green_is_not_shifted_to_and_the_refusal_is_recorded(tmp_path, answering_green):
    """The local deployer finds no green process (killed): the shift fails before any weight is written."""
    deployer = LocalProcessDeployer(state_dir=tmp_path, ports={"blue": 1, "green": 2}, server_command=["true"])
    run = StandInRun(deployer, readiness_url(answering_green))
    with pytest.raises(AirflowFailException, match="refusing to shift 50% to green: it is not ready"):
        _shift(50)._require_green_ready(run)
    ((name, detail),) = run.events
    assert name == "green_not_ready_before_shift" and detail.startswith("step 50%: local green deployment is not")


def test_a_green_ready_by_its_platform_but_not_answering_is_not_shifted_to():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        nobody = f"http://127.0.0.1:{sock.getsockname()[1]}/health/ready"
    run = StandInRun(ReadyDeployer(), nobody)
    with pytest.raises(AirflowFailException, match="ConnectError"):
        _shift(20)._require_green_ready(run)
    assert [name for name, _ in run.events] == ["green_not_ready_before_shift"]


def test_a_ready_and_answering_green_is_shifted_to_without_a_record(answering_green):
    run = StandInRun(ReadyDeployer(), readiness_url(answering_green))
    _shift(100)._require_green_ready(run)
    assert run.events == []
