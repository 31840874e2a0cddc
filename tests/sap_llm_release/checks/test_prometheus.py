"""prometheus_query (with a scripted provider) and prometheus_flag (over a canned Prometheus HTTP API)."""

from __future__ import annotations

import time

import pytest

from sap_llm_release.analysis.prometheus import PrometheusProvider
from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.checks.base import CheckContext, CheckUnavailable
from sap_llm_release.checks.prometheus import (
    PrometheusFlag,
    PrometheusFlagParams,
    PrometheusQuery,
    PrometheusQueryParams,
    PrometheusReplicas,
    PrometheusReplicasParams,
    PrometheusRules,
    PrometheusRulesParams,
    PrometheusTargets,
    PrometheusTargetsParams,
)
from sap_llm_release.evidence import Threshold, Verdict
from sap_llm_release.polling import poll_until
from tests.sap_llm_release.conftest import CannedPrometheus

RETENTION = "storage.tsdb.retention.time"
AT_LEAST_30_DAYS = Threshold(op=">=", value=30, unit="days")


class ScriptedMetrics:
    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def query(self, promql: str):
        self.asked.append(promql)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def query(metrics, threshold: Threshold, **params):
    context = CheckContext(service="sap-llm", metrics=metrics, rate_window="10s")
    return PrometheusQuery().run(PrometheusQueryParams(**params), threshold, context)


def test_query_fills_in_service_and_rate_window():
    metrics = ScriptedMetrics(12.0)
    evidence = query(metrics, Threshold(op=">", value=0), query='sum(rate(x{job="$service"}[$rate_window]))')
    assert metrics.asked == ['sum(rate(x{job="sap-llm"}[10s]))']
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.PASSED, 12.0, "> 0")
    assert evidence.detail == 'PromQL sum(rate(x{job="sap-llm"}[10s]))'


def test_query_out_of_bound_fails():
    evidence = query(ScriptedMetrics(0.02), Threshold(op="<", value=0.01), query="error_ratio")
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, 0.02, "< 0.01")


ERROR_COUNTS = {"bad": 'errors{job="$service"}[$rate_window]', "events": 'requests{job="$service"}[$rate_window]',
                "share": 0.01, "confidence": 0.99}


def test_a_ratio_past_its_threshold_on_too_few_bad_events_passes_as_noise_naming_its_counts():
    metrics = ScriptedMetrics(0.0111, 2.0, 180.0)
    evidence = query(metrics, Threshold(op="<", value=0.01), query="error_ratio", counts=ERROR_COUNTS)
    assert metrics.asked == ["error_ratio", 'errors{job="sap-llm"}[10s]', 'requests{job="sap-llm"}[10s]']
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.PASSED, 0.0111, "< 0.01")
    assert evidence.detail == ("PromQL error_ratio; within noise at 0.99 confidence: 2 bad of 180 events, p=0.538 "
                               "at an allowed share of 0.01")


def test_a_ratio_its_counts_make_significant_fails_naming_them():
    evidence = query(ScriptedMetrics(0.05, 9.0, 180.0), Threshold(op="<", value=0.01), query="error_ratio",
                     counts=ERROR_COUNTS)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 0.05)
    assert evidence.detail.startswith("PromQL error_ratio; significant: 9 bad of 180 events, p=")


def test_counts_without_data_never_excuse_a_breach():
    evidence = query(ScriptedMetrics(0.0111, None, 180.0), Threshold(op="<", value=0.01), query="error_ratio",
                     counts=ERROR_COUNTS)
    assert (evidence.verdict, evidence.detail) == (Verdict.FAILED, "PromQL error_ratio; bad-event counts: no data")


def test_counts_are_not_asked_while_the_threshold_is_met():
    metrics = ScriptedMetrics(0.004)
    assert query(metrics, Threshold(op="<", value=0.01), query="error_ratio", counts=ERROR_COUNTS).verdict \
        is Verdict.PASSED
    assert metrics.asked == ["error_ratio"]


def test_counts_refuse_unknown_template_variables():
    with pytest.raises(ValueError, match="counts.bad"):
        PrometheusQueryParams(query="x", counts={**ERROR_COUNTS, "bad": "errors[$window]"})


