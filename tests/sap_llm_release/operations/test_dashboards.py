"""The Grafana dashboards built from the spec (deploy/grafana/): the committed files are what the spec generates, the
five boards of checklist section 5 are there with every panel on the datasource variable, and every panel's PromQL
returns data from the live local stack's Prometheus (but the production exporters' it cannot have)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from sap_llm_release.operations.dashboards import DASHBOARDS_DIR, DATASOURCE, PRODUCTION_EXPORTERS, generate
from tests.support.runs import SPEC_FILE

COMMITTED = {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS_DIR.glob("*.json"))}


def queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, PromQL) of every target of every committed board."""
    return [(board["title"], panel["title"], target["expr"]) for board in COMMITTED.values()
            for panel in board["panels"] for target in panel["targets"]]


def test_the_committed_dashboards_are_what_the_spec_generates():
    generated = generate(SPEC_FILE)
    assert sorted(COMMITTED) == sorted(generated)
    for name, text in generated.items():
        assert (DASHBOARDS_DIR / name).read_text() == text, \
            f"deploy/grafana/{name} is stale: run .venv/bin/python -m sap_llm_release.operations.dashboards"


def test_the_five_boards_of_the_checklist_read_the_datasource_variable():
    titles = {board["title"] for board in COMMITTED.values()}
    assert titles == {"SAP_LLM pipeline performance", "SAP_LLM model inference", "SAP_LLM resource utilisation",
                      "SAP_LLM business metrics", "SAP_LLM SLOs and error budgets"}
    for board in COMMITTED.values():
        assert board["templating"]["list"][0]["name"] == "datasource"
        assert [panel["id"] for panel in board["panels"]] == list(range(1, len(board["panels"]) + 1))
        for panel in board["panels"]:
            assert panel["datasource"] == DATASOURCE and panel["targets"], (board["title"], panel["title"])
            assert all(target["datasource"] == DATASOURCE and "$service" not in target["expr"]
                       for target in panel["targets"])


def test_the_cost_panel_prices_with_the_spec_costs():
    (cost,) = [expr for _, panel, expr in queries() if panel == "Cost per document (USD)"]
    assert cost.startswith('(count(up{job="sap-llm"} == 1) * 2.97 + 2.02055) / ')  # 1,475 USD a month / 730 h


def test_every_panel_returns_data_on_the_stack(local_stack):
    asked = [(board, panel, expr) for board, panel, expr in queries()
             if not any(metric in expr for metric in PRODUCTION_EXPORTERS)]
    assert len(queries()) - len(asked) == 2  # the GPU panels, on the DCGM exporter

    def empty() -> list[str]:
        return [f"{board} / {panel}: {expr}" for board, panel, expr in asked
                if not httpx.get(f"{local_stack.prometheus_url}/api/v1/query", params={"query": expr},
                                 timeout=5).json()["data"]["result"]]

    deadline = time.monotonic() + 40  # the SLO records come every 10 s, a rate needs two scrapes
    while (missing := empty()) and time.monotonic() < deadline:
        time.sleep(1)
    assert missing == []


@pytest.mark.parametrize("metric", PRODUCTION_EXPORTERS)
def test_production_only_panels_are_few_and_named(metric):
    assert sum(metric in expr for _, _, expr in queries()) == 1
