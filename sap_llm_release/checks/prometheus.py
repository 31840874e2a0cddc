"""A PromQL query held to a threshold; no data fails; a ratio past it whose bad-event counts are not significant is
noise, and passes saying so."""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import Field, field_validator

from sap_llm_release.analysis.provider import MetricsUnavailable
from sap_llm_release.analysis.significance import BadEventCounts
from sap_llm_release.checks.base import Check, CheckContext, CheckUnavailable, Params
from sap_llm_release.durations import parse_duration
from sap_llm_release.evidence import Evidence, Threshold, Verdict
from sap_llm_release.polling import poll_until
from sap_llm_release.templates import render, require_known_variables


class GateCounts(BadEventCounts):
    """A ratio gate's :class:`BadEventCounts`, templated like its query."""

    @field_validator("bad", "events")
    @classmethod
    def _template_names_known(cls, query: str) -> str:
        return require_known_variables(query, GATE_QUERY_VARIABLES)


class PrometheusQueryParams(Params):
    query: str = Field(
        min_length=1,
        description="PromQL; $service, $rate_window and the slots of $blue and $green (colour labels) are filled in",
    )
    wait_s: float = Field(default=0, ge=0, le=600, description="keep asking this long for the bound to be met")
    counts: GateCounts | None = Field(default=None, description=(
        "the bad events a ratio rests on: a value past the threshold they do not make significant passes as noise"))

    @field_validator("query")
    @classmethod
    def _template_names_known(cls, query: str) -> str:
        return require_known_variables(query, GATE_QUERY_VARIABLES)


GATE_QUERY_VARIABLES = {"service", "rate_window", "blue", "green"}