def test_query_no_data_fails():
    evidence = query(ScriptedMetrics(None), Threshold(op="==", value=1), query="min(up)")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert evidence.detail == "no measurement: PromQL min(up)"


def test_query_metrics_unavailable_fails_with_the_reason():
    down = MetricsUnavailable("Prometheus http://127.0.0.1:9 query 'min(up)' failed: refused")
    evidence = query(ScriptedMetrics(down), Threshold(op="==", value=1), query="min(up)")
    assert (evidence.verdict, evidence.measured, evidence.threshold, evidence.detail) == (
        Verdict.FAILED,
        None,
        "== 1",
        str(down),
    )


def test_query_waits_for_the_bound():
    metrics = ScriptedMetrics(None, 1.0)
    started = time.monotonic()
    evidence = query(metrics, Threshold(op="==", value=1), query="min(up)", wait_s=5)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1.0)
    assert len(metrics.asked) == 2
    assert time.monotonic() - started < 3


def test_query_without_wait_asks_once():
    metrics = ScriptedMetrics(None, 1.0)
    assert query(metrics, Threshold(op="==", value=1), query="min(up)").verdict is Verdict.FAILED
    assert len(metrics.asked) == 1


def test_query_without_metrics_is_unavailable():
    with pytest.raises(CheckUnavailable, match="this target provides no metrics"):
        PrometheusQuery().run(PrometheusQueryParams(query="up"), Threshold(op="==", value=1),
                              CheckContext(service="sap-llm"))


def test_query_params_refuse_unknown_template_variables():
    with pytest.raises(ValueError, match=r"unknown template variables \['colour'\]"):
        PrometheusQueryParams(query='min(up{colour="$colour"})')


def test_query_over_http(canned_prometheus):
    canned_prometheus.vector('min(up{job="sap-llm",colour="green"})', "1")
    evidence = query(
        PrometheusProvider(canned_prometheus.url), Threshold(op="==", value=1),
        query='min(up{job="$service",colour="green"})',
    )
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 1.0)


def flag(canned_prometheus, threshold: Threshold = AT_LEAST_30_DAYS, name: str = RETENTION):
    context = CheckContext(service="sap-llm", metrics=PrometheusProvider(canned_prometheus.url))
    return PrometheusFlag().run(PrometheusFlagParams(flag=name), threshold, context)


@pytest.mark.parametrize(
    ("raw", "days", "verdict"),
    [
        ("30d", 30.0, Verdict.PASSED),
        ("15d", 15.0, Verdict.FAILED),
        ("1y", 365.0, Verdict.PASSED),
        ("720h", 30.0, Verdict.PASSED),
        ("4w", 28.0, Verdict.FAILED),
        ("36h", 1.5, Verdict.FAILED),
    ],
)
def test_flag_in_days(canned_prometheus, raw, days, verdict):
    canned_prometheus.set_flags({RETENTION: raw, "web.listen-address": "127.0.0.1:9090"})
    evidence = flag(canned_prometheus)
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (verdict, days, ">= 30 days")
    assert evidence.detail == f"--{RETENTION}={raw}"


def test_flag_missing(canned_prometheus):
    canned_prometheus.set_flags({"web.listen-address": "127.0.0.1:9090"})
    evidence = flag(canned_prometheus)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert evidence.detail == f"flag {RETENTION} is None, not a duration"


@pytest.mark.parametrize("raw", ["0s", "forever", ""])
def test_flag_not_a_duration(canned_prometheus, raw):
    canned_prometheus.set_flags({RETENTION: raw})
    evidence = flag(canned_prometheus)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert evidence.detail == f"flag {RETENTION} is {raw!r}, not a duration"


def test_flags_unreadable(canned_prometheus):
    canned_prometheus.flags = (503, {"status": "error"})
    evidence = flag(canned_prometheus)
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, None, ">= 30 days")
    assert evidence.detail.startswith(f"Prometheus {canned_prometheus.url} flags could not be read: 503")


