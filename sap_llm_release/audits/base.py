"""What every audit check kind shares: the context it reads and the interface it implements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from sap_llm_release.checks.base import CheckContext, Params

if TYPE_CHECKING:
    from sap_llm_release.audits.model import Finding
    from sap_llm_release.audits.spec import AuditCheck


@dataclass
class AuditContext:
    """What an audit check may look at: the period it judges and the systems it asks. ``metrics`` answers range
    and instant queries (:class:`~sap_llm_release.analysis.prometheus.PrometheusProvider`); ``checks`` is the
    context the release's check kinds read; ``logs`` reads the service's logs on the target
    (:class:`~sap_llm_release.service_logs.base.LogSource`, the target's ``logs``)."""

    service: str
    period_start: datetime
    period_end: datetime
    step: timedelta
    metrics: Any = None
    checks: CheckContext | None = None
    logs: Any = None


class AuditKind:
    """One audit check kind: its ``Params``, whether it takes warning/critical bounds, whether it reads the
    target's systems (``needs_target``: the release checks' context and the service's logs), and ``run``."""

    Params: ClassVar[type[BaseModel]] = Params
    needs_threshold: ClassVar[bool] = True
    needs_target: ClassVar[bool] = False

    def run(self, check: AuditCheck, context: AuditContext) -> Finding:
        raise NotImplementedError
