"""A person's go-ahead at one point of the release, on Airflow's human-in-the-loop operator: answerable on the
Required Actions page and from Slack (the callback plugin resolves the same HITL record), with a timeout that counts
as Reject. While green carries traffic the wait also watches green's SLOs, and a breach supersedes the approval."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.execution_time.hitl import upsert_hitl_detail
from airflow.sdk.timezone import utcnow

from operators.notifications import release_notifier, run_url
from operators.runtime import ReleaseRun, off_green_at_resume
from operators.triggers import ApprovalGuardTrigger
from sap_llm_release.approvals.decision import APPROVE, REJECT, Decision, approval_evidence, decision_of
from sap_llm_release.notify.slack import SlackMessage, approval_closed_text

DEFERRAL_GRACE = timedelta(minutes=5)
POKE_INTERVAL_S = 1.0


class ReleaseApprovalOperator(ApprovalOperator):
    """Ask for ``approval`` (a name in the spec); succeed only on an Approve by an allowed person other than the
    release's trigger. ``guard_weight`` is green's share of traffic while waiting: above 0 its SLOs are watched."""

    template_fields = ()
    ui_color = "#fef9e7"

    def __init__(self, *, spec_path: str, approval: str, guard_weight: int, **kwargs: Any) -> None:
        super().__init__(subject=f"Approve {approval}", defaults=REJECT, fail_on_reject=True,
                         execution_timeout=None, **kwargs)
        self.spec_path = spec_path
        self.approval = approval
        self.guard_weight = guard_weight

    def execute(self, context: Any) -> None:
        run = ReleaseRun(self.spec_path, context)
        spec, request = run.spec, run.request
        approval = spec.approval(self.approval)
        timeout = spec.approval_timeout(approval, request.profile)
        deadline = utcnow() + timeout
        evidence = approval_evidence(run.ledger, spec, run.release_id)
        approvers = ", ".join([*approval.approvers, *([approval.approver_group] if approval.approver_group else [])])
        self.subject = f"{spec.service} {request.version} to {request.environment}: {approval.description}?"
        self.body = "\n".join([
            *(f"- {line}" for line in evidence), "",
            f"Slack approvers: {approvers}; here, anyone who may act on this DAG's runs. The person who triggered "
            f"the release ({run.triggered_by}) may reject but not approve. No answer by "
            f"{deadline:%Y-%m-%d %H:%M:%S} UTC counts as {REJECT}.",
        ])
        upsert_hitl_detail(ti_id=context["task_instance"].id, options=self.options, subject=self.subject,
                           body=self.body, defaults=self.defaults, multiple=False, params={}, assigned_users=None)
        message = release_notifier(run).request_approval(
            approval.name, approval.description, request.version, evidence, run_url(context))
        run.ledger.record_approval_request(
            run.release_id, approval=approval.name, point=approval.before.value,
            map_index=context["task_instance"].map_index, slack_channel=message.channel if message else None,
            slack_ts=message.ts if message else None, evidence=evidence, deadline=deadline.isoformat(),
            writer=run.writer,
        )
        guard = run.green_slo_queries() if self.guard_weight > 0 else []
        self.log.info("waiting for %s until %s; watching %d SLOs on green meanwhile", approval.name, deadline,
                      len(guard))
        self.defer(
            trigger=ApprovalGuardTrigger(
                ti_id=context["task_instance"].id, options=self.options, params={}, defaults=self.defaults,
                timeout_datetime=deadline, poke_interval=POKE_INTERVAL_S, prometheus=run.prometheus.to_dict(),
                slos=[vars(slo) for slo in guard], failure_limit=spec.analysis.failure_limit,
                interval_s=spec.analysis_interval(request.profile).total_seconds(),
                ready_url=run.green_ready_url() if guard else "",
                emergency=run.emergency_access() if guard else None,
            ),
            method_name="execute_complete",
            timeout=timeout + DEFERRAL_GRACE,
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Record the decision, replace the Slack buttons with it, and fail unless it approved."""
        run = ReleaseRun(self.spec_path, context)
        decision = decision_of(event, run.triggered_by)
        checks = event.get("guard_checks") or []
        watched = max((check["checks"] for check in checks), default=0)
        detail = decision.detail + (f"; green's SLOs checked {watched} times while waiting" if watched else "")
        detail += _claim(run, self.approval, decision)
        run.ledger.record_approval(run.release_id, gate=self.approval, decision=decision.decision,
                                   decided_by=decision.decided_by, channel=decision.channel, detail=detail,
                                   writer=run.writer)
        if decision.decision == "superseded":
            self.log.info("traffic off green: %s", off_green_at_resume(run, event, event["superseded"]))
            run.ledger.record_slo_window(
                run.release_id, step=f"approval_{self.approval}", green_weight=self.guard_weight, verdict="failed",
                reason=event["superseded"], window_seconds=0.0, checks=checks, started_at=utcnow().isoformat(),
                writer=run.writer,
            )
        request = run.ledger.approval_request(run.release_id, self.approval)
        message = SlackMessage(request["slack_channel"], request["slack_ts"]) if request and request["slack_ts"] \
            else None
        release_notifier(run).close_approval(self.approval, message, _closing_text(self.approval, decision))
        if not decision.approved:
            raise AirflowFailException(f"approval {self.approval} {decision.decision}: {detail}")
        self.log.info("%s: %s", self.approval, detail)
        return {"decision": decision.decision, "decided_by": decision.decided_by, "chosen_options": [APPROVE]}


def _claim(run: ReleaseRun, approval: str, decision: Decision) -> str:
    """Claim the approval request for what Airflow delivered, so that a later Slack click is told what decided; a
    note for the record when another answer had claimed it (one Airflow did not take)."""
    claimed, claim = run.ledger.claim_approval(
        run.release_id, approval=approval, try_number=run.writer.try_number, decision=decision.decision,
        decided_by=decision.decided_by, channel=decision.channel, answer=decision.detail)
    if claimed or (claim["decision"], claim["decided_by"]) == (decision.decision, decision.decided_by):
        return ""
    return f"; {claim['decided_by']} had claimed it ({claim['decision']}), an answer Airflow did not take"


def _closing_text(approval: str, decision: Decision) -> str:
    return approval_closed_text(approval, decision.decision, decision.decided_by, decision.channel, decision.detail,
                                f"{utcnow():%Y-%m-%d %H:%M:%S} UTC")