def test_flag_prometheus_down(free_port):
    context = CheckContext(service="sap-llm", metrics=PrometheusProvider(f"http://127.0.0.1:{free_port}"))
    evidence = PrometheusFlag().run(PrometheusFlagParams(flag=RETENTION), AT_LEAST_30_DAYS, context)
    assert evidence.verdict is Verdict.FAILED
    assert evidence.detail.startswith(f"Prometheus http://127.0.0.1:{free_port} flags could not be read")


SLO_RULES = ["SapLlmHighErrorRate", "SapLlmHighLatency"]
NONE_MISSING = Threshold(op="==", value=0)


def rules_check(url: str, names=SLO_RULES):
    context = CheckContext(service="sap-llm", metrics=PrometheusProvider(url))
    return PrometheusRules().run(PrometheusRulesParams(names=names), NONE_MISSING, context)


def rule(name: str, health: str = "ok", kind: str = "alerting", error: str = "") -> dict:
    return {"name": name, "type": kind, "health": health, "lastError": error}


def test_rules_loaded_and_healthy_pass(canned_prometheus):
    canned_prometheus.set_rules(rule("SapLlmHighErrorRate"), rule("SapLlmHighLatency"), rule("Other"))
    evidence = rules_check(canned_prometheus.url)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0)
    assert evidence.detail == "2 of 2 alerting rules loaded and healthy"


def test_a_missing_unhealthy_or_wrong_type_rule_fails_naming_it(canned_prometheus):
    canned_prometheus.set_rules(rule("SapLlmHighErrorRate", health="err", error="vector contains metrics with the "
                                     "same labelset"), rule("SapLlmHighLatency", kind="recording"))
    evidence = rules_check(canned_prometheus.url)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 2)
    assert "SapLlmHighErrorRate health 'err' (vector contains" in evidence.detail
    assert "SapLlmHighLatency not loaded" in evidence.detail


@pytest.mark.parametrize("answer", [(503, {"status": "error"}), (200, {"status": "success", "data": {}}),
                                    (200, {"status": "success", "data": {"groups": [{"name": "g"}]}}),
                                    (200, "not json")])
def test_rules_that_cannot_be_read_fail(canned_prometheus, answer):
    canned_prometheus.rules = answer
    evidence = rules_check(canned_prometheus.url)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert f"Prometheus {canned_prometheus.url} rules" in evidence.detail


def test_rules_prometheus_down(free_port):
    evidence = rules_check(f"http://127.0.0.1:{free_port}")
    assert evidence.verdict is Verdict.FAILED and "rules could not be read" in evidence.detail


@pytest.mark.stack
def test_the_stacks_prometheus_has_the_slo_rules_loaded(local_stack):
    names = ["SapLlmHighErrorRate", "SapLlmHighLatency", "SapLlmModelInferenceFailures", "SapLlmLowThroughput"]
    deadline = time.monotonic() + 15  # a rule's health is "unknown" until its first evaluation (every second)
    while (evidence := rules_check(local_stack.prometheus_url, names)).measured and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0), evidence.detail
    assert rules_check(local_stack.prometheus_url, ["NoSuchRule"]).measured == 1


def targets_check(url: str, job: str = "$service", **labels: str):
    context = CheckContext(service="sap-llm", metrics=PrometheusProvider(url), slots={"blue": "green", "green": "blue"})
    return PrometheusTargets().run(PrometheusTargetsParams(job=job, labels=labels), NONE_MISSING, context)


def target(job: str, colour: str, health: str = "up", error: str = "") -> dict:
    return {"labels": {"job": job, "colour": colour, "instance": f"{colour}:9000"}, "health": health,
            "lastError": error, "scrapeUrl": f"http://{colour}:9000/metrics"}


def test_targets_of_the_job_and_slot_up_pass(canned_prometheus):
    canned_prometheus.set_targets(target("sap-llm", "green"), target("sap-llm", "blue", "down"), target("x", "green"))
    evidence = targets_check(canned_prometheus.url, colour="$blue")  # the slot serving as blue is "green" here
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0)
    assert evidence.detail == "1 of 1 targets with job=sap-llm, colour=green up"


