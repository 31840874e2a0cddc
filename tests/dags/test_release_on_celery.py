"""Releases through Airflow's real components on the CeleryExecutor (api-server, scheduler, dag-processor, triggerer,
a Celery worker; PostgreSQL metadata, a Redis broker) against the live local stack, each surviving a component's
death: the scheduler and the triggerer SIGKILLed mid-window, during an open approval and through a breach; the worker
SIGKILLed mid-gate and mid-rollback; one of two schedulers killed; the metadata database restarted. One Airflow serves
them all (started in about 50 s), on the spec cut for the real components (``write_executor_spec``).

They cost more CPU than the suite's budget on two cores holds: with only the first test here (a release promoting
through a restart, then the next rolling back on a breach, the UI driven in a real browser meanwhile: 5:37 and 4:18
of CPU on its own), ``make test`` took 14:04 and 14:58 from a fresh clone. ``make test`` leaves them out (marker
``celery``); ``make test-celery`` runs the whole file. Two of them drive the UI in a real browser: the first watches
the release on its board; the second sends a dry run and a release from the trigger form and answers the release's
attestations and approvals on its Required Action tabs, each person logged in as themselves."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from types import SimpleNamespace

import pytest

from sap_llm_release.approvals.attestations import AttestationAsk, attestation_points, role_gates, role_task_id
from sap_llm_release.ledger import Ledger
from sap_llm_release.rehearsal.airflow_processes import PASSWORDS_FILE
from sap_llm_release.rehearsal.local_postgres import restart_postgres
from sap_llm_release.rehearsal.processes import free_port
from sap_llm_release.routers.base import Weights
from sap_llm_release.spec import PRE_TRAFFIC_PHASES, load_spec
from tests.conftest import live_stack
from tests.dags.test_sap_llm_release import pages, rolled_back_to_blue, slack_thread
from tests.support import runs
from tests.support.browser import (
    approve,
    chromium,
    confirm_items,
    green_share_shown,
    leave,
    logged_in,
    release_board_tab,
    required_action,
    trigger_form_can_be_sent_as_it_opens,
    trigger_form_refusal,
    trigger_from_the_form,
)
from tests.support.celery_airflow import DAG_ID, celery_airflow
from tests.support.runs import release_conf, write_executor_spec

pytestmark = [pytest.mark.stack, pytest.mark.timeout(600)]


@pytest.fixture
def ledger() -> Ledger:
    return runs.ledger()


@pytest.fixture(scope="module")
def airflow(notification_standins, tmp_path_factory):
    """The components, started with the worker's live stack, the Slack and PagerDuty stand-ins and the spec in
    their environment."""
    live_stack()
    home = tmp_path_factory.mktemp("celery")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SAP_LLM_RELEASE_SPEC", str(write_executor_spec(home / "executor-spec.yaml")))
        with celery_airflow(home / "airflow", free_port()) as started:
            yield started


@pytest.mark.celery
@pytest.mark.timeout(1200)
def test_on_celery_a_release_promotes_through_a_restart_and_the_next_rolls_back_on_a_breach(
        airflow, quiet_stack, ledger, notification_standins, artefacts):
    """The rehearsals make test runs on Celery, one Airflow for both: a release promotes with its scheduler and
    triggerer killed mid-window, watched in a real browser (its trigger form, then its Release board tab at each
    step); the next, its approval outliving the same restart, rolls back on a breach at 50 %."""
    password = json.loads((airflow.processes.home / PASSWORDS_FILE).read_text())["admin"]
    with chromium() as browser:
        page = logged_in(browser, airflow.api.url, "admin", password)
        assert trigger_form_can_be_sent_as_it_opens(page, airflow.api.url, DAG_ID, artefacts / "trigger-form.png")
        runs_before = airflow.api.run_count(DAG_ID)
        refused = trigger_form_refusal(page, airflow.api.url, DAG_ID, "version", "not a version",
                                       artefacts / "trigger-form-refused.png")
        assert "Invalid input for param version: 'not a version' does not match" in refused, refused
        assert airflow.api.run_count(DAG_ID) == runs_before  # refused before a run existed
        board = BoardInBrowser(page, airflow.api.url, artefacts)
        run_id = promotes_with_its_scheduler_and_triggerer_killed_mid_window(airflow, quiet_stack, ledger, board.look)
        steps = [step.weight for step in load_spec(os.environ["SAP_LLM_RELEASE_SPEC"]).traffic.steps]
        # the split as the windows watched it: a short window (4 s at 5 %) can be over before a loaded machine has
        # drawn the tab, so the board is held to following the release, up to 100 %, not to catching every step
        shares = board.shares_seen
        assert shares == sorted(shares) and set(shares) <= set(steps) and shares[-1] == 100, shares
        assert len(set(shares)) >= 2, shares
        assert board.plots_loaded >= len(steps) - 1  # each window's SLO plot, from the second window on
        board.whole_page(artefacts / "board-promoted.png")
        anonymous = browser.new_context().request.get(f"{airflow.api.url}/release-board/view?dag_id={DAG_ID}&"
                                                      f"run_id={run_id}")
        assert anonymous.status == 401
    quiet_stack.reset()
    quiet_stack.forget_alerts()
    an_approval_outlives_a_restart_and_a_breach_rolls_back_to_blue(airflow, quiet_stack, ledger,
                                                                   notification_standins)


@pytest.mark.celery
@pytest.mark.timeout(900)
def test_from_the_ui_a_dry_run_shows_its_plan_and_a_release_is_attested_and_approved_there(
        airflow, quiet_stack, ledger, artefacts):
    """As people would, in a real browser: the form refuses a requested_by padded with a space; the admin sends the
    trigger form with Dry run on and reads the plan on the run's Release board; then sends the form as it opens, and
    each attester confirms the items asked of their role on the run's Required Action tabs (ticked, with a link) and
    the release manager approves every approval there; the release promotes with who confirmed and who approved
    taken from the logged-in users."""
    spec = load_spec(os.environ["SAP_LLM_RELEASE_SPEC"])
    passwords = json.loads((airflow.processes.home / PASSWORDS_FILE).read_text())
    with chromium() as browser:
        people = PeopleInTheUI(browser, airflow.api.url, passwords, spec, artefacts)
        admin = people.page("admin")
        runs_before = airflow.api.run_count(DAG_ID)
        refused = trigger_form_refusal(admin, airflow.api.url, DAG_ID, "requested_by", " padded",
                                       artefacts / "trigger-form-refused-requested-by.png", section="Who asks")
        assert "Invalid input for param requested_by: ' padded' does not match" in refused, refused
        assert airflow.api.run_count(DAG_ID) == runs_before  # refused before a run existed
        trigger_from_the_form(admin, airflow.api.url, DAG_ID, artefacts / "trigger-dry-run.png", dry_run=True)
        dry_run = airflow.api.newest_run(DAG_ID)
        assert dry_run["conf"]["dry_run"] is True
        assert airflow.follow(dry_run["dag_run_id"], []) == "success"
        board = release_board_tab(admin, airflow.api.url, DAG_ID, dry_run["dag_run_id"])
        plan = board.locator("#plan li").all_inner_texts()
        assert plan[0].startswith("at the start: ask the ML lead (ml.lead) on the Required Actions page"), plan
        assert any(line.startswith("deploy sap-llm 1.1.0 to the green slot") for line in plan), plan
        assert board.locator("#outcome").inner_text() == "planned"
        whole_page(admin, board.url, artefacts / "dry-run-plan-on-the-board.png")

        trigger_from_the_form(admin, airflow.api.url, DAG_ID, artefacts / "trigger-release.png")
        leave(admin)
        run_id = airflow.api.newest_run(DAG_ID)["dag_run_id"]
        assert run_id != dry_run["dag_run_id"]
        state = airflow.follow(run_id, [], lambda states: people.answer(run_id, states))

    states = airflow.api.task_states(DAG_ID, run_id)
    assert state == "success", sorted(task for task, value in states.items() if value == "failed")
    assert sorted(people.answered) == sorted(
        [f"{point.group}.{role_task_id(point.role)}" for point in attestation_points(spec)]
        + [f"{phase}.approve_{approval.name}" for phase, approval in zip(
            ("traffic_shift", "traffic_shift", "post_deployment"), spec.approvals, strict=True)])
    record = ledger.release_record(f"{DAG_ID}:{run_id}")
    assert record["releases"][0]["triggered_by"] == "admin"  # the logged-in user, requested_by left empty
    verdicts = {row["gate"]: row for row in record["gate_results"]}
    for gate in people.attestation_gates():
        attester = spec.attesters[gate.params["role"]][0]
        row = verdicts[gate.name]
        assert (row["verdict"], row["evidence_uri"]) == ("attested", people.link(gate.name))
        assert row["detail"] == f"attested by {attester} ({gate.params['role']})"
    decisions = [(a["gate"], a["decision"], a["decided_by"], a["channel"]) for a in record["approvals"]]
    assert decisions == [(a.name, "approved", "release.manager", "airflow") for a in spec.approvals]


class PeopleInTheUI:
    """Each person logged in to the UI in a browser context of their own; ``answer`` confirms the attestations asked
    of a role (as the role's first attester) and approves each approval (as the release manager) on the run's
    Required Action tabs once the task waits."""

    def __init__(self, browser, url: str, passwords: dict[str, str], spec, artefacts) -> None:
        self.browser, self.url, self.passwords, self.spec, self.artefacts = browser, url, passwords, spec, artefacts
        self.pages: dict = {}
        self.answered: list[str] = []

    def page(self, user: str):
        if user not in self.pages:
            self.pages[user] = logged_in(self.browser, self.url, user, self.passwords[user])
        return self.pages[user]

    def attestation_gates(self) -> list:
        return [gate for gate in self.spec.gates if gate.kind == "attestation"]

    @staticmethod
    def link(gate: str) -> str:
        return f"https://wiki.example.com/release-evidence/{gate}"

    def answer(self, run_id: str, states: dict) -> None:
        for task, state in states.items():
            if task in self.answered:
                continue
            name = task.rsplit(".", 1)[-1]
            if name.startswith("attest_") and state == "awaiting_input":
                self._confirm(run_id, task)
            elif name.startswith("approve_") and state == "deferred":
                page = required_action(self.page("release.manager"), self.url, DAG_ID, run_id, task)
                approve(page, self.artefacts / f"{name}.png")
                self.answered.append(task)

    def _confirm(self, run_id: str, task: str) -> None:
        group, name = task.split(".")
        point = next(point for point in attestation_points(self.spec)
                     if (point.group, role_task_id(point.role)) == (group, name))
        gates = role_gates(self.spec, point.phases, point.role)
        ask = AttestationAsk(point.phases, point.role, gates, tuple(self.spec.attesters[point.role]))
        page = required_action(self.page(ask.attesters[0]), self.url, DAG_ID, run_id, task)
        confirm_items(page, {option: (f"link_{gate.name}", self.link(gate.name))
                             for option, gate in zip(ask.options, gates, strict=True)},
                      self.artefacts / f"{group}-{name}.png")
        self.answered.append(task)


class BoardInBrowser:
    """The run's Release board tab, looked at once each traffic window waits: the green share it shows, whether
    its gate tables and every plot loaded, a screenshot per window."""

    def __init__(self, page, url: str, artefacts) -> None:
        self.page, self.url, self.artefacts = page, url, artefacts
        self.frame = None
        self.seen: set[str] = set()
        self.shares_seen: list[int] = []
        self.plots_loaded = 0

    def look(self, run_id: str, states: dict) -> None:
        waiting = [task for task, state in states.items()
                   if task.startswith("traffic_shift.watch_") and state == "deferred" and task not in self.seen]
        if not waiting:
            return
        self.seen.update(waiting)
        if self.frame is None:
            self.frame = release_board_tab(self.page, self.url, DAG_ID, run_id)
        else:
            self.frame.goto(self.frame.url)
            self.frame.wait_for_selector("#split")
        assert self.frame.locator("table.gates").count() > 0
        self.shares_seen.append(green_share_shown(self.frame))
        self.frame.wait_for_function("() => [...document.images].every(image => image.complete)")
        plots = self.frame.evaluate("() => [...document.images].map(image => image.naturalWidth > 0)")
        self.plots_loaded += bool(plots) and all(plots)
        self.page.screenshot(path=str(self.artefacts / f"board-{waiting[0].rsplit('_', 1)[1]}.png"), full_page=True)


    def whole_page(self, path) -> None:
        whole_page(self.page, self.frame.url, path)


def whole_page(page, board_url: str, path) -> None:
    """The board at ``board_url`` on a page of its own (``page``'s login), every plot loaded, as one full-page
    screenshot."""
    page = page.context.new_page()
    page.goto(board_url)
    page.wait_for_function("() => [...document.images].every(image => image.complete)")
    page.screenshot(path=str(path), full_page=True)
    page.close()


def promotes_with_its_scheduler_and_triggerer_killed_mid_window(airflow, quiet_stack, ledger,
                                                                observe=lambda run_id, states: None) -> str:
    """The scheduler and the triggerer are SIGKILLed and restarted during the last traffic window: the window
    resumes and ends at its absolute end, no step is shifted twice, nginx's weights are the ledger's last record,
    the release promotes. ``observe(run_id, states)`` sees every poll. Returns the run's id."""
    spec = load_spec(os.environ["SAP_LLM_RELEASE_SPEC"])
    steps = [step.weight for step in spec.traffic.steps]
    last = f"traffic_shift.shift_to_{steps[-1]:03d}"
    killed: list[float] = []
    run_id = airflow.api.trigger(DAG_ID, release_conf())

    def kill_during_the_last_window(states: dict) -> None:
        if not killed and states.get(last) == "deferred":
            time.sleep(3)  # the window's first checks ran in the triggerer
            killed.append(time.time())
            airflow.restart("scheduler", "triggerer")
        observe(run_id, states)

    state = airflow.follow(run_id, [a.name for a in spec.approvals], kill_during_the_last_window)

    states = airflow.api.task_states(DAG_ID, run_id)
    assert state == "success", sorted(task for task, value in states.items() if value == "failed")
    assert killed, f"{last} never deferred"
    assert states["rollback.rollback_to_blue"] == "skipped"
    record = ledger.release_record(f"{DAG_ID}:{run_id}")
    assert [event["event"] for event in record["release_events"]][-1] == "promoted"
    changes = record["traffic_changes"]
    assert [change["green_after"] for change in changes] == steps  # no step shifted twice
    assert quiet_stack.target.router.get_weights() == Weights(changes[-1]["blue_after"], changes[-1]["green_after"])
    assert [(w["step"], w["verdict"]) for w in record["slo_windows"]] == [
        ("clear_before_deploy", "passed"), ("clear_before_shift", "passed")] + [
        (f"step_{w:03d}", "passed") for w in steps] + [("bake", "passed")]
    # the window the outage fell into resumed and ended at its absolute end, not a full window after the restart
    (window,) = [w for w in record["slo_windows"] if w["step"] == f"step_{steps[-1]:03d}"]
    started, ended = (datetime.fromisoformat(str(window[k])).timestamp() for k in ("started_at", "recorded_at"))
    assert started < killed[0] < ended
    assert window["window_seconds"] <= ended - started < window["window_seconds"] + 15
    return run_id


def an_approval_outlives_a_restart_and_a_breach_rolls_back_to_blue(airflow, quiet_stack, ledger,
                                                                   notification_standins) -> None:
    """The scheduler and the triggerer are SIGKILLed and restarted while the first approval waits: it is answered
    after the restart and the release goes on; then test_sap_llm_release.py's breach at any step, at 50 %."""
    spec = load_spec(os.environ["SAP_LLM_RELEASE_SPEC"])
    steps = [step.weight for step in spec.traffic.steps]
    first_approval = spec.approvals[0].name
    production_version = quiet_stack.target.deployer.running_version("blue")
    quiet_stack.when_green_weight(50, lambda: quiet_stack.set_faults("green", error_rate=1.0))
    restarted: list[float] = []

    def restart_while_the_first_approval_waits(states: dict) -> None:
        waiting = [task for task, state in states.items() if task.endswith(f".approve_{first_approval}")
                   and state == "deferred"]
        if waiting and not restarted:
            airflow.restart("scheduler", "triggerer")
            restarted.append(time.time())

    run_id = airflow.api.trigger(DAG_ID, release_conf())
    state = airflow.follow(run_id, [a.name for a in spec.approvals], restart_while_the_first_approval_waits)

    states = airflow.api.task_states(DAG_ID, run_id)
    assert restarted, f"approve_{first_approval} never waited"
    assert states["traffic_shift.shift_to_050"] == "failed"
    dag_run = SimpleNamespace(state=state, dag_id=DAG_ID, run_id=run_id)
    record = rolled_back_to_blue(quiet_stack, ledger, dag_run, states, production_version)
    (approval,) = [a for a in record["approvals"] if a["gate"] == first_approval]
    assert approval["decision"] == "approved" and approval["channel"] == "slack"
    assert datetime.fromisoformat(str(approval["recorded_at"])).timestamp() > restarted[0]
    windows = {w["green_weight"]: w for w in record["slo_windows"]}
    assert windows[50]["verdict"] == "failed" and "error_rate" in windows[50]["reason"]
    assert [c["green_after"] for c in record["traffic_changes"]] == [w for w in steps if w <= 50] + [0]
    assert "step_050" in record["rollbacks"][0]["cause"]
    slack, pagerduty = notification_standins
    key = f"sap-llm-release/{DAG_ID}:{run_id}"
    assert pages(pagerduty, run_id) == [("trigger", key), ("resolve", key)]  # paged once, resolved
    assert any(text.startswith("rolled back to blue") for text in slack_thread(slack, run_id))


@pytest.mark.celery
def test_on_celery_a_breach_while_the_scheduler_and_triggerer_are_down_rolls_back_once_they_are_back(
        airflow, quiet_stack, ledger):
    """full_traffic_go waits, its guard watching green at 50 %; the scheduler and the triggerer are SIGKILLed, green
    starts failing while they are down, and they are started again 15 s later: the guard's trigger resumes in the
    new triggerer and sees the breach, the approval is superseded (nobody answered it) and the release rolls back."""
    outage: list[float] = []

    def breach_during_an_outage(states: dict) -> None:
        if not outage and states.get("traffic_shift.approve_full_traffic_go") == "deferred":
            airflow.processes.kill("scheduler")
            airflow.processes.kill("triggerer")
            outage.append(time.time())
            quiet_stack.set_faults("green", error_rate=1.0)
            time.sleep(15)
            airflow.processes.start("scheduler", "triggerer")
            outage.append(time.time())

    run_id = airflow.api.trigger(DAG_ID, release_conf())
    state = airflow.follow(run_id, ["first_shift_go"], breach_during_an_outage)  # full_traffic_go: no answer

    states = airflow.api.task_states(DAG_ID, run_id)
    assert len(outage) == 2, "full_traffic_go never waited"
    assert state == "failed"
    assert states["traffic_shift.approve_full_traffic_go"] == "failed"
    assert states["traffic_shift.shift_to_100"] == "upstream_failed"
    assert states["rollback.rollback_to_blue"] == "success"
    assert quiet_stack.target.router.get_weights() == Weights(100, 0)
    assert quiet_stack.target.deployer.running_version("green") is None
    record = ledger.release_record(f"{DAG_ID}:{run_id}")
    assert [(a["gate"], a["decision"]) for a in record["approvals"]] == [("first_shift_go", "approved"),
                                                                         ("full_traffic_go", "superseded")]
    guard = next(w for w in record["slo_windows"] if w["step"] == "approval_full_traffic_go")
    assert guard["verdict"] == "failed" and "error_rate" in guard["reason"]
    assert datetime.fromisoformat(str(guard["recorded_at"])).timestamp() > outage[1]  # seen once they were back
    steps = [step.weight for step in load_spec(os.environ["SAP_LLM_RELEASE_SPEC"]).traffic.steps]
    assert [c["green_after"] for c in record["traffic_changes"]] == [w for w in steps if w <= 50] + [0]


@pytest.mark.celery
def test_on_celery_a_worker_killed_mid_rollback_is_replaced_and_the_retried_rollback_finishes(airflow, quiet_stack,
                                                                                              ledger,
                                                                                              notification_standins):
    """A breach at 50 % starts the rollback; the Celery worker running it is SIGKILLed (its node lost) and a new one
    started. The scheduler fails the try whose heartbeat stopped and retries it (operators/traffic.py); the retry
    finds its work done or does it: blue serves everything, green is gone, the switch is recorded once, and the lost
    requests are counted from the first try's switch."""
    spec = load_spec(os.environ["SAP_LLM_RELEASE_SPEC"])
    steps = [step.weight for step in spec.traffic.steps]
    production_version = quiet_stack.target.deployer.running_version("blue")
    quiet_stack.when_green_weight(50, lambda: quiet_stack.set_faults("green", error_rate=1.0))
    killed: list[float] = []

    def kill_the_worker_mid_rollback(states: dict) -> None:
        if not killed and states.get("rollback.rollback_to_blue") == "running":
            airflow.restart("worker")
            killed.append(time.time())

    run_id = airflow.api.trigger(DAG_ID, release_conf())
    state = airflow.follow(run_id, [a.name for a in spec.approvals], kill_the_worker_mid_rollback, timeout_s=600)

    states = airflow.api.task_states(DAG_ID, run_id)
    assert killed, "rollback_to_blue was never seen running"
    assert state == "failed" and states["rollback.rollback_to_blue"] == "success"
    assert quiet_stack.target.router.get_weights() == Weights(100, 0)
    assert quiet_stack.target.deployer.running_version("green") is None
    assert quiet_stack.target.deployer.running_version("blue") == production_version
    record = ledger.release_record(f"{DAG_ID}:{run_id}")
    assert [c["green_after"] for c in record["traffic_changes"]] == [w for w in steps if w <= 50] + [0]
    rollbacks = record["rollbacks"]
    assert rollbacks[-1]["try_number"] >= 2, rollbacks  # the retry ran after the kill and recorded its check
    assert (rollbacks[-1]["blue_weight_after"], rollbacks[-1]["blue_healthy"], rollbacks[-1]["green_removed"]) == (
        100, 1, 1)
    assert len({r["try_number"] for r in rollbacks}) == len(rollbacks)  # one row per try, none twice
    assert record["release_events"][-1]["event"] == "rolled_back"
    (counted,) = record["rollback_lost_requests"]
    assert (counted["verdict"], counted["lost"]) == ("passed", 0) and counted["requests"] > 0, counted
    slack, pagerduty = notification_standins
    key = f"sap-llm-release/{DAG_ID}:{run_id}"
    paged = pages(pagerduty, run_id)
    assert {page_key for _, page_key in paged} == {key} and paged[-1] == ("resolve", key)  # one incident, resolved


@pytest.mark.celery
def test_on_celery_a_worker_killed_mid_gate_fails_the_release_before_traffic(airflow, quiet_stack, ledger):
    """The Celery worker is SIGKILLed while a gate before traffic runs, and a new one started: the scheduler fails
    the try whose heartbeat stopped (gates are not retried: a gate not proven is not passed), the release stops
    there and nothing serving traffic was touched."""
    spec = load_spec(os.environ["SAP_LLM_RELEASE_SPEC"])
    before_traffic = {phase.value for phase in PRE_TRAFFIC_PHASES}
    killed: list[str] = []

    def kill_the_worker_mid_gate(states: dict) -> None:
        running = [task for task, state in states.items() if state == "running"
                   and task.split(".")[0] in before_traffic]
        if running and not killed:
            airflow.restart("worker")
            killed.extend(running)

    run_id = airflow.api.trigger(DAG_ID, release_conf())
    state = airflow.follow(run_id, [a.name for a in spec.approvals], kill_the_worker_mid_gate, timeout_s=300)

    states = airflow.api.task_states(DAG_ID, run_id)
    assert killed, "no gate before traffic was seen running"
    assert state == "failed"
    failed = {task for task, value in states.items() if value == "failed"}
    assert failed & set(killed), (killed, failed)  # the killed try failed, not left running
    assert all(task == "finish_release" or task.split(".")[0] in before_traffic for task in failed), failed
    assert states["traffic_shift.shift_to_005"] == "upstream_failed"
    assert quiet_stack.target.router.get_weights() == Weights(100, 0)
    assert quiet_stack.target.deployer.running_version("green") is None
    record = ledger.release_record(f"{DAG_ID}:{run_id}")
    assert record["traffic_changes"] == [] and record["rollbacks"] == []
    gates = [row["gate"] for row in record["gate_results"]]
    assert len(gates) == len(set(gates)), gates  # no gate recorded twice
    assert record["release_events"][-1]["event"] == "failed"


@pytest.mark.celery
def test_on_celery_with_two_schedulers_one_killed_mid_window_the_other_finishes_the_release(airflow, quiet_stack,
                                                                                           ledger):
    """Airflow's HA scheduler on PostgreSQL: a second scheduler runs beside the first, which is SIGKILLed during the
    first traffic window and not restarted; the other schedules the rest and the release promotes, each step shifted
    once."""
    spec = load_spec(os.environ["SAP_LLM_RELEASE_SPEC"])
    steps = [step.weight for step in spec.traffic.steps]
    first_window = f"traffic_shift.shift_to_{steps[0]:03d}"
    killed: list[float] = []

    def kill_one_scheduler(states: dict) -> None:
        if not killed and states.get(first_window) == "deferred":
            airflow.processes.kill("scheduler")
            killed.append(time.time())

    airflow.start_another("scheduler-2", like="scheduler")
    try:
        run_id = airflow.api.trigger(DAG_ID, release_conf())
        state = airflow.follow(run_id, [a.name for a in spec.approvals], kill_one_scheduler)
    finally:
        if "scheduler" not in airflow.processes.processes:
            airflow.processes.start("scheduler")
        airflow.processes.kill("scheduler-2")

    states = airflow.api.task_states(DAG_ID, run_id)
    assert killed, f"{first_window} never deferred"
    assert state == "success", sorted(task for task, value in states.items() if value == "failed")
    record = ledger.release_record(f"{DAG_ID}:{run_id}")
    assert [change["green_after"] for change in record["traffic_changes"]] == steps
    assert quiet_stack.target.router.get_weights() == Weights(0, 100)
    assert [event["event"] for event in record["release_events"]][-1] == "promoted"


@pytest.mark.celery
def test_on_celery_the_metadata_database_restarted_mid_window_leaves_the_release_to_promote(airflow, quiet_stack,
                                                                                           ledger):
    """Airflow's PostgreSQL is restarted (fast shutdown: every connection cut) during the first traffic window; a
    component that exits for it is started again, as its orchestrator would. The window goes on, each step is shifted
    once, nginx's weights are the ledger's last record and the release promotes."""
    spec = load_spec(os.environ["SAP_LLM_RELEASE_SPEC"])
    steps = [step.weight for step in spec.traffic.steps]
    first_window = f"traffic_shift.shift_to_{steps[0]:03d}"
    restarted: list[str] = []

    def restart_the_database(states: dict) -> None:
        if not restarted and states.get(first_window) == "deferred":
            restart_postgres(airflow.metadata_url)
            time.sleep(10)  # the components meet the cut connections
            exited = airflow.processes.exited()
            restarted.append(f"exited: {exited}")
            print(f"after the database's restart, {restarted[0]}")
            if exited:
                airflow.processes.start(*exited)

    run_id = airflow.api.trigger(DAG_ID, release_conf())
    state = airflow.follow(run_id, [a.name for a in spec.approvals], restart_the_database)

    states = airflow.api.task_states(DAG_ID, run_id)
    assert restarted, f"{first_window} never deferred"
    assert state == "success", sorted(task for task, value in states.items() if value == "failed")
    record = ledger.release_record(f"{DAG_ID}:{run_id}")
    changes = record["traffic_changes"]
    assert [change["green_after"] for change in changes] == steps
    assert quiet_stack.target.router.get_weights() == Weights(changes[-1]["blue_after"], changes[-1]["green_after"])
    assert [(w["step"], w["verdict"]) for w in record["slo_windows"]] == [
        ("clear_before_deploy", "passed"), ("clear_before_shift", "passed")] + [
        (f"step_{w:03d}", "passed") for w in steps] + [("bake", "passed")]
