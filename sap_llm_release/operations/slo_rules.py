"""Prometheus rules generated from the spec's SLOs, as Sloth generates them: per SLO, the SLI (error ratio) recorded
at every window the alerts and the period need, the SLO's metadata (objective, error budget, burn rates, budget
remaining), and multi-window multi-burn-rate alerts that page (critical) and open a ticket (warning). The labels are
Sloth's (``sloth_service``, ``sloth_slo``, ``sloth_id``, ``sloth_window``), so dashboards made for Sloth read them.

    .venv/bin/python -m sap_llm_release.operations.slo_rules [--spec specs/sap_llm.yaml] [--out stack/slo_rules.yml]

The committed file is checked against what the spec generates by the test suite."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from sap_llm_release.operations.slo import BurnRateAlert, ServiceLevelObjective, ServiceLevels
from sap_llm_release.templates import render

ROOT = Path(__file__).resolve().parents[2]
RULES_FILE = ROOT / "stack" / "slo_rules.yml"
HEADER = ("# Generated from the spec's service_levels by `python -m sap_llm_release.operations.slo_rules`; "
          "do not edit.\n")


def promql_duration(window: timedelta) -> str:
    """``timedelta(days=30)`` -> ``30d``, ``timedelta(minutes=90)`` -> ``90m``: the largest unit that divides it."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _labels(service: str, slo: ServiceLevelObjective) -> dict[str, str]:
    return {"sloth_service": service, "sloth_slo": slo.name, "sloth_id": f"{service}-{slo.name}"}


def _selector(service: str, slo: ServiceLevelObjective) -> str:
    return f'{{sloth_id="{service}-{slo.name}", sloth_service="{service}", sloth_slo="{slo.name}"}}'


def sli_rules(service: str, slo: ServiceLevelObjective, levels: ServiceLevels) -> list[dict[str, Any]]:
    """The error ratio at each window. A ratio of rates is taken over each window but the period; the period's, and
    every longer window of an ``error_ratio`` SLI (a share of time), is the mean of the shortest window's recorded
    ratio over it (Sloth's way for the period: a 30-day rate is costly, the mean of recorded samples is not)."""
    rules, windows = [], levels.windows()
    shortest = promql_duration(windows[0])
    for window in windows:
        name = promql_duration(window)
        if _averaged(slo, levels, window):
            record = f"slo:sli_error:ratio_rate{shortest}{_selector(service, slo)}"
            expr = f"sum_over_time({record}[{name}])\n/ ignoring (sloth_window)\ncount_over_time({record}[{name}])"
        else:
            expr = _error_ratio(service, slo, name)
        rules.append({"record": f"slo:sli_error:ratio_rate{name}", "expr": expr,
                      "labels": {**_labels(service, slo), "sloth_window": name}})
    return rules


def _averaged(slo: ServiceLevelObjective, levels: ServiceLevels, window: timedelta) -> bool:
    """Whether the window's record averages the shortest window's (the period, and longer windows of a share of
    time) rather than taking a ratio of rates over it."""
    return window != levels.windows()[0] and (window == levels.period or slo.error_ratio is not None)


def _error_ratio(service: str, slo: ServiceLevelObjective, window: str) -> str:
    """The SLO's own definition of its error ratio over ``window`` (a PromQL duration)."""
    if slo.error_ratio is not None:
        return render(slo.error_ratio, service=service, window=window)
    return (f"({render(slo.errors, service=service, window=window)})\n/\n"
            f"({render(slo.total, service=service, window=window)})")


def sli_query(service: str, slo: ServiceLevelObjective, levels: ServiceLevels, window: timedelta) -> str:
    """The SLO's error ratio over ``window`` for readers other than the rules (the audits): its recording rule where
    the rules record that window as a ratio of rates, else (``or on()``: at a time the rule has no sample, as before
    the rules were loaded or in a backfilled history) the same definition evaluated in place."""
    defined = _error_ratio(service, slo, promql_duration(window)).replace("\n", " ")
    if window not in levels.windows() or _averaged(slo, levels, window):
        return defined
    return (f"slo:sli_error:ratio_rate{promql_duration(window)}{_selector(service, slo)} "
            f"or on() ({defined})")


