"""The service's Grafana dashboards (checklist section 5) built in code with grafanalib, one JSON file each in
``deploy/grafana/``: pipeline performance, model inference, resource utilisation, business metrics (the cost per
document priced with the spec's cost model) and SLOs with their error budgets (the recording rules generated from
``service_levels``). Every panel reads the stack's Prometheus through a ``datasource`` variable.

    .venv/bin/python -m sap_llm_release.operations.dashboards [--spec specs/sap_llm.yaml] [--out deploy/grafana]

The committed files are checked against what the spec generates by the test suite, and every panel's PromQL is run
against the live local stack (panels on production exporters the stack cannot have are named in
``PRODUCTION_EXPORTERS``)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sap_llm_release.audits.cost import HOURS_PER_MONTH, CostModel
from sap_llm_release.templates import render

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = ROOT / "deploy" / "grafana"
DATASOURCE = "${datasource}"
# metric families only production has (no GPU on the local stack): their panels are not asked for data there
PRODUCTION_EXPORTERS = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED")


@dataclass(frozen=True)
class Panel:
    """One time-series panel: its title, unit and queries (legend -> PromQL with ``$service``)."""

    title: str
    unit: str
    queries: dict[str, str]
    description: str = ""


def _cost_per_document(costs: CostModel) -> str:
    """USD per document at the last hour's pace: GPU node hours of the running replicas and the monthly services
    prorated, over the documents of the hour (the audits' cost model, at one hour)."""
    monthly = sum(costs.monthly.model_dump().values()) / HOURS_PER_MONTH
    return (f'(count(up{{job="$service"}} == 1) * {costs.gpu_node_hour:g} + {monthly:.6g})'
            ' / (sum(rate(sap_llm_documents_processed_total{job="$service"}[1h])) * 3600)')


def panels(costs: CostModel | None) -> dict[str, tuple[str, list[Panel]]]:
    """Each dashboard's uid -> (title, panels)."""
    requests = 'sap_llm_requests_total{job="$service"}'
    documents = 'sap_llm_documents_processed_total{job="$service"}'
    buckets = 'sap_llm_request_duration_seconds_bucket{job="$service"}'
    business = [
        Panel("Documents processed (24 h)", "short", {"documents": f"sum(increase({documents}[24h]))"}),
        Panel("Touchless share", "percentunit", {"touchless": f'sum(rate(sap_llm_touchless_total{{job="$service"}}'
                                                              f'[5m])) / sum(rate({documents}[5m]))'}),
    ]
    if costs is not None:
        business.append(Panel("Cost per document (USD)", "currencyUSD", {"USD per document": _cost_per_document(costs)},
                              "the spec's costs (Appendix C) at the last hour's pace; target < 0.005"))
    return {
        "sap-llm-pipeline": ("SAP_LLM pipeline performance", [
            Panel("Documents per hour", "short", {"{{colour}}": f"sum by (colour) (rate({documents}[5m])) * 3600"},
                  "target: 5K documents an hour or more"),
            Panel("Requests per second by status", "reqps", {"{{status}}": f"sum by (status) (rate({requests}[5m]))"}),
            Panel("Error rate", "percentunit", {"{{colour}}": f'sum by (colour) (rate({requests[:-1]},status=~"5.."}}'
                                                             f'[5m])) / sum by (colour) (rate({requests}[5m]))'}),
            Panel("P95 latency", "s", {"{{colour}}": f"histogram_quantile(0.95, sum by (le, colour) "
                                                     f"(rate({buckets}[5m])))"}, "target: under 1.5 s"),
        ]),
        "sap-llm-model": ("SAP_LLM model inference", [
            Panel("Inference failures per minute", "short", {
                "{{colour}}": 'sum by (colour) (rate(sap_llm_model_inference_failures_total{job="$service"}[5m])) '
                              '* 60'}),
            Panel("Documents per hour by predicted type", "short", {
                "{{document_type}}": f"sum by (document_type) (rate({documents}[15m])) * 3600"}),
            Panel("Latency percentiles", "s", {
                f"p{q}": f"histogram_quantile(0.{q}, sum by (le) (rate({buckets}[5m])))" for q in (50, 95, 99)}),
        ]),
        "sap-llm-resources": ("SAP_LLM resource utilisation", [
            Panel("CPU (cores)", "short", {"{{colour}}": 'sum by (colour) (rate(process_cpu_seconds_total'
                                                         '{job="$service"}[5m]))'}),
            Panel("Resident memory", "bytes", {"{{colour}}": 'sum by (colour) (process_resident_memory_bytes'
                                                             '{job="$service"})'}),
            Panel("Instances answering", "short", {"{{colour}}": 'sum by (colour) (up{job="$service"})'}),
            Panel("GPU utilisation", "percent", {"{{gpu}} {{Hostname}}": "avg by (gpu, Hostname) "
                                                                        "(DCGM_FI_DEV_GPU_UTIL)"},
                  "DCGM exporter; the band to stay in is 60-80 %"),
            Panel("GPU memory used", "decmbytes", {"{{gpu}} {{Hostname}}": "avg by (gpu, Hostname) "
                                                                           "(DCGM_FI_DEV_FB_USED)"}),
        ]),
        "sap-llm-business": ("SAP_LLM business metrics", business),
        "sap-llm-slo": ("SAP_LLM SLOs and error budgets", [
            Panel("Error budget remaining (30 days)", "percentunit", {
                "{{sloth_slo}}": 'slo:period_error_budget_remaining:ratio{sloth_service="$service"}'}),
            Panel("Burn rate (5 minutes)", "short", {
                "{{sloth_slo}}": 'slo:current_burn_rate:ratio{sloth_service="$service"}'},
                  "1 spends the budget exactly over the period; the page fires at 14.4 and 6"),
            Panel("SLI error ratio (1 hour)", "percentunit", {
                "{{sloth_slo}}": 'slo:sli_error:ratio_rate1h{sloth_service="$service"}'}),
        ]),
    }


def build(uid: str, title: str, service: str, dashboard_panels: list[Panel]) -> dict[str, Any]:
    """The dashboard's JSON model (grafanalib), two panels a row."""
    from grafanalib._gen import DashboardEncoder
    from grafanalib.core import Dashboard, GridPos, Target, Template, Templating, TimeSeries

    built = [TimeSeries(
        title=panel.title, description=panel.description, dataSource=DATASOURCE, unit=panel.unit,
        gridPos=GridPos(h=8, w=12, x=12 * (index % 2), y=8 * (index // 2)),
        targets=[Target(expr=render(query, service=service), legendFormat=legend, refId=chr(ord("A") + number),
                        datasource=DATASOURCE)
                 for number, (legend, query) in enumerate(panel.queries.items())],
    ) for index, panel in enumerate(dashboard_panels)]
    dashboard = Dashboard(
        title=title, uid=uid, tags=["sap-llm"], timezone="utc", panels=built,
        templating=Templating(list=[Template(name="datasource", label="Prometheus", type="datasource",
                                             query="prometheus", default="Prometheus")]),
    ).auto_panel_ids()
    return json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))


def generate(spec_path: Path) -> dict[str, str]:
    """File name -> JSON text of every dashboard the spec at ``spec_path`` generates."""
    from sap_llm_release.spec import load_spec

    spec = load_spec(spec_path)
    return {f"{uid}.json": json.dumps(build(uid, title, spec.service, dashboard_panels), indent=2, sort_keys=True)
            + "\n" for uid, (title, dashboard_panels) in panels(spec.costs).items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "sap_llm.yaml")
    parser.add_argument("--out", type=Path, default=DASHBOARDS_DIR)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in generate(args.spec).items():
        (args.out / name).write_text(text)
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
