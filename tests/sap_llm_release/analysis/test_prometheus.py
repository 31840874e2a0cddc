"""Reading Prometheus instant-query results, and the provider over real HTTP."""

from __future__ import annotations

import asyncio
import math

import pytest

from sap_llm_release.analysis.prometheus import (
    AsyncPrometheusProvider,
    PrometheusAccess,
    PrometheusProvider,
    _single_value,
)
from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.polling import poll_until
from sap_llm_release.spec import load_spec
from sap_llm_release.templates import render
from tests.support.runs import SPEC_FILE


def _sample(value: str, **labels: str) -> dict:
    return {"metric": labels, "value": [1700000000.123, value]}


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ([], None),
        ([1700000000.123, "0.25"], 0.25),  # scalar
        ([1700000000.123, "NaN"], None),  # scalar NaN
        ([_sample("3")], 3.0),  # one-sample vector
        ([_sample("0.0042", colour="green")], 0.0042),
        ([_sample("NaN")], None),  # e.g. 0/0 in a ratio: no data
        ([_sample("1e+03")], 1000.0),
    ],
)
def test_single_value(result, expected):
    assert _single_value(result, "q") == expected


def test_single_value_infinity_is_a_value():
    assert _single_value([_sample("+Inf")], "q") == math.inf


def test_several_series_are_refused():
    with pytest.raises(MetricsUnavailable, match=r"query 'up' returned 2 series; aggregate it to one"):
        _single_value([_sample("1", colour="blue"), _sample("0", colour="green")], "up")


def test_three_series_are_refused():
    with pytest.raises(MetricsUnavailable, match="returned 3 series"):
        _single_value([_sample("1"), _sample("1"), _sample("1")], "up")


def test_range_result_is_refused():
    with pytest.raises(MetricsUnavailable, match="returned 1 series"):
        _single_value([{"metric": {}, "values": [[1, "1"], [2, "2"]]}], "up[1m]")


def test_non_numeric_value_is_refused():
    with pytest.raises(MetricsUnavailable, match=r"query 'up' returned a non-numeric value 'abc'"):
        _single_value([_sample("abc")], "up")


# -- over HTTP -----------------------------------------------------------------------------------------------------


def test_query_vector(canned_prometheus):
    canned_prometheus.vector('sum(up{job="sap-llm"})', "2")
    provider = PrometheusProvider(canned_prometheus.url + "/")
    assert provider.url == canned_prometheus.url
    assert provider.query('sum(up{job="sap-llm"})') == 2.0
    assert canned_prometheus.seen == ['sum(up{job="sap-llm"})']


def test_query_scalar_and_empty(canned_prometheus):
    canned_prometheus.scalar("scalar(1)", "1")
    canned_prometheus.vector("absent_series", )
    provider = PrometheusProvider(canned_prometheus.url)
    assert provider.query("scalar(1)") == 1.0
    assert provider.query("absent_series") is None


def test_query_several_series(canned_prometheus):
    canned_prometheus.vector("up", "1", "1")
    with pytest.raises(MetricsUnavailable, match="returned 2 series"):
        PrometheusProvider(canned_prometheus.url).query("up")


