"""The attestations of one role asked on Airflow's Required Actions page (human in the loop): its items of some phases
not given in the trigger's conf, ticked by one of the role's attesters with a link each. Their attestation gates read
the answer (:class:`operators.release.GateOperator`); an unconfirmed item fails its gate."""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.timezone import utcnow

from operators.runtime import ReleaseRun
from sap_llm_release.approvals.attestations import AttestationAsk, answer_of, attestations_to_ask, unanswered
from sap_llm_release.spec import Phase


class AttestationRequestOperator(HITLOperator):
    """Ask ``role`` to confirm its items of ``phases`` not given with the trigger, and return what the answer
    confirmed (``{"confirmed": {gate: {by, link}}, "not_confirmed": {gate: why}}``). Nothing to ask, or a dry run:
    return at once without asking (a dry run's answer lists what it did not ask under ``not_asked``)."""

    template_fields = ()
    ui_color = "#fdebd0"

    def __init__(self, *, spec_path: str, phases: tuple[Phase, ...], role: str, items: list[str],
                 **kwargs: Any) -> None:
        super().__init__(subject=f"{role}: confirm your checklist items", options=items, multiple=True, **kwargs)
        self.spec_path = spec_path
        self.phases = phases
        self.role = role

    def _ask(self, run: ReleaseRun) -> AttestationAsk:
        return attestations_to_ask(run.spec, run.request, self.phases, self.role)

    def execute(self, context: Any) -> dict[str, Any] | None:
        run = ReleaseRun(self.spec_path, context)
        ask = self._ask(run)
        if not ask.gates or run.request.dry_run:
            self.log.info("nothing to ask the %s: %s", self.role, "a dry run asks no one" if ask.gates else
                          "every item was given with the trigger or is waived")
            return {"confirmed": {}, "not_confirmed": {}, "not_asked": [gate.name for gate in ask.gates]}
        timeout = run.spec.attestation_timeout_for(run.request.profile)
        self.options = ask.options
        self.subject = ask.subject(run.spec, run.request)
        self.body = ask.body(f"{utcnow() + timeout:%Y-%m-%d %H:%M:%S}")
        self.params = ParamsDict({name: Param(schema.pop("default"), **schema)
                                  for name, schema in ask.link_params().items()})
        self.assigned_users = [{"id": user, "name": user} for user in ask.attesters]
        self.response_timeout = timeout
        run.event("attestations_asked", f"{self.subject}: {', '.join(gate.name for gate in ask.gates)}; only "
                                        f"{', '.join(ask.attesters)} may answer")
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """What the answer confirmed; a timeout confirms nothing (the gates fail, naming why)."""
        run = ReleaseRun(self.spec_path, context)
        ask = self._ask(run)
        if "error" in event:
            answer = unanswered(ask, f"no answer from the {self.role} within "
                                     f"{run.spec.attestation_timeout_for(run.request.profile)}: {event['error']}")
        else:
            answer = answer_of(ask, list(event.get("chosen_options") or []), event.get("params_input") or {},
                               event.get("responded_by_user"))
        run.event("attestations_answered", f"{self.role}: confirmed {sorted(answer.confirmed) or 'none'}"
                                           + "".join(f"; {gate}: {why}" for gate, why in answer.not_confirmed.items()))
        return answer.to_dict()
