"""Release notifications through the real clients (slack_sdk's WebClient, the pagerduty Events API v2 client)
against local stand-ins: the exact requests sent, one Slack thread and one PagerDuty alert per release, retries with
backoff, and failures recorded without ever raising."""

from __future__ import annotations

import json

import pagerduty
import pytest
from slack_sdk import WebClient

from sap_llm_release.ledger import Writer
from sap_llm_release.notify.delivery import deliver
from sap_llm_release.notify.notifier import ReleaseNotifier
from sap_llm_release.notify.pagerduty import Pager
from sap_llm_release.notify.slack import SlackChannel
from sap_llm_release.rehearsal.standins import PagerDutyEvents, SlackWebApi
from tests.support.ledgers import ledger_with_release

RELEASE = "sap_llm_release:manual__2026-11-26"
WRITER = Writer("sap_llm_release", "manual__2026-11-26", "rollback", 1)
ROUTING_KEY = "R0UT1NGKEY0000000000000000000000"


@pytest.fixture
def ledger(tmp_path):
    return ledger_with_release(tmp_path, RELEASE, WRITER)


@pytest.fixture
def slack_api():
    server = SlackWebApi()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pagerduty_api(tmp_path):
    server = PagerDutyEvents(tmp_path / "tls")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def notifier(ledger, slack_api, pagerduty_api):
    slack = SlackChannel(WebClient(token="xoxb-test", base_url=slack_api.url), "#releases")
    client = pagerduty.EventsApiV2Client(ROUTING_KEY, base_url=pagerduty_api.url, verify=pagerduty_api.ca_file)
    return ReleaseNotifier(ledger, RELEASE, WRITER, slack=slack, pager=Pager(client, "sap-llm-release"),
                           backoff_s=0.01)


def notifications(ledger):
    return [(row["channel"], row["kind"], row["status"]) for row in ledger.release_record(RELEASE)["notifications"]]


def test_one_thread_per_release(notifier, slack_api, ledger):
    notifier.started("sap-llm", "1.1.0", "rehearsal", "alice", "http://airflow/run")
    notifier.started("sap-llm", "1.1.0", "rehearsal", "alice", "http://airflow/run")  # a retried task
    notifier.say("traffic_005", "traffic: 5 % on green")
    posts = slack_api.calls("chat.postMessage")
    assert len(posts) == 2
    assert posts[0]["channel"] == "#releases" and "started by alice" in posts[0]["text"]
    assert posts[0]["blocks"][0]["text"]["text"].startswith("*Release of sap-llm 1.1.0 to rehearsal started*")
    assert "thread_ts" not in posts[0] and posts[1]["thread_ts"] == "1700000000.000001"
    assert slack_api.requests[0]["authorization"] == "Bearer xoxb-test"
    assert notifications(ledger) == [("slack", "release_started", "sent"), ("slack", "traffic_005", "sent")]


def test_rollback_pages_once_and_resolves_when_healthy(notifier, pagerduty_api, ledger):
    notifier.page("rolled_back", "sap-llm 1.1.0 rolled back: error_rate 4 % at 20 %", {"step": "step_020"})
    notifier.page("rolled_back", "again")  # a repeat does not page twice
    notifier.resolve_page("rollback_verified", "blue serves 100 % and is healthy")
    notifier.resolve_page("rollback_verified", "again")
    trigger, resolve = pagerduty_api.events()
    assert trigger["event_action"] == "trigger" and trigger["routing_key"] == ROUTING_KEY
    assert trigger["dedup_key"] == f"sap-llm-release/{RELEASE}"
    assert trigger["payload"]["severity"] == "critical" and trigger["payload"]["source"] == "sap-llm-release"
    assert trigger["payload"]["custom_details"] == {"step": "step_020"}
    assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", trigger["dedup_key"])
    assert notifications(ledger) == [("pagerduty", "rolled_back", "sent"), ("pagerduty", "rollback_verified", "sent")]


def test_nothing_to_resolve_sends_nothing(notifier, pagerduty_api):
    notifier.resolve_page("rollback_verified", "healthy")
    assert pagerduty_api.events() == []


def test_transient_failures_are_retried(notifier, slack_api, pagerduty_api, ledger):
    slack_api.fail_next, pagerduty_api.fail_next = 2, 1
    notifier.say("rolled_back", "rolled back")
    notifier.page("rolled_back", "rolled back")
    assert len(slack_api.calls("chat.postMessage")) == 3 and len(pagerduty_api.events()) == 2
    assert notifications(ledger) == [("slack", "rolled_back", "sent"), ("pagerduty", "rolled_back", "sent")]


def test_an_unreachable_service_is_recorded_failed_and_never_raises(ledger, tmp_path):
    slack = SlackChannel(WebClient(token="x", base_url="http://127.0.0.1:9/api/", timeout=1), "#releases")
    client = pagerduty.EventsApiV2Client(ROUTING_KEY, base_url="https://127.0.0.1:9", timeout=1)
    notifier = ReleaseNotifier(ledger, RELEASE, WRITER, slack=slack, pager=Pager(client, "s"), backoff_s=0.01)
    notifier.started("sap-llm", "1.1.0", "rehearsal", "alice", "http://airflow/run")
    notifier.page("rollback_failed", "rollback failed")
    rows = ledger.release_record(RELEASE)["notifications"]
    assert [(r["channel"], r["status"]) for r in rows] == [("slack", "failed"), ("pagerduty", "failed")]
    assert all("failed after 3 attempts" in r["detail"] for r in rows)
    notifier.page("rollback_failed", "still failing")  # a failed page is tried again by a later call
    assert len(ledger.release_record(RELEASE)["notifications"]) == 2  # same task try: the first record stays


def test_deliver_backs_off_exponentially():
    waits, calls = [], []

    def flaky():
        calls.append(1)
        raise ConnectionError("refused")

    delivery = deliver(flaky, "test", attempts=4, backoff_s=0.5, sleep=waits.append)
    assert (delivery.ok, delivery.attempts, len(calls)) == (False, 4, 4)
    assert waits == [0.5, 1.0, 2.0]
    assert delivery.detail == "failed after 4 attempts: ConnectionError: refused"


def test_nothing_a_person_typed_reaches_slack_as_markup(notifier, slack_api):
    hostile = "<!channel> deploy now & <@U0ADMIN>"
    notifier.started("sap-llm", "1.1.0", "rehearsal", hostile, "http://airflow/run")
    notifier.say("finished", f"release promoted: requested by {hostile}")
    for post in slack_api.calls("chat.postMessage"):
        sent = post["text"] + json.dumps(post.get("blocks") or [])
        assert "<!" not in sent and "<@" not in sent
        assert "&lt;!channel&gt;" in sent