def test_query_rejected_by_prometheus(canned_prometheus):
    canned_prometheus.queries["sum("] = (400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
    with pytest.raises(MetricsUnavailable, match=rf"Prometheus {canned_prometheus.url} query 'sum\(' failed: .*400"):
        PrometheusProvider(canned_prometheus.url).query("sum(")


def test_query_answer_that_is_not_json(canned_prometheus):
    canned_prometheus.queries["up"] = (200, "<html>login</html>")
    with pytest.raises(MetricsUnavailable, match="query 'up' failed"):
        PrometheusProvider(canned_prometheus.url).query("up")


def test_query_answer_without_data(canned_prometheus):
    canned_prometheus.queries["up"] = (200, {"status": "error", "error": "proxy says no"})
    with pytest.raises(MetricsUnavailable, match="query 'up' failed"):
        PrometheusProvider(canned_prometheus.url).query("up")


def test_flags(canned_prometheus):
    canned_prometheus.set_flags({"storage.tsdb.retention.time": "30d", "web.enable-lifecycle": "false"})
    assert PrometheusProvider(canned_prometheus.url).flags() == {
        "storage.tsdb.retention.time": "30d",
        "web.enable-lifecycle": "false",
    }


@pytest.mark.parametrize(
    "answer", [(500, {"status": "error"}), (200, "not json"), (200, {"status": "success"}), (200, ["a", "list"])]
)
def test_flags_unreadable(canned_prometheus, answer):
    canned_prometheus.flags = answer
    with pytest.raises(MetricsUnavailable, match=f"Prometheus {canned_prometheus.url} flags could not be read"):
        PrometheusProvider(canned_prometheus.url).flags()


def test_unreachable_prometheus(free_port):
    provider = PrometheusProvider(f"http://127.0.0.1:{free_port}", timeout_s=1)
    with pytest.raises(MetricsUnavailable, match=f"Prometheus http://127.0.0.1:{free_port} query 'up' failed"):
        provider.query("up")
    with pytest.raises(MetricsUnavailable, match="flags could not be read"):
        provider.flags()


# -- trust and credentials -----------------------------------------------------------------------------------------

BASIC = "Basic " + __import__("base64").b64encode(b"release:s3cret").decode()


@pytest.fixture
def tls_prometheus(tmp_path):
    from tests.sap_llm_release.conftest import CannedPrometheus

    server = CannedPrometheus(cert_dir=tmp_path / "tls")
    server.scalar("vector(1)", "1")
    yield server
    server.close()


@pytest.fixture
def guarded_prometheus():
    from tests.sap_llm_release.conftest import CannedPrometheus

    server = CannedPrometheus(authorization=BASIC)
    server.scalar("vector(1)", "1")
    yield server
    server.close()


def test_a_certificate_that_is_not_trusted_is_refused_on_every_endpoint(tls_prometheus):
    provider = PrometheusProvider(PrometheusAccess(tls_prometheus.url), timeout_s=2)
    for call in (lambda: provider.query("vector(1)"), provider.ready, provider.flags, provider.targets):
        with pytest.raises(MetricsUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            call()
    assert tls_prometheus.seen == []  # no query reached the server


def test_the_connections_ca_bundle_makes_it_trusted(tls_prometheus):
    provider = PrometheusProvider(PrometheusAccess(tls_prometheus.url, ca_file=tls_prometheus.ca_file))
    assert provider.query("vector(1)") == 1.0
    assert provider.ready() == "Prometheus Server is Ready."


def test_a_prometheus_that_asks_for_credentials_refuses_a_request_without(guarded_prometheus):
    provider = PrometheusProvider(PrometheusAccess(guarded_prometheus.url), timeout_s=2)
    with pytest.raises(MetricsUnavailable, match="401"):
        provider.query("vector(1)")
    with pytest.raises(MetricsUnavailable, match="not ready: 401"):
        provider.ready()
    with pytest.raises(MetricsUnavailable, match="401"):
        provider.targets()


def test_basic_auth_reaches_every_endpoint(guarded_prometheus):
    provider = PrometheusProvider(PrometheusAccess(guarded_prometheus.url, username="release", password="s3cret"))
    assert provider.query("vector(1)") == 1.0
    assert provider.ready() and provider.flags() == {} and provider.targets() == []
    assert set(guarded_prometheus.authorizations) == {BASIC}


def test_a_bearer_token_is_sent_as_such(canned_prometheus):
    canned_prometheus.scalar("vector(1)", "1")
    PrometheusProvider(PrometheusAccess(canned_prometheus.url, bearer_token="t0ken")).query("vector(1)")
    assert canned_prometheus.authorizations == ["Bearer t0ken"]


def test_the_alertmanager_is_never_sent_prometheus_credentials(canned_prometheus):
    canned_prometheus.set_alertmanager_config("route: {receiver: pagerduty}")
    provider = PrometheusProvider(PrometheusAccess(canned_prometheus.url, bearer_token="t0ken"))
    (alertmanager,) = provider.alertmanagers()
    assert provider.alertmanager_config(alertmanager) == {"route": {"receiver": "pagerduty"}}
    assert canned_prometheus.authorizations == ["Bearer t0ken", None]


def test_basic_auth_and_a_token_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        PrometheusAccess("https://prometheus", username="a", password="b", bearer_token="c")


def test_replicas_share_the_trust_and_credentials():
    access = PrometheusAccess("https://p1", ca_file="/ca.pem", username="u", password="p")
    assert access.at("https://p2") == PrometheusAccess("https://p2", "/ca.pem", "u", "p")
    assert access.to_dict() == {"url": "https://p1", "ca_file": "/ca.pem", "username": "u", "password": "p"}


# -- the triggers' async queries -------------------------------------------------------------------------------------


def aquery(access, promql: str, timeout_s: float = 2.0):
    async def ask():
        async with AsyncPrometheusProvider(access, timeout_s=timeout_s) as provider:
            return await provider.query(promql)

    return asyncio.run(ask())


def aquery_many(access, promqls: list[str]):
    async def ask():
        async with AsyncPrometheusProvider(access, timeout_s=2) as provider:
            return await provider.query_many(promqls)

    return asyncio.run(ask())


def batch_of(promqls: list[str]) -> str:
    return " or ".join(f'label_replace(({promql}), "sap_llm_query", "{index}", "", "")'
                       for index, promql in enumerate(promqls))


def test_a_windows_queries_go_as_one_request_each_answer_read_by_its_mark(canned_prometheus):
    promqls = ["error_rate", "p95", "absent", "several"]
    marked = [({"sap_llm_query": "0"}, "0.002"), ({"sap_llm_query": "1"}, "0.4"),
              ({"sap_llm_query": "3", "pod": "a"}, "1"), ({"sap_llm_query": "3", "pod": "b"}, "1")]
    canned_prometheus.queries[batch_of(promqls)] = (200, {"status": "success", "data": {
        "resultType": "vector", "result": [{"metric": labels, "value": [0, value]} for labels, value in marked]}})
    answers = aquery_many(canned_prometheus.url, promqls)
    assert answers[:3] == [(0.002, ""), (0.4, ""), (None, "")]
    assert answers[3][0] is None and "returned 2 series" in answers[3][1]
    assert canned_prometheus.seen == [batch_of(promqls)]  # one request


def test_a_batch_prometheus_refuses_is_asked_query_by_query(canned_prometheus):
    canned_prometheus.queries[batch_of(["good", "sum("])] = (400, {"status": "error", "error": "parse error"})
    canned_prometheus.scalar("good", "1")
    canned_prometheus.queries["sum("] = (400, {"status": "error", "errorType": "bad_data", "error": "parse error"})
    (good, bad) = aquery_many(canned_prometheus.url, ["good", "sum("])
    assert good == (1.0, "") and bad[0] is None and "query 'sum(' failed" in bad[1]


def test_async_query_reads_a_vector_a_scalar_and_no_data(canned_prometheus):
    canned_prometheus.vector('sum(up{job="sap-llm"})', "2")
    canned_prometheus.scalar("scalar(1)", "1")
    canned_prometheus.vector("absent_series")
    assert aquery(canned_prometheus.url + "/", 'sum(up{job="sap-llm"})') == 2.0
    assert aquery(canned_prometheus.url, "scalar(1)") == 1.0
    assert aquery(canned_prometheus.url, "absent_series") is None


@pytest.mark.parametrize("promql, answer, message", [
    ("up", (200, {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"a": "1"}, "value": [0, "1"]}, {"metric": {"a": "2"}, "value": [0, "1"]}]}}), "returned 2 series"),
    ("sum(", (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}), "failed: .*400"),
    ("up", (200, "<html>login</html>"), "query 'up' failed"),
    ("up", (200, {"status": "error", "error": "proxy says no"}), "query 'up' failed: 'proxy says no'"),
])
def test_async_query_refuses_what_is_not_one_number(canned_prometheus, promql, answer, message):
    canned_prometheus.queries[promql] = answer
    with pytest.raises(MetricsUnavailable, match=message):
        aquery(canned_prometheus.url, promql)