def test_a_target_down_fails_with_its_scrape_error(canned_prometheus):
    canned_prometheus.set_targets(target("sap-llm", "green", "down", "connection refused"), target("sap-llm", "blue"))
    evidence = targets_check(canned_prometheus.url)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1)
    assert "1 of 2 targets with job=sap-llm up; http://green:9000/metrics down: connection refused" == evidence.detail


@pytest.mark.parametrize("answer", [(200, {"status": "success", "data": {"activeTargets": []}}),
                                    (200, {"status": "success", "data": {}}), (500, "oops")])
def test_no_target_or_no_answer_fails(canned_prometheus, answer):
    canned_prometheus.targets = answer
    evidence = targets_check(canned_prometheus.url)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)


@pytest.mark.stack
def test_the_stacks_prometheus_scrapes_itself_and_blue(fresh_stack):
    context = CheckContext(service="sap-llm", metrics=PrometheusProvider(fresh_stack.prometheus_url))

    def up(job: str, down: int = 0, **labels: str):
        """The check once ``down`` targets are down: a target's health follows its process only at its next scrape
        (a green removed a moment ago still reads up, a restarted one unknown), so ask again for up to 15 s."""
        return poll_until(
            lambda: PrometheusTargets().run(PrometheusTargetsParams(job=job, labels=labels), NONE_MISSING, context),
            lambda evidence: evidence.measured == down, timeout_s=15, interval_s=0.5)

    assert up("prometheus").verdict is Verdict.PASSED
    assert up("$service", colour="$blue").verdict is Verdict.PASSED
    green = up("$service", down=1, colour="$green")
    assert (green.verdict, green.measured) == (Verdict.FAILED, 1)  # no green deployed: its target is down


# -- HA replicas -----------------------------------------------------------------------------------------------------

THREE = Threshold(op=">=", value=3)


def replicas_check(*urls: str, threshold: Threshold = THREE):
    context = CheckContext(service="sap-llm", prometheus_replica_urls=lambda: list(urls))
    return PrometheusReplicas().run(PrometheusReplicasParams(timeout_s=1), threshold, context)


@pytest.fixture
def canned_replicas():
    servers = [CannedPrometheus() for _ in range(3)]
    for server in servers:
        server.set_targets(target("sap-llm", "blue"), target("prometheus", "self"))
    yield servers
    for server in servers:
        server.close()


def test_three_replicas_ready_and_scraping_pass(canned_replicas):
    evidence = replicas_check(*(server.url for server in canned_replicas))
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 3)
    assert evidence.detail.startswith("3 of 3 replicas ready and scraping: ")
    assert evidence.detail.count("ready, scraping 2 jobs") == 3


def test_a_replica_down_not_ready_or_missing_a_job_does_not_count(canned_replicas, free_port):
    first, second, third = canned_replicas
    second.ready = (503, "Service Unavailable")
    third.set_targets(target("prometheus", "self"))
    evidence = replicas_check(first.url, second.url, third.url, f"http://127.0.0.1:{free_port}")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1)
    assert f"Prometheus {second.url} is not ready: 503" in evidence.detail
    assert f"{third.url} ready but scrapes no sap-llm" in evidence.detail
    assert f"Prometheus http://127.0.0.1:{free_port} did not answer /-/ready" in evidence.detail


def test_a_replica_with_unreadable_targets_does_not_count(canned_replicas):
    canned_replicas[2].targets = (200, {"status": "success", "data": {}})
    evidence = replicas_check(*(server.url for server in canned_replicas))
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 2)
    assert "targets are malformed" in evidence.detail


def test_replicas_that_scrape_nothing_do_not_count(canned_replicas):
    for server in canned_replicas:
        server.targets = (200, {"status": "success", "data": {"activeTargets": []}})
    evidence = replicas_check(*(server.url for server in canned_replicas))
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 0)
    assert evidence.detail.count("ready but scrapes nothing") == 3


def test_no_replicas_configured_cannot_be_checked():
    with pytest.raises(CheckUnavailable, match="no Prometheus replicas are configured"):
        replicas_check()


def test_the_stacks_three_replicas_answer_and_scrape(local_stack):
    evidence = replicas_check(*local_stack.target.prometheus_replicas)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 3), evidence.detail