def meta_rules(service: str, slo: ServiceLevelObjective, levels: ServiceLevels) -> list[dict[str, Any]]:
    """Objective, error budget, period, the current (shortest window) and period burn rates, budget remaining."""
    labels, selector = _labels(service, slo), _selector(service, slo)
    shortest, period = promql_duration(levels.windows()[0]), promql_duration(levels.period)
    budget = f"on (sloth_id, sloth_slo, sloth_service) group_left\nslo:error_budget:ratio{selector}"
    return [
        {"record": "slo:objective:ratio", "expr": f"vector({slo.objective:g})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({slo.error_budget:g})", "labels": labels},
        {"record": "slo:time_period:days", "expr": f"vector({levels.period / timedelta(days=1):g})",
         "labels": labels},
        {"record": "slo:current_burn_rate:ratio", "labels": labels,
         "expr": f"slo:sli_error:ratio_rate{shortest}{selector}\n/ {budget}"},
        {"record": "slo:period_burn_rate:ratio", "labels": labels,
         "expr": f"slo:sli_error:ratio_rate{period}{selector}\n/ {budget}"},
        {"record": "slo:period_error_budget_remaining:ratio", "labels": labels,
         "expr": f"1 - slo:period_burn_rate:ratio{selector}"},
    ]


def _burning(service: str, slo: ServiceLevelObjective, conditions: list[BurnRateAlert]) -> str:
    """Any condition's long and short windows both over its factor times the budget."""
    def over(window: timedelta, factor: float) -> str:
        return (f"max(slo:sli_error:ratio_rate{promql_duration(window)}{_selector(service, slo)} > "
                f"({factor:g} * {slo.error_budget:g})) without (sloth_window)")

    return "\nor\n".join(f"(\n  {over(c.short, c.factor)}\n  and\n  {over(c.long, c.factor)}\n)" for c in conditions)


def alert_rules(service: str, slo: ServiceLevelObjective, levels: ServiceLevels) -> list[dict[str, Any]]:
    """The page (critical) and ticket (warning) burn-rate alerts."""
    title = "".join(part.capitalize() for part in f"{service}_{slo.name}".replace("-", "_").split("_"))
    alerts = []
    for kind, severity, conditions, spent in (("Page", "critical", levels.page, "fast"),
                                              ("Ticket", "warning", levels.ticket, "slowly")):
        alerts.append({
            "alert": f"{title}ErrorBudgetBurn{kind}", "expr": _burning(service, slo, conditions),
            "labels": {"severity": severity, "sloth_severity": kind.lower(), **_labels(service, slo)},
            "annotations": {
                "summary": f"{service} {slo.name}: the {promql_duration(levels.period)} error budget burns {spent}",
                "description": f"{slo.description}: objective {slo.objective:.2%}; the error ratio is above the "
                               "burn rates of the spec's service_levels over a long and a short window",
                "runbook_url": levels.runbooks_url + slo.runbook,
            },
        })
    return alerts


def generate(service: str, levels: ServiceLevels) -> dict[str, Any]:
    """The rule groups: per SLO, its SLI recordings, its metadata and its alerts."""
    groups, interval = [], promql_duration(levels.evaluation_interval)
    for slo in levels.slos:
        groups += [
            {"name": f"sloth-slo-sli-recordings-{service}-{slo.name}", "interval": interval,
             "rules": sli_rules(service, slo, levels)},
            {"name": f"sloth-slo-meta-recordings-{service}-{slo.name}", "interval": interval,
             "rules": meta_rules(service, slo, levels)},
            {"name": f"sloth-slo-alerts-{service}-{slo.name}", "interval": interval,
             "rules": alert_rules(service, slo, levels)},
        ]
    return {"groups": groups}


class _Literal(str):
    """A multi-line expression, written as a YAML block so the file reads like hand-written rules."""


def _dump(rules: dict[str, Any]) -> str:
    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(_Literal, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text,
                                                                                  style="|"))

    def literal(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: literal(item) for key, item in value.items()}
        if isinstance(value, list):
            return [literal(item) for item in value]
        return _Literal(value) if isinstance(value, str) and "\n" in value else value

    return HEADER + yaml.dump(literal(rules), Dumper=Dumper, sort_keys=False, width=120)


def rules_text(spec_path: Path) -> str:
    """The rule file the spec at ``spec_path`` generates."""
    from sap_llm_release.spec import load_spec

    spec = load_spec(spec_path)
    if spec.service_levels is None:
        raise ValueError(f"{spec_path}: no service_levels section to generate rules from")
    return _dump(generate(spec.service, spec.service_levels))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "specs" / "sap_llm.yaml")
    parser.add_argument("--out", type=Path, default=RULES_FILE)
    args = parser.parse_args(argv)
    args.out.write_text(rules_text(args.spec))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
