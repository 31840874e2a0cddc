"""The release procedure without Airflow: shifts verified on the router and recorded, the promote-or-rollback
decision, the rollback and the release's outcome. A router and a deployer of the interfaces' own shape stand in for
nginx and the processes; the ledger is real (SQLite); the router that answers which slot served is a real HTTP
server."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sap_llm_release.evidence import Verdict
from sap_llm_release.ledger import Writer
from sap_llm_release.rollout import (
    Decision,
    RollbackIncomplete,
    Rollout,
    RolloutRefused,
    decide,
    release_outcome,
    require_gates_proven,
    require_windows_passed,
)
from sap_llm_release.routers.access_logs import NginxAccessLog
from sap_llm_release.routers.base import ALL_BLUE, RouterError, Weights
from sap_llm_release.spec import RollbackRecovery, load_spec
from sap_llm_release.targets import Target
from tests.support.ledgers import ledger_with_release
from tests.support.runs import SPEC_FILE

RELEASE = "sap_llm_release:manual__rollout"
WRITER = Writer("sap_llm_release", "manual__rollout", "traffic_shift.shift_to_020", 1)


class MemoryRouter:
    """A router of the interface's shape; ``applies=False`` plays one whose writes do not take effect."""

    def __init__(self, applies: bool = True) -> None:
        self.live, self.applies = ALL_BLUE, applies

    def get_weights(self) -> Weights:
        return self.live

    def set_weights(self, weights: Weights) -> bool:
        if not self.applies:
            raise RouterError(f"memory router: wanted {weights}, live {self.live}")
        changed, self.live = weights != self.live, weights
        return changed

    def describe(self) -> str:
        return "memory router"


class Slots:
    """A deployer of the interface's shape: which colours run and whether they answer ready."""

    def __init__(self, ready: bool = True) -> None:
        self.running, self.ready = {"blue": "1.0.0", "green": "1.1.0"}, ready

    def wait_ready(self, colour: str, timeout_s: float) -> tuple[bool, str]:
        return (self.ready and colour in self.running), f"{colour} {'ready' if self.ready else 'not ready'}"

    def remove(self, colour: str) -> bool:
        return self.running.pop(colour, None) is not None

    def running_version(self, colour: str) -> str | None:
        return self.running.get(colour)