class PrometheusQuery(Check):
    """The query's value now, held to the threshold; with ``wait_s``, asked every second until it is met
    (for series that appear a scrape or two after a deployment)."""

    Params = PrometheusQueryParams

    def run(self, params: PrometheusQueryParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        variables = {"service": context.service, "rate_window": context.rate_window, **context.slots}
        promql = render(params.query, **variables)
        metrics = context.require("metrics")

        def measure() -> Evidence:
            try:
                evidence = Evidence.compare(metrics.query(promql), threshold, f"PromQL {promql}")
                if evidence.verdict is Verdict.FAILED and evidence.measured is not None and params.counts:
                    return _judged_on_counts(evidence, params.counts, metrics, variables)
                return evidence
            except MetricsUnavailable as exc:
                return Evidence.unmeasured(threshold, str(exc))

        return poll_until(measure, lambda evidence: evidence.verdict is Verdict.PASSED, timeout_s=params.wait_s,
                          interval_s=1.0)


def _judged_on_counts(breach: Evidence, counts: GateCounts, metrics, variables: dict[str, str]) -> Evidence:
    """The breach, or a pass where its bad-event counts are too few to call it one (the counts named either way);
    counts without data leave the breach standing."""
    counted = counts.judge(metrics.query(render(counts.bad, **variables)),
                           metrics.query(render(counts.events, **variables)))
    if counted is None:
        return replace(breach, detail=f"{breach.detail}; bad-event counts: no data")
    if counted.significant(counts.confidence):
        return replace(breach, detail=f"{breach.detail}; significant: {counted}")
    return replace(breach, verdict=Verdict.PASSED,
                   detail=f"{breach.detail}; within noise at {counts.confidence:g} confidence: {counted}")


class PrometheusFlagParams(Params):
    flag: str = Field(pattern=r"^[a-z0-9_.-]+$", description="e.g. storage.tsdb.retention.time")


class PrometheusFlag(Check):
    """A duration flag of the Prometheus server itself, measured in days (e.g. retention >= 30 days)."""

    Params = PrometheusFlagParams

    def run(self, params: PrometheusFlagParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        try:
            flags = context.require("metrics").flags()
        except MetricsUnavailable as exc:
            return Evidence.unmeasured(threshold, str(exc))
        raw = flags.get(params.flag)
        try:
            days = parse_duration(raw).total_seconds() / 86400
        except ValueError:
            return Evidence.unmeasured(threshold, f"flag {params.flag} is {raw!r}, not a duration")
        return Evidence.compare(round(days, 3), threshold, f"--{params.flag}={raw}")


class PrometheusRulesParams(Params):
    names: list[str] = Field(min_length=1, description="rules that must be loaded and healthy")
    type: Literal["alerting", "recording"] = "alerting"


class PrometheusRules(Check):
    """The named rules are loaded in Prometheus (``/api/v1/rules``) with the right type and health ``ok``;
    measured: how many are missing or unhealthy."""

    Params = PrometheusRulesParams

    def run(self, params: PrometheusRulesParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        try:
            loaded = context.require("metrics").rules()
        except MetricsUnavailable as exc:
            return Evidence.unmeasured(threshold, str(exc))
        found = {rule.get("name"): rule for rule in loaded if rule.get("type") == params.type}
        problems = []
        for name in params.names:
            rule = found.get(name)
            if rule is None:
                problems.append(f"{name} not loaded")
            elif rule.get("health") != "ok":
                problems.append(f"{name} health {rule.get('health')!r} ({rule.get('lastError') or 'no error text'})")
        healthy = len(params.names) - len(problems)
        detail = f"{healthy} of {len(params.names)} {params.type} rules loaded and healthy" + (
            f"; {'; '.join(problems)}" if problems else "")
        return Evidence.compare(len(problems), threshold, detail)


class PrometheusTargetsParams(Params):
    job: str = Field(min_length=1, description="scrape job; $service is filled in")
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="only targets with these labels; $blue / $green name the slots")


class PrometheusTargets(Check):
    """Every active scrape target of ``job`` (with ``labels``) is up (``/api/v1/targets``); measured: how many are
    not. A job with no such target fails: nothing is scraped."""

    Params = PrometheusTargetsParams

    def run(self, params: PrometheusTargetsParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        job = render(params.job, service=context.service)
        labels = {name: render(value, **context.slots) for name, value in params.labels.items()}
        try:
            targets = context.require("metrics").targets()
        except MetricsUnavailable as exc:
            return Evidence.unmeasured(threshold, str(exc))
        chosen = [t for t in targets if (t.get("labels") or {}).get("job") == job
                  and all((t.get("labels") or {}).get(k) == v for k, v in labels.items())]
        selector = ", ".join(f"{k}={v}" for k, v in {"job": job, **labels}.items())
        if not chosen:
            return Evidence.unmeasured(threshold, f"no active scrape target with {selector}")
        down = [t for t in chosen if t.get("health") != "up"]
        detail = f"{len(chosen) - len(down)} of {len(chosen)} targets with {selector} up" + "".join(
            f"; {t.get('scrapeUrl')} {t.get('health')}: {t.get('lastError') or 'no error text'}" for t in down)
        return Evidence.compare(len(down), threshold, detail)


class PrometheusReplicasParams(Params):
    timeout_s: float = Field(default=5.0, gt=0)


class PrometheusReplicas(Check):
    """High availability: how many of the configured Prometheus replicas answer ready and scrape every job the
    first one does (a replica that lost part of its configuration does not count). No replicas configured cannot be
    checked."""

    Params = PrometheusReplicasParams

    def run(self, params: PrometheusReplicasParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        from sap_llm_release.analysis.prometheus import PrometheusAccess, PrometheusProvider

        if not context.prometheus_replicas:
            raise CheckUnavailable("no Prometheus replicas are configured for this target")
        seen, expected_jobs, counted = [], None, 0
        # the replicas sit behind the same trust and credentials as the Prometheus the release reads
        access = context.metrics.access if isinstance(context.metrics, PrometheusProvider) else PrometheusAccess("")
        for url in context.prometheus_replicas:
            replica = PrometheusProvider(access.at(url), timeout_s=params.timeout_s)
            try:
                replica.ready()
                jobs = {(target.get("labels") or {}).get("job") for target in replica.targets()}
            except MetricsUnavailable as exc:
                seen.append(str(exc))
                continue
            if not jobs:
                seen.append(f"{url} ready but scrapes nothing")
                continue
            expected_jobs = jobs if expected_jobs is None else expected_jobs
            if missing := sorted(str(job) for job in expected_jobs - jobs):
                seen.append(f"{url} ready but scrapes no {', '.join(missing)}")
                continue
            counted += 1
            seen.append(f"{url} ready, scraping {len(jobs)} jobs")
        detail = f"{counted} of {len(context.prometheus_replicas)} replicas ready and scraping: " + "; ".join(seen)
        return Evidence.compare(counted, threshold, detail)
