"""What every audit check kind shares: the context it reads, the kind interface, and the helpers several kinds use
(the day a point belongs to, a check's bounds for a plot, the alerts that fired in a period)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, Field

from sap_llm_release.audits.model import Finding
from sap_llm_release.checks.base import CheckContext, CheckUnavailable, Params
from sap_llm_release.templates import render, require_known_variables

if TYPE_CHECKING:
    from sap_llm_release.audits.spec import AuditCheck

SERIES_VARIABLES = {"service", "step"}
# PromQL with $service and $step (the audit's step, e.g. for rate(...[$step])) to fill in
PromqlTemplate = Annotated[str, Field(min_length=1),
                           AfterValidator(lambda query: require_known_variables(query, SERIES_VARIABLES))]


@dataclass
class AuditContext:
    """What an audit check may look at: the period it judges and the systems it asks. ``metrics`` answers range
    and instant queries (:class:`~sap_llm_release.analysis.prometheus.PrometheusProvider`); ``checks`` is the
    context the release's check kinds read; ``logs`` reads the service's logs on the target
    (:class:`~sap_llm_release.service_logs.base.LogSource`, the target's ``logs``); ``ledger`` is the release ledger
    (:class:`~sap_llm_release.ledger.Ledger`); ``gates`` and ``approvals`` name the spec's gates and approvals and
    ``people`` maps an Airflow user to their Slack user (the spec's ``people``), for the release record's checks;
    ``run_id`` is the audit run's ledger id (its jobs' results are recorded under it), ``job_gates`` maps each
    ``job_result`` gate to its metric and threshold, for checks that judge an audit job's result as the gates do, and
    ``service_levels`` are the spec's SLOs."""

    service: str
    period_start: datetime
    period_end: datetime
    step: timedelta
    metrics: Any = None
    checks: CheckContext | None = None
    logs: Any = None
    ledger: Any = None
    gates: tuple[str, ...] = ()
    approvals: tuple[str, ...] = ()
    people: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    job_gates: dict[str, tuple[str, Any]] = field(default_factory=dict)
    service_levels: Any = None  # the spec's ServiceLevels (operations/slo.py): SLOs an slo_series check names

    @property
    def period(self) -> str:
        """The period as a PromQL duration (``604800s``)."""
        return f"{int((self.period_end - self.period_start).total_seconds())}s"

    def require_ledger(self) -> Any:
        """The ledger; :class:`CheckUnavailable` (no data) when the audit was given none."""
        if self.ledger is None:
            raise CheckUnavailable("no release ledger was given to the audit")
        return self.ledger

    def promql(self, template: str) -> str:
        """``template`` with ``$service`` and ``$step`` (the audit's step, e.g. ``3600s``) filled in."""
        return render(template, service=self.service, step=f"{int(self.step.total_seconds())}s")

    def one_series(self, check_name: str, template: str) -> tuple[str, list[tuple[float, float]]]:
        """The query over the period, one point per step: (the PromQL asked, its points); more than one series is
        a mistake in the spec."""
        promql = self.promql(template)
        found = self.metrics.query_range(promql, self.period_start + self.step, self.period_end, self.step)
        if len(found) > 1:
            raise ValueError(f"{check_name}: {promql!r} gives {len(found)} series; aggregate it to one")
        return promql, found[0][1] if found else []

    def increase_by_label(self, selector: str, label: str) -> tuple[str, dict[str | None, float]]:
        """How much the counters of ``selector`` grew over the period, summed by ``label``: (the PromQL asked,
        label value -> increase); a series without the label sums under None."""
        promql = f"sum by ({label}) (increase({self.promql(selector)}[{self.period}]))"
        found = self.metrics.query_vector(promql, self.period_end)
        return promql, {labels.get(label): value for labels, value in found}


class AuditKind:
    """One audit check kind: its ``Params``, whether it takes warning/critical bounds, whether it reads the
    target's systems (``needs_target``: the release checks' context and the service's logs), and ``run``."""

    Params: ClassVar[type[BaseModel]] = Params
    needs_threshold: ClassVar[bool] = True
    needs_target: ClassVar[bool] = False

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        raise NotImplementedError


def day_of(epoch_s: float, step: timedelta) -> date:
    """The day a point's window (the step before it) mostly lies in."""
    return datetime.fromtimestamp(epoch_s - step.total_seconds() / 2, timezone.utc).date()


def check_bounds(check: AuditCheck) -> dict[str, float]:
    """The check's warning and critical values, by name, for a plot."""
    return {name: float(bound.value) for name, bound in (("warning", check.warning), ("critical", check.critical))
            if bound is not None}


def utc_text(epoch_s: float) -> str:
    return f"{datetime.fromtimestamp(epoch_s, timezone.utc):%Y-%m-%d %H:%M} UTC"


@dataclass(frozen=True)
class FiredAlert:
    """One alert (name and labels) that fired in a period: its first and last firing sample and how long it fired."""

    key: str
    first_s: float
    last_s: float
    minutes: float


def fired_alerts(context: AuditContext, severity: str, resolution_s: int) -> list[FiredAlert]:
    """Every alert of ``severity`` that fired in the context's period (Prometheus's ``ALERTS``), first first."""
    selector = f'(ALERTS{{alertstate="firing",severity="{severity}"}} == 1)'
    window = f"[{context.period}:{resolution_s}s]"
    end = context.period_end

    def by_key(promql: str) -> dict[str, float]:
        return {_alert_key(labels): value for labels, value in context.metrics.query_vector(promql, end)}

    counts = by_key(f"count_over_time({selector}{window})")
    firsts = by_key(f"min_over_time(timestamp({selector}){window})")
    lasts = by_key(f"max_over_time(timestamp({selector}){window})")
    alerts = [FiredAlert(key, firsts.get(key, end.timestamp()), lasts.get(key, end.timestamp()),
                         count * resolution_s / 60) for key, count in counts.items()]
    return sorted(alerts, key=lambda alert: alert.first_s)


def _alert_key(labels: dict[str, str]) -> str:
    others = ", ".join(f"{name}={value}" for name, value in sorted(labels.items())
                       if name not in ("__name__", "alertname", "alertstate", "severity"))
    return f"{labels.get('alertname', '?')}" + (f" ({others})" if others else "")
