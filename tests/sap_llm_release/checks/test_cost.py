"""cost_per_document: the spec's cost model over the release's rate window, green's series, over a canned
Prometheus HTTP API."""

from __future__ import annotations

import pytest

from sap_llm_release.analysis.prometheus import PrometheusProvider
from sap_llm_release.checks.base import CheckContext, CheckUnavailable
from sap_llm_release.checks.cost import CostPerDocument
from sap_llm_release.evidence import Threshold, Verdict
from sap_llm_release.gates import evaluate_gate

GREEN = 'job="sap-llm",colour="green"'
DOCUMENTS = f"sum(increase(sap_llm_documents_processed_total{{{GREEN}}}[300s]))"
REPLICA_HOURS = f"sum_over_time(count(up{{{GREEN}}})[300s:60s]) * 60 / 3600"
WEB_SEARCHES = f"sum(increase(sap_llm_web_search_requests_total{{{GREEN}}}[300s]))"


@pytest.fixture
def gate(spec):
    return spec.gate("business_cost_per_document")


def run(gate, canned, slots=None):
    context = CheckContext(service="sap-llm", metrics=PrometheusProvider(canned.url, timeout_s=2), rate_window="5m",
                           slots=slots or {"blue": "blue", "green": "green"})
    return CostPerDocument().run(gate.check_params, gate.threshold, context)


def usage(canned, documents: str, replica_hours: str, web_searches: tuple[str, ...] = ("2",)) -> None:
    canned.vector(DOCUMENTS, documents)
    canned.vector(REPLICA_HOURS, replica_hours)
    canned.vector(WEB_SEARCHES, *web_searches)


def by_hand(costs, documents: float, replica_hours: float, web_searches: float) -> float:
    """USD per document over 5 minutes: GPU nodes by the hour, monthly services over 730 h, web search by call."""
    monthly = costs.monthly
    per_month = monthly.cosmos_db + monthly.redis + monthly.mongodb + monthly.monitoring + monthly.storage
    fixed = per_month * (5 / 60) / 730
    return (replica_hours * costs.gpu_node_hour + fixed + web_searches * costs.web_search_query) / documents


def test_green_over_the_rate_window_is_priced_with_the_spec_costs(gate, canned_prometheus):
    usage(canned_prometheus, "500", "0.25")
    evidence = run(gate, canned_prometheus)
    expected = by_hand(gate.check_params.costs, 500, 0.25, 2)
    assert evidence.verdict is Verdict.PASSED
    assert evidence.measured == pytest.approx(expected, abs=1e-7)
    assert evidence.threshold == "< 0.005 USD"
    assert "500 documents, 0.25 replica-hours, 2 web-search calls over 0.08 h" in evidence.detail
    assert "gpu_nodes 0.0014850" in evidence.detail  # 0.25 h x 2.97 USD / 500


def test_the_selector_names_greens_slot(gate, canned_prometheus):
    blue_slot = {name: query.replace('colour="green"', 'colour="blue"')
                 for name, query in {"d": DOCUMENTS, "r": REPLICA_HOURS, "w": WEB_SEARCHES}.items()}
    canned_prometheus.vector(blue_slot["d"], "500")
    canned_prometheus.vector(blue_slot["r"], "0.25")
    canned_prometheus.vector(blue_slot["w"], "0")
    evidence = run(gate, canned_prometheus, slots={"blue": "green", "green": "blue"})
    assert evidence.verdict is Verdict.PASSED
    assert set(canned_prometheus.seen) == set(blue_slot.values())


def test_too_few_documents_for_the_replicas_fail(gate, canned_prometheus):
    usage(canned_prometheus, "40", "0.25")
    evidence = run(gate, canned_prometheus)
    assert evidence.verdict is Verdict.FAILED
    assert evidence.measured == pytest.approx(by_hand(gate.check_params.costs, 40, 0.25, 2), abs=1e-7)
    assert evidence.measured > 0.005


def test_no_web_search_counter_counts_no_calls_and_says_so(gate, canned_prometheus):
    usage(canned_prometheus, "500", "0.25", web_searches=())
    evidence = run(gate, canned_prometheus)
    assert evidence.measured == pytest.approx(by_hand(gate.check_params.costs, 500, 0.25, 0), abs=1e-7)
    assert "no web-search series (counted as 0 calls)" in evidence.detail


@pytest.mark.parametrize("documents, replica_hours, why", [
    (("0",), ("0.25",), "no documents to price: 0 documents"),
    ((), ("0.25",), 'no document or pod series match {job="sap-llm",colour="green"} in the last 5m'),
    (("500",), (), 'no document or pod series match {job="sap-llm",colour="green"} in the last 5m'),
])
def test_nothing_to_price_fails_never_passes(gate, canned_prometheus, documents, replica_hours, why):
    canned_prometheus.vector(DOCUMENTS, *documents)
    canned_prometheus.vector(REPLICA_HOURS, *replica_hours)
    canned_prometheus.vector(WEB_SEARCHES)
    evidence = run(gate, canned_prometheus)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert why in evidence.detail


def test_an_unreachable_prometheus_fails_naming_it(gate, free_port):
    context = CheckContext(service="sap-llm", rate_window="5m",
                           metrics=PrometheusProvider(f"http://127.0.0.1:{free_port}", timeout_s=1))
    evidence = CostPerDocument().run(gate.check_params, gate.threshold, context)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert f"127.0.0.1:{free_port}" in evidence.detail


def test_a_target_without_prometheus_cannot_check(gate, spec):
    with pytest.raises(CheckUnavailable, match="no metrics"):
        CostPerDocument().run(gate.check_params, Threshold(op="<", value=0.005), CheckContext(service="sap-llm"))
    evidence = evaluate_gate(gate, spec.profile("production"), CheckContext(service="sap-llm"))
    assert evidence.verdict is Verdict.FAILED and "cannot check" in evidence.detail