def test_async_query_of_an_unreachable_prometheus(free_port):
    with pytest.raises(MetricsUnavailable, match=f"Prometheus http://127.0.0.1:{free_port} query 'up' failed"):
        aquery(f"http://127.0.0.1:{free_port}", "up", timeout_s=1)


def test_async_query_trusts_only_the_connections_ca_and_sends_its_credentials(tls_prometheus, guarded_prometheus,
                                                                               canned_prometheus):
    with pytest.raises(MetricsUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
        aquery(PrometheusAccess(tls_prometheus.url), "vector(1)")
    assert aquery(PrometheusAccess(tls_prometheus.url, ca_file=tls_prometheus.ca_file), "vector(1)") == 1.0
    with pytest.raises(MetricsUnavailable, match="401"):
        aquery(PrometheusAccess(guarded_prometheus.url), "vector(1)")
    assert aquery(PrometheusAccess(guarded_prometheus.url, username="release", password="s3cret"), "vector(1)") == 1
    canned_prometheus.scalar("vector(1)", "1")
    aquery(PrometheusAccess(canned_prometheus.url, bearer_token="t0ken"), "vector(1)")
    assert canned_prometheus.authorizations == ["Bearer t0ken"]


def aseries(url: str, promql: str):
    async def ask():
        async with AsyncPrometheusProvider(url, timeout_s=2) as provider:
            return await provider.series(promql)

    return asyncio.run(ask())


def test_async_series_reads_each_label_set_and_refuses_what_is_not_a_vector(canned_prometheus):
    firing = [{"__name__": "ALERTS", "alertname": "SapLlmHighErrorRate", "colour": "blue"},
              {"__name__": "ALERTS", "alertname": "SapLlmApiEndpointDown"}]
    canned_prometheus.queries["ALERTS"] = (200, {"status": "success", "data": {
        "resultType": "vector", "result": [{"metric": labels, "value": [0, "1"]} for labels in firing]}})
    canned_prometheus.vector("ALERTS{none}")
    canned_prometheus.scalar("scalar(1)", "1")
    assert aseries(canned_prometheus.url, "ALERTS") == firing
    assert aseries(canned_prometheus.url, "ALERTS{none}") == []
    with pytest.raises(MetricsUnavailable, match="did not answer an instant vector"):
        aseries(canned_prometheus.url, "scalar(1)")


@pytest.mark.stack
def test_every_query_of_the_specs_slos_answers_one_number_on_the_live_stack(fresh_stack):
    """Each SLO's query, its severe events and its bad-event counts, rendered for blue's slot at the rehearsal's
    windows, answer a number: a counts query Prometheus refused would leave the plain threshold to judge unnoticed."""
    spec = load_spec(SPEC_FILE)
    variables = {"colour": "blue", "service": spec.service, "rate_window": spec.rate_window("rehearsal")}
    severe_window = {**variables, "rate_window": spec.severe_rate_window("rehearsal")}
    queries = {}
    for slo in spec.analysis.slos:
        queries[slo.name] = render(slo.query, **variables)
        if slo.severe:
            queries[f"{slo.name}.severe.events"] = render(slo.severe.events, **severe_window)
        if slo.counts:
            queries[f"{slo.name}.counts.bad"] = render(slo.counts.bad, **variables)
            queries[f"{slo.name}.counts.events"] = render(slo.counts.events, **variables)

    async def ask() -> list[tuple[float | None, str]]:
        async with AsyncPrometheusProvider(fresh_stack.prometheus_url) as provider:
            return await provider.query_many(list(queries.values()))

    answers = poll_until(lambda: asyncio.run(ask()), lambda got: all(value is not None for value, _ in got),
                         timeout_s=15, interval_s=1)
    assert {name: error or value is not None for name, (value, error) in zip(queries, answers, strict=True)} == {
        name: True for name in queries}
    assert {"error_rate.counts.bad", "p95_latency.counts.events", "error_rate.severe.events"} <= set(queries)