class ServedBy:
    """The router's address: /health answers which slot served it; /health/ready answers 200."""

    def __init__(self, slot: str) -> None:
        self.slot = slot
        served = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = json.dumps({"colour": served.slot}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def ledger(tmp_path):
    return ledger_with_release(tmp_path, RELEASE, WRITER)


@pytest.fixture
def router_address():
    served = ServedBy("blue")
    yield served
    served.server.shutdown()


def rollout(ledger, router_address, router=None, deployer=None, access_log=None) -> Rollout:
    target = Target(name="memory", router=router or MemoryRouter(), deployer=deployer or Slots(),
                    urls={"router": router_address.url, "green": router_address.url}, reports_dir=Path("."),
                    slots={"blue": "blue", "green": "green"}, access_log=access_log)
    return Rollout(RELEASE, target, ledger, WRITER)


def events(ledger) -> list[str]:
    return [event["event"] for event in ledger.release_record(RELEASE)["release_events"]]


# -- shifts ----------------------------------------------------------------------------------------------------------


def test_a_shift_is_recorded_once_the_live_router_serves_it(ledger, router_address):
    shift = rollout(ledger, router_address).shift(20, f"{router_address.url}/health/ready", ready_timeout_s=1)
    assert (shift.before, shift.live) == (ALL_BLUE, Weights(80, 20))
    (change,) = ledger.release_record(RELEASE)["traffic_changes"]
    assert (change["reason"], change["green_before"], change["green_after"]) == ("step 20%", 0, 20)


def test_a_step_run_again_finds_it_served_and_records_nothing_more(ledger, router_address):
    shifting = rollout(ledger, router_address)
    shifting.shift(20, f"{router_address.url}/health/ready", ready_timeout_s=1)
    again = dataclasses.replace(shifting, writer=dataclasses.replace(WRITER, try_number=2))
    shift = again.shift(20, f"{router_address.url}/health/ready", ready_timeout_s=1)
    assert (shift.before, shift.live) == (Weights(80, 20), Weights(80, 20))
    assert [c["reason"] for c in ledger.release_record(RELEASE)["traffic_changes"]] == ["step 20%"]


def test_a_green_that_is_not_ready_is_not_shifted_to(ledger, router_address):
    router = MemoryRouter()
    with pytest.raises(RolloutRefused, match="refusing to shift 20% to green: it is not ready"):
        rollout(ledger, router_address, router, Slots(ready=False)).shift(20, router_address.url, ready_timeout_s=1)
    assert router.live == ALL_BLUE and events(ledger) == ["green_not_ready_before_shift"]
    assert ledger.release_record(RELEASE)["traffic_changes"] == []


def test_a_green_ready_by_its_platform_but_not_answering_is_not_shifted_to(ledger, router_address, free_port):
    with pytest.raises(RolloutRefused, match="ConnectError"):
        rollout(ledger, router_address).shift(50, f"http://127.0.0.1:{free_port}/health/ready", ready_timeout_s=1)
    assert events(ledger) == ["green_not_ready_before_shift"]


def test_a_change_the_router_did_not_apply_is_recorded_not_counted(ledger, router_address):
    with pytest.raises(RouterError, match="wanted blue 95% / green 5%"):
        rollout(ledger, router_address, MemoryRouter(applies=False)).shift(5, router_address.url, ready_timeout_s=1)
    assert events(ledger) == ["traffic_not_applied"]
    assert ledger.release_record(RELEASE)["traffic_changes"] == []


def test_gates_without_a_passing_record_refuse_the_shift():
    gates = [gate for gate in load_spec(SPEC_FILE).gates[:3]]
    recorded = {gates[0].name: {"verdict": "passed"}, gates[1].name: {"verdict": "failed"}}
    with pytest.raises(RolloutRefused, match=f"gates {gates[1].name}, {gates[2].name}$"):
        require_gates_proven(gates, recorded)
    require_gates_proven(gates, {gate.name: {"verdict": "waived"} for gate in gates})


def test_a_window_whose_latest_record_did_not_pass_refuses_the_shift():
    windows = [{"step": step, "verdict": verdict} for step, verdict in [
        ("clear_before_shift", "failed"), ("clear_before_shift", "passed"),
        ("clear_before_deploy", "passed"), ("clear_before_deploy", "failed")]]
    require_windows_passed(["clear_before_shift"], windows)
    with pytest.raises(RolloutRefused, match="no passing record in the ledger for windows clear_before_deploy$"):
        require_windows_passed(["clear_before_shift", "clear_before_deploy"], windows)
    with pytest.raises(RolloutRefused, match="windows clear_before_shift$"):
        require_windows_passed(["clear_before_shift"], [])


# -- the decision ----------------------------------------------------------------------------------------------------

WATCHED = ["traffic_shift.shift_to_005", "traffic_shift.shift_to_020", "post_deployment.post_error_rate"]


def _decide(states, green_has_traffic=False):
    return decide({"start_release": "success", **states}, start_task="start_release",
                  first_shift="traffic_shift.shift_to_005", watched=WATCHED,
                  green_has_traffic=lambda: green_has_traffic)


def test_promote_only_when_every_watched_task_succeeded():
    succeeded = dict.fromkeys(WATCHED, "success")
    assert _decide(succeeded) is Decision.PROMOTE
    assert _decide({**succeeded, "traffic_shift.shift_to_020": "failed"}) is Decision.ROLL_BACK
    del succeeded["post_deployment.post_error_rate"]  # no state is no proof
    assert _decide(succeeded) is Decision.ROLL_BACK


def test_nothing_touched_is_neither_unless_the_router_says_green_has_traffic():
    assert _decide({"traffic_shift.shift_to_005": "upstream_failed"}) is Decision.NEITHER
    assert _decide({"traffic_shift.shift_to_005": "upstream_failed"}, green_has_traffic=True) is Decision.ROLL_BACK
    never_started = {"start_release": "failed", "traffic_shift.shift_to_005": "upstream_failed"}
    assert _decide(never_started, green_has_traffic=True) is Decision.NEITHER


# -- the rollback ----------------------------------------------------------------------------------------------------


def test_a_rollback_sends_everything_to_blue_removes_green_and_verifies_blue(ledger, router_address):
    router, slots = MemoryRouter(), Slots()
    router.live = Weights(80, 20)
    detail = rollout(ledger, router_address, router, slots).roll_back("step_020: error_rate")
    assert router.live == ALL_BLUE and "green" not in slots.running
    assert detail.startswith("10/10 requests through the router answered by blue (slot blue)")
    record = ledger.release_record(RELEASE)
    (rollback,) = record["rollbacks"]
    assert (rollback["cause"], rollback["blue_healthy"], rollback["green_removed"]) == ("step_020: error_rate", 1, 1)
    assert [(c["reason"], c["green_before"], c["green_after"]) for c in record["traffic_changes"]] == [
        ("rollback", 20, 0)]


# -- traffic off green where the breach is decided --------------------------------------------------------------------


class UnreadableRouter(MemoryRouter):
    """A router whose live split cannot be read (its API down); it counts the writes it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def get_weights(self) -> Weights:
        raise RouterError("memory router: API unreachable")

    def set_weights(self, weights: Weights) -> bool:
        self.writes += 1
        return super().set_weights(weights)


def holding(ledger, environment: str = "rehearsal"):
    ledger.acquire_environment(environment, RELEASE)
    return ledger


def test_a_breach_takes_all_traffic_off_green_at_once_recorded_and_a_repeat_changes_nothing(ledger, router_address):
    router, slots = MemoryRouter(), Slots()
    router.live = Weights(80, 20)
    emergency = rollout(holding(ledger), router_address, router, slots)
    assert emergency.take_traffic_off_green("step_020: SLO error_rate failed", "rehearsal") == (
        True, "blue 80% / green 20% -> blue 100% / green 0%")
    assert router.live == ALL_BLUE and "green" in slots.running  # green is the rollback task's to remove
    assert emergency.take_traffic_off_green("step_020: SLO error_rate failed", "rehearsal") == (
        False, "memory router sends green nothing already")
    record = ledger.release_record(RELEASE)
    assert [(c["reason"], c["green_before"], c["green_after"]) for c in record["traffic_changes"]] == [
        ("breach", 20, 0)]
    assert [(e["event"], e["detail"]) for e in record["release_events"]] == [
        ("breach_decided", "step_020: SLO error_rate failed")]
    assert record["release_events"][0]["recorded_at"] <= record["traffic_changes"][0]["changed_at"]


def test_a_shift_run_again_after_a_breach_switch_gives_green_nothing_back(ledger, router_address):
    """A shift's task retried after its window's trigger took traffic off green (its resume lost) is refused."""
    router = MemoryRouter()
    shifting = rollout(holding(ledger), router_address, router)
    shifting.shift(20, f"{router_address.url}/health/ready", ready_timeout_s=1)
    shifting.take_traffic_off_green("step_020: SLO error_rate failed", "rehearsal")
    with pytest.raises(RolloutRefused, match=r"refusing to shift 20% to green: its traffic was taken off at a breach"):
        shifting.shift(20, f"{router_address.url}/health/ready", ready_timeout_s=1)
    assert router.live == ALL_BLUE


def test_a_shift_after_a_failed_window_is_refused_naming_it(ledger, router_address):
    router = MemoryRouter()
    ledger.record_slo_window(RELEASE, step="step_005", green_weight=5, verdict="failed",
                             reason="SLO green_ready failed 2 of 2 checks", window_seconds=4.0, checks=[],
                             started_at="2026-12-02T10:00:00+00:00", writer=WRITER)
    with pytest.raises(RolloutRefused, match="window step_005 failed: SLO green_ready failed 2 of 2 checks"):
        rollout(ledger, router_address, router).shift(20, f"{router_address.url}/health/ready", ready_timeout_s=1)
    assert router.live == ALL_BLUE and ledger.release_record(RELEASE)["traffic_changes"] == []


def test_the_rollback_after_a_breach_switch_finds_blue_serving_and_records_no_second_change(ledger, router_address):
    router = MemoryRouter()
    router.live = Weights(95, 5)
    emergency = rollout(holding(ledger), router_address, router)
    emergency.take_traffic_off_green("step_005: green_ready failed", "rehearsal")
    emergency.roll_back("step_005: green_ready failed")
    record = ledger.release_record(RELEASE)
    assert [c["reason"] for c in record["traffic_changes"]] == ["breach"]
    assert record["rollbacks"][0]["blue_weight_after"] == 100


def test_a_router_that_cannot_be_read_is_left_to_the_rollback_task(ledger, router_address):
    router = UnreadableRouter()
    moved, seen = rollout(holding(ledger), router_address, router).take_traffic_off_green("breach", "rehearsal")
    assert (moved, router.writes) == (False, 0)
    assert seen == "not taken, left to the rollback: memory router: API unreachable"
    assert ledger.release_record(RELEASE)["traffic_changes"] == []


def test_a_write_the_router_does_not_apply_is_recorded_and_left_to_the_rollback_task(ledger, router_address):
    router = MemoryRouter(applies=False)
    router.live = Weights(80, 20)
    moved, seen = rollout(holding(ledger), router_address, router).take_traffic_off_green("breach", "rehearsal")
    assert not moved and seen.startswith("not taken, left to the rollback: memory router: wanted blue 100%")
    assert events(ledger) == ["breach_decided", "traffic_off_green_not_applied"]


@pytest.mark.parametrize("situation", ["lock released", "another release holds it", "rollback recorded"])
def test_a_late_trigger_never_touches_traffic_once_the_release_let_go_or_rolled_back(ledger, router_address,
                                                                                     situation):
    """A trigger fired again after a triggerer failover, once its release ended or rolled back, must not take
    traffic from a later release's green."""
    router = MemoryRouter()
    router.live = Weights(80, 20)
    if situation == "another release holds it":
        ledger.acquire_environment("rehearsal", "sap_llm_release:manual__later")
    elif situation == "rollback recorded":
        holding(ledger).record_rollback(RELEASE, cause="step_020", blue_weight_after=100, green_removed=True,
                                        blue_healthy=True, detail="", started_at="2026-12-02T00:00:00+00:00",
                                        writer=WRITER)
    moved, seen = rollout(ledger, router_address, router).take_traffic_off_green("breach", "rehearsal")
    assert not moved and seen.startswith("not taken: ") and router.live == Weights(80, 20)


class DiesOnFirstRemove(Slots):
    """A deployer whose first ``remove`` never returns: the worker running the rollback died there."""

    def __init__(self) -> None:
        super().__init__()
        self.died = False

    def remove(self, colour: str) -> bool:
        if not self.died:
            self.died = True
            raise KeyboardInterrupt("worker lost")
        return super().remove(colour)


def test_a_rollback_retried_after_its_worker_died_finishes_and_counts_from_the_first_switch(ledger, router_address,
                                                                                          tmp_path):
    """The rollback task is retried when its worker dies part-way (operators/traffic.py): the retry finds blue at
    100 % and records no traffic change of its own, removes green, records its verification; the requests lost are
    counted from the first try's switch."""
    router, slots, log = MemoryRouter(), DiesOnFirstRemove(), tmp_path / "access.log"
    router.live = Weights(50, 50)
    procedure = rollout(ledger, router_address, router, slots, access_log=NginxAccessLog(log))
    with pytest.raises(KeyboardInterrupt):
        procedure.roll_back("step_050: error_rate")
    log.write_text(routed(502))  # after the first try's switch, before the retry started
    retry = dataclasses.replace(procedure, writer=dataclasses.replace(WRITER, try_number=2))
    retry.roll_back("step_050: error_rate")
    assert router.live == ALL_BLUE and "green" not in slots.running
    record = ledger.release_record(RELEASE)
    assert [(c["green_before"], c["green_after"], c["try_number"]) for c in record["traffic_changes"]] == [(50, 0, 1)]
    (rollback,) = record["rollbacks"]
    assert (rollback["try_number"], rollback["green_removed"], rollback["blue_healthy"]) == (2, 1, 1)
    passed, detail = retry.count_lost_requests(RECOVERY)
    assert not passed and detail.startswith("1 of 1 requests through the router lost"), detail


def test_a_router_still_answering_from_green_makes_the_rollback_incomplete(ledger, router_address):
    router_address.slot = "green"
    with pytest.raises(RollbackIncomplete, match="0/10 requests through the router answered by blue"):
        rollout(ledger, router_address).roll_back("cause")
    (rollback,) = ledger.release_record(RELEASE)["rollbacks"]
    assert rollback["blue_healthy"] == 0


def test_blue_is_verified_once_the_router_applies_the_change(ledger, router_address):
    """A router object applied a moment after it is written: rounds of probes until blue answers them all."""
    router_address.slot = "green"
    threading.Timer(1.5, lambda: setattr(router_address, "slot", "blue")).start()
    healthy, detail = rollout(ledger, router_address).verify_blue(probes=5, settle_s=10)
    assert healthy and detail.startswith("5/5 requests")


def test_a_rollback_the_router_does_not_apply_is_recorded(ledger, router_address):
    with pytest.raises(RouterError):
        rollout(ledger, router_address, MemoryRouter(applies=False)).roll_back("cause")
    assert events(ledger) == ["rollback_not_applied"]


# -- the requests a rollback lost --------------------------------------------------------------------------------------


RECOVERY = RollbackRecovery(switch_grace=timedelta(seconds=0.2))


def routed(*statuses: int, ago_s: float = 0.0) -> str:
    """Access-log lines (the local router's format) stamped ``ago_s`` before now, answered with ``statuses``."""
    return "".join(f'{time.time() - ago_s:.3f} 127.0.0.1:8001 {status} 0.010 "POST /v1/documents HTTP/1.1"\n'
                   for status in statuses)


def test_the_requests_through_a_rollback_are_counted_and_none_lost_passes(ledger, router_address, tmp_path):
    log = tmp_path / "access.log"
    procedure = rollout(ledger, router_address, access_log=NginxAccessLog(log))
    log.write_text(routed(502, ago_s=1))  # before the rollback: not the switch's
    procedure.roll_back("step_020: error_rate")
    log.write_text(log.read_text() + routed(200, 200))  # in flight when blue was verified: within the grace
    assert procedure.count_lost_requests(RECOVERY) == (True, "2 requests through the router while traffic "
                                                              f"switched, none lost (nginx access log {log})")
    (counted,) = ledger.release_record(RELEASE)["rollback_lost_requests"]
    assert (counted["requests"], counted["lost"], counted["max_lost"], counted["verdict"]) == (2, 0, 0, "passed")


def test_a_request_lost_in_the_switch_is_a_failed_finding(ledger, router_address, tmp_path):
    log = tmp_path / "access.log"
    procedure = rollout(ledger, router_address, access_log=NginxAccessLog(log))
    procedure.roll_back("cause")
    log.write_text(routed(200, 502))
    passed, detail = procedure.count_lost_requests(RECOVERY)
    assert not passed and detail.startswith("1 of 2 requests through the router lost") and " 502 POST " in detail
    (counted,) = ledger.release_record(RELEASE)["rollback_lost_requests"]
    assert (counted["requests"], counted["lost"], counted["verdict"]) == (2, 1, "failed")


@pytest.mark.parametrize("access_log, why", [
    (None, "names no router access log"),
    (NginxAccessLog(Path("/nonexistent/access.log")), "could not be read"),
])
def test_no_readable_router_log_fails_the_count(ledger, router_address, access_log, why):
    procedure = rollout(ledger, router_address, access_log=access_log)
    procedure.roll_back("cause")
    passed, detail = procedure.count_lost_requests(RECOVERY)
    assert not passed and why in detail
    (counted,) = ledger.release_record(RELEASE)["rollback_lost_requests"]
    assert (counted["requests"], counted["lost"], counted["verdict"]) == (None, None, "failed")


def test_without_a_rollback_there_is_nothing_to_count(ledger, router_address):
    assert rollout(ledger, router_address).count_lost_requests(RECOVERY) is None


def test_the_cause_is_the_last_failed_window_else_the_failed_tasks(ledger, router_address):
    procedure = rollout(ledger, router_address)
    assert procedure.rollback_cause(["traffic_shift.shift_to_050", "post_deployment.x"]) == \
        "failed: post_deployment.x, traffic_shift.shift_to_050"
    ledger.record_slo_window(RELEASE, step="step_020", green_weight=20, verdict="failed", reason="error_rate 4 %",
                             window_seconds=8.0, checks=[], started_at="2026-01-01T00:00:00", writer=WRITER)
    assert procedure.rollback_cause([]) == "step_020: error_rate 4 %"


# -- the outcome -----------------------------------------------------------------------------------------------------


AFTER_ROLLBACK = ("rollback.watch_blue_recovery", "rollback.count_lost_requests")


def _outcome(states, recorded=None, release_recorded=True):
    return release_outcome(states, promoted_task="decommission_blue.remove_blue",
                           rollback_task="rollback.rollback_to_blue", release_recorded=release_recorded,
                           recorded=recorded or {}, version="1.1.0", environment="rehearsal",
                           after_rollback=AFTER_ROLLBACK, planned_task="dry_run_plan")


def test_outcomes():
    assert _outcome({"decommission_blue.remove_blue": "success"})[0] == "promoted"
    rolled = _outcome({"rollback.rollback_to_blue": "success", "traffic_shift.shift_to_020": "failed"})
    assert rolled == ("rolled_back", "rolled back to blue after failure of traffic_shift.shift_to_020")
    unproven = _outcome({"rollback.rollback_to_blue": "success", "traffic_shift.shift_to_020": "failed",
                         "rollback.watch_blue_recovery": "success", "rollback.count_lost_requests": "failed"})
    assert unproven == ("rolled_back", "rolled back to blue after failure of traffic_shift.shift_to_020; after the "
                                       "rollback, failed: rollback.count_lost_requests")
    assert _outcome({"rollback.rollback_to_blue": "failed"})[0] == "rollback_failed"
    assert _outcome({}, release_recorded=False) == (None, "")
    gate = {"gate": "smoke_health", "verdict": Verdict.FAILED.value, "measured_value": None,
            "measured_text": "503", "threshold": "== 200", "detail": "GET /health"}
    assert _outcome({}, {"smoke_health": gate}) == (
        "failed", "gate smoke_health failed: measured 503, threshold == 200 (GET /health)")
    passed = {**gate, "verdict": Verdict.PASSED.value}
    waived = {**gate, "verdict": Verdict.WAIVED.value}
    assert _outcome({"dry_run_plan": "success"}, {"smoke_health": passed, "k8s_storage": waived}) == (
        "planned", "dry run of 1.1.0 to rehearsal: 2 gates recorded (1 passed, 1 waived); nothing deployed, shifted, "
                   "asked or paged")
    assert _outcome({"dry_run_plan": "skipped"}, {"smoke_health": gate})[0] == "failed"
