"""The release spec: every checklist item as a gate, the traffic plan, the SLOs and the profiles.

Loaded from YAML and validated with pydantic; an invalid spec raises :class:`SpecError` whose message names
the offending field (``gates.3.kind``, ``traffic.steps.1.weight`` ...).
"""

from __future__ import annotations

import enum
import hashlib
import re
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.functional_validators import BeforeValidator

from sap_llm_release.analysis.readiness import READY_CHECK
from sap_llm_release.analysis.significance import BadEventCounts
from sap_llm_release.audits.cost import CostModel
from sap_llm_release.audits.spec import Audits
from sap_llm_release.checks.registry import CHECK_KINDS
from sap_llm_release.durations import parse_duration
from sap_llm_release.evidence import Number, Threshold
from sap_llm_release.jobs.spec import InferenceJob
from sap_llm_release.operations.slo import ServiceLevels
from sap_llm_release.recovery.spec import DisasterRecovery
from sap_llm_release.templates import render, require_known_variables


class SpecError(ValueError):
    """A spec that cannot be used; the message names each offending field and its rule."""


class Phase(str, enum.Enum):
    """Checklist phases in the order a release runs them."""

    MODEL_VALIDATION = "model_validation"
    DATA_KNOWLEDGE_BASE = "data_knowledge_base"
    INFRASTRUCTURE = "infrastructure"
    SECURITY = "security"
    MONITORING = "monitoring"
    PREFLIGHT = "preflight"
    DEPLOY_GREEN = "deploy_green"
    SMOKE_GREEN = "smoke_green"
    TRAFFIC_SHIFT = "traffic_shift"
    POST_DEPLOYMENT = "post_deployment"
    DECOMMISSION_BLUE = "decommission_blue"


PRE_TRAFFIC_PHASES = (
    Phase.MODEL_VALIDATION,
    Phase.DATA_KNOWLEDGE_BASE,
    Phase.INFRASTRUCTURE,
    Phase.SECURITY,
    Phase.MONITORING,
    Phase.PREFLIGHT,
)
# Every gate of these phases must have a non-failed record before any traffic moves.
PHASES_BEFORE_TRAFFIC = (*PRE_TRAFFIC_PHASES, Phase.DEPLOY_GREEN, Phase.SMOKE_GREEN)

Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class FixForward(BaseModel):
    """A failed gate a release may still pass as a fix-forward (Google SRE's error-budget policy: a release that
    fixes what spends the budget), approved by one of ``approvers`` (Airflow users) named in the trigger form, who is
    not the requester; the gate's record keeps what was measured and names the approver."""

    model_config = ConfigDict(extra="forbid")

    approvers: list[str] = Field(min_length=1)

    def refusal(self, approver: str, requester: str) -> str | None:
        """Why ``approver`` may not approve a fix-forward of ``requester``'s release, or None when they may."""
        if approver not in self.approvers:
            return f"{approver!r} is not one of the gate's fix-forward approvers ({', '.join(self.approvers)})"
        if approver == requester:
            return f"{approver!r} is the requester, who may not approve their own fix-forward"
        return None


class Gate(BaseModel):
    """One checklist item: what is checked, how, and the bound it must meet."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{2,80}$")
    phase: Phase
    item: str = Field(min_length=3, description="the checklist line this gate proves")
    kind: str
    params: dict[str, Any] = Field(default_factory=dict)
    threshold: Threshold | None = None
    fix_forward: FixForward | None = None

    @field_validator("phase")
    @classmethod
    def _not_traffic(cls, phase: Phase) -> Phase:
        if phase is Phase.TRAFFIC_SHIFT:
            raise ValueError("traffic_shift is driven by traffic.steps and analysis.slos, not by gates")
        return phase

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in CHECK_KINDS:
            raise ValueError(f"unknown gate kind {kind!r}; known kinds: {', '.join(sorted(CHECK_KINDS))}")
        return kind

    @model_validator(mode="after")
    def _params_fit_kind(self) -> Gate:
        check = CHECK_KINDS[self.kind]
        try:
            check.Params.model_validate(self.params)
        except ValidationError as exc:
            raise ValueError(describe_errors(exc, prefix="params")) from None
        if check.needs_threshold and self.threshold is None:
            raise ValueError(f"kind {self.kind!r} needs a threshold")
        if not check.needs_threshold and self.threshold is not None:
            raise ValueError(f"kind {self.kind!r} takes no threshold")
        return self

    @property
    def check_params(self) -> BaseModel:
        return CHECK_KINDS[self.kind].Params.model_validate(self.params)


class TrafficStep(BaseModel):
    """Send ``weight`` percent to green, then watch the SLOs for ``window``."""

    model_config = ConfigDict(extra="forbid")

    weight: StrictInt = Field(ge=1, le=100)
    window: Duration

    @property
    def name(self) -> str:
        return f"step_{self.weight:03d}"


class RollbackRecovery(BaseModel):
    """Rollback steps 2-3 (checklist section 8): after a rollback, blue is watched for ``window`` on the analysis
    SLOs named in ``slos`` (on blue's slot, with its readiness), and the requests the router lost from the
    rollback's start until ``switch_grace`` after blue was verified are counted: more than ``max_lost_requests`` is
    a finding."""

    model_config = ConfigDict(extra="forbid")

    window: Duration = Field(default=timedelta(minutes=10))
    slos: list[str] = Field(default_factory=lambda: ["error_rate", "p95_latency"], min_length=1)
    switch_grace: Duration = Field(default=timedelta(seconds=5), description="requests still in flight when blue "
                                   "was verified are logged when they end")
    max_lost_requests: StrictInt = Field(default=0, ge=0)


class TrafficPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[TrafficStep] = Field(min_length=1)
    bake: Duration = Field(default=timedelta(0), description="after the last step, green is watched this long at "
                           "100 % with blue still up, so a regression rolls back by the router (0: no bake)")
    recovery: RollbackRecovery = Field(default_factory=RollbackRecovery)

    @field_validator("steps")
    @classmethod
    def _increasing_to_full(cls, steps: list[TrafficStep]) -> list[TrafficStep]:
        for index, (before, after) in enumerate(zip(steps, steps[1:], strict=False), start=1):
            if after.weight <= before.weight:
                raise ValueError(
                    f"weights must increase step by step: step {index} has {after.weight} after {before.weight}"
                )
        if steps[-1].weight != 100:
            raise ValueError(f"the last step must send 100 % to green, got {steps[-1].weight}")
        return steps


class NoDataPolicy(str, enum.Enum):
    """What an analysis check does when its query returns no sample.

    ``fail``: the check counts as a failure. ``inconclusive``: the check counts neither way, but a window in
    which an SLO never had data ends failed, so missing data never passes a step.
    """

    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


class SevereBound(Threshold):
    """An SLO's severe bound, judged only where the short window holds ``min_events`` events (``events``: a PromQL
    template counting what the SLO's value rests on over ``$rate_window``): one error among two requests is no
    evidence of a broken green."""

    events: str = Field(min_length=1)
    min_events: StrictInt = Field(ge=1)

    @field_validator("events")
    @classmethod
    def _template_names_known(cls, events: str) -> str:
        return require_known_variables(events, QUERY_VARIABLES)


class SLOCounts(BadEventCounts):
    """An SLO's :class:`BadEventCounts`, over ``$rate_window``: a check past the threshold whose counts are not
    significant is noise, not a failed check."""

    @field_validator("bad", "events")
    @classmethod
    def _template_names_known(cls, query: str) -> str:
        return require_known_variables(query, QUERY_VARIABLES)


class SLO(BaseModel):
    """A PromQL template (``$colour``, ``$rate_window``, ``$service``) and the bound its value must meet.
    ``severe``: a bound further out, on the same side, whose breach fails a window on the first check (an error rate
    ten times its threshold is no noise) where enough events back it; a value between the two still needs the
    analysis' ``failure_limit``. ``counts``: the bad events the value rests on, so that noise is told from a
    breach (:class:`SLOCounts`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{2,60}$")
    description: str = ""
    query: str = Field(min_length=1)
    threshold: Threshold
    severe: SevereBound | None = None
    counts: SLOCounts | None = None
    no_data: NoDataPolicy = NoDataPolicy.FAIL

    @model_validator(mode="after")
    def _severe_beyond_threshold(self) -> SLO:
        severe, threshold = self.severe, self.threshold
        if severe is None:
            return self
        side = {"<": "<", "<=": "<", ">": ">", ">=": ">"}
        if side.get(severe.op) is None or side.get(severe.op) != side.get(threshold.op):
            raise ValueError(f"severe: {severe} must bound the same side as the threshold {threshold} "
                             f"('<' or '>' kinds, not '==')")
        looser = severe.value >= threshold.value if side[threshold.op] == "<" else severe.value <= threshold.value
        if not looser:
            raise ValueError(f"severe: {severe} must lie beyond the threshold {threshold}, where only a worse value "
                             "breaches it")
        return self

    @field_validator("query")
    @classmethod
    def _template_names_known(cls, query: str) -> str:
        return require_known_variables(query, QUERY_VARIABLES)

    def render(self, **variables: str) -> str:
        return render(self.query, **variables)


QUERY_VARIABLES = {"colour", "rate_window", "service"}


class ClearBeforeTraffic(BaseModel):
    """No traffic moves into an incident already under way: before green is deployed and again right before the
    first shift, no series of ``alerts`` (a PromQL selector of Prometheus' ``ALERTS``) may be firing. The release
    waits for them to clear, asking every analysis interval, at most ``wait`` (real time under every profile: an
    alert holds as long as its rule says), then refuses naming them."""

    model_config = ConfigDict(extra="forbid")

    alerts: str = Field(min_length=1)
    wait: Duration

    @field_validator("alerts")
    @classmethod
    def _alerts_series(cls, alerts: str) -> str:
        if not alerts.lstrip().startswith("ALERTS"):
            raise ValueError("must select series of Prometheus' ALERTS metric, e.g. "
                             "'ALERTS{alertstate=\"firing\",severity=\"critical\"}'")
        return alerts


class Analysis(BaseModel):
    """How the SLOs are watched during each traffic window.

    A step fails as soon as ``failure_limit`` checks of any one SLO have failed (so ``failure_limit: 1`` fails on
    the first bad sample; Argo Rollouts' ``failureLimit: N`` corresponds to ``failure_limit: N + 1`` here).
    ``health``: green's own liveness (scrape target up, series fresh), checked every interval ahead of the SLOs
    and always under the ``fail`` no-data policy: a rate keeps a dead green's last samples for a whole rate window.
    """

    model_config = ConfigDict(extra="forbid")

    interval: Duration
    failure_limit: StrictInt = Field(ge=1)
    rate_window: str = Field(pattern=r"^\d+[smh]$")
    severe_rate_window: str | None = Field(default=None, pattern=r"^\d+[smh]$", description=(
        "the $rate_window an SLO's severe bound is judged over: the last few scrapes, where the breach shows "
        "first (a rate over fewer than two samples is no data, and no data judges nothing severe)"))
    health: list[SLO] = Field(min_length=1)
    slos: list[SLO] = Field(min_length=1)
    clear_before_traffic: ClearBeforeTraffic | None = None

    @field_validator("health")
    @classmethod
    def _health_without_data_fails(cls, health: list[SLO]) -> list[SLO]:
        lenient = [slo.name for slo in health if slo.no_data is not NoDataPolicy.FAIL]
        if lenient:
            raise ValueError(f"health checks {', '.join(lenient)}: no_data must be 'fail' (no data is a dead green)")
        return health

    @field_validator("slos")
    @classmethod
    def _unique_names(cls, slos: list[SLO]) -> list[SLO]:
        _require_unique([slo.name for slo in slos], "SLO")
        return slos

    @model_validator(mode="after")
    def _one_name_per_check(self) -> Analysis:
        names = [slo.name for slo in [*self.health, *self.slos]]
        if READY_CHECK in names:
            raise ValueError(f"SLO name {READY_CHECK!r} is the readiness probe's own")
        _require_unique(names, "SLO")
        return self


JOB_BUILTIN_VARIABLES = {"version", "blue_url", "green_url", "router_url"}
AUDIT_JOB_BUILTIN_VARIABLES = {"version"}  # the version serving now: the one last promoted


class Job(InferenceJob):
    """A release's inference job (``$name`` placeholders: the built-ins above and the profile's ``job_inputs``), run
    in its phase; ``job_result`` gates read its result JSON."""

    phase: Phase


SLACK_USER_ID = r"[UW][A-Z0-9]{2,30}"
# an Airflow user name as an auth manager's user ID: letters, digits, '.', '_', '@' and '-'
AirflowUser = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
SLACK_TEAM_ID = r"^T[A-Z0-9]{2,30}$"


class ApprovalPoint(str, enum.Enum):
    """Where a release waits for a person: before the first traffic shift (after the smoke tests on green), before
    sending 100 % to green, and before decommissioning blue."""

    FIRST_SHIFT = "first_shift"
    FULL_TRAFFIC = "full_traffic"
    DECOMMISSION_BLUE = "decommission_blue"


class Approval(BaseModel):
    """A person's go-ahead at one point of the release; no answer within ``timeout`` counts as a rejection."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{2,60}$")
    before: ApprovalPoint
    description: str = Field(min_length=3)
    approvers: list[str] = Field(default_factory=list, description="Slack user IDs allowed to answer")
    approver_group: str | None = Field(default=None, pattern=r"^S[A-Z0-9]{2,30}$",
                                       description="a Slack user group whose members may answer")
    timeout: Duration = timedelta(hours=1)

    @field_validator("approvers")
    @classmethod
    def _slack_user_ids(cls, approvers: list[str]) -> list[str]:
        for index, user in enumerate(approvers):
            if not re.fullmatch(SLACK_USER_ID, user):
                raise ValueError(f"{index}: {user!r} is not a Slack user ID (U... or W...)")
        return approvers

    @model_validator(mode="after")
    def _someone_may_answer(self) -> Approval:
        if not self.approvers and not self.approver_group:
            raise ValueError("approvers or approver_group: name who may answer")
        return self


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gate: str
    reason: str = Field(min_length=10)


class ScaledThreshold(BaseModel):
    """A gate held to a smaller bound under a profile (the rehearsal's stores hold rehearsal-sized data): still
    measured and recorded, with the reason next to the bound."""

    model_config = ConfigDict(extra="forbid")

    gate: str
    threshold: Threshold
    reason: str = Field(min_length=10)


class Profile(BaseModel):
    """Where and how fast a release runs: the target backends, the window scale, and the gates it waives or holds to
    a scaled bound."""

    model_config = ConfigDict(extra="forbid")

    target: Literal["local", "kubernetes"]
    window_scale: Number = Field(gt=0, le=1)
    analysis_interval: Duration | None = None
    rate_window: str | None = Field(default=None, pattern=r"^\d+[smh]$")
    severe_rate_window: str | None = Field(default=None, pattern=r"^\d+[smh]$")
    job_inputs: dict[str, str] = Field(default_factory=dict, description="values of the jobs' $placeholders")
    approval_timeout: Duration | None = Field(default=None, description="replaces every approval's timeout")
    attestation_timeout: Duration | None = Field(default=None, description="replaces the attestations' timeout")
    bake: Duration | None = Field(default=None, description="replaces the traffic plan's bake (a compressed "
                                  "rehearsal); the production profile may not shorten it")
    recovery_window: Duration | None = Field(default=None, description="replaces the window blue is watched after a "
                                             "rollback; the production profile may not shorten it")
    waivers: list[Waiver] = Field(default_factory=list)
    scaled_thresholds: list[ScaledThreshold] = Field(default_factory=list)

    @field_validator("job_inputs")
    @classmethod
    def _inputs_use_builtins(cls, inputs: dict[str, str]) -> dict[str, str]:
        for name, value in inputs.items():
            try:
                require_known_variables(value, JOB_BUILTIN_VARIABLES)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return inputs

    def job_variables(self, builtins: dict[str, str]) -> dict[str, str]:
        """The values of every job placeholder: the built-ins, and the inputs rendered with them."""
        return {**builtins, **{name: render(value, **builtins) for name, value in self.job_inputs.items()}}

    def waiver_for(self, gate: str) -> Waiver | None:
        return next((waiver for waiver in self.waivers if waiver.gate == gate), None)

    def scaled_threshold_for(self, gate: str) -> ScaledThreshold | None:
        return next((scaled for scaled in self.scaled_thresholds if scaled.gate == gate), None)


class ReleaseSpec(BaseModel):
    """The whole release: gates per checklist phase, the traffic plan, SLO analysis and profiles."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(pattern=r"^[a-z][a-z0-9-]{1,40}$")
    environments: list[str] = Field(min_length=1)
    gates: list[Gate] = Field(min_length=1)
    jobs: list[Job] = Field(default_factory=list)
    approvals: list[Approval] = Field(default_factory=list)
    slack_team: str | None = Field(default=None, pattern=SLACK_TEAM_ID, description="the Slack workspace (team ID) "
                                   "whose button clicks may answer approvals; a click from any other is refused")
    people: dict[str, str] = Field(
        default_factory=dict, description="Airflow user name -> Slack user ID: who triggered a release, in Slack")
    deadline: Duration = Field(default=timedelta(hours=12), description="a release still running after this is "
                               "stuck: on-call is paged")
    attesters: dict[str, list[AirflowUser]] = Field(
        default_factory=dict, description="attestation role -> the Airflow users who may confirm its items on the "
        "Required Actions page")
    attestation_timeout: Duration = Field(default=timedelta(hours=8), description="how long the attesters of a "
                                          "phase have to confirm its items; unconfirmed items fail their gates")
    traffic: TrafficPlan
    analysis: Analysis
    profiles: dict[str, Profile]
    audits: Audits | None = Field(default=None, description="the scheduled audits of the running service")
    contacts: dict[str, str] = Field(default_factory=dict, description="escalation contacts by role (the "
                                     "checklist's Emergency Contacts), named by the runbooks in docs/runbooks/")
    service_levels: ServiceLevels | None = Field(default=None, description="the service's SLOs: recording rules, "
                                                 "burn-rate alerts and error budgets are generated from them")
    costs: CostModel | None = Field(default=None, description="unit prices and usage queries (Appendix C) that "
                                    "the cost_per_document gate and audit checks price the service with")
    disaster_recovery: DisasterRecovery | None = Field(default=None, description="backups of the ledger and the "
                                                       "data stores, and the drill that restores them")

    @field_validator("gates")
    @classmethod
    def _unique_gates(cls, gates: list[Gate]) -> list[Gate]:
        _require_unique([gate.name for gate in gates], "gate")
        return gates

    @model_validator(mode="after")
    def _waivers_name_gates(self) -> ReleaseSpec:
        names = {gate.name for gate in self.gates}
        for profile_name, profile in self.profiles.items():
            for index, waiver in enumerate(profile.waivers):
                if waiver.gate not in names:
                    raise ValueError(
                        f"profiles.{profile_name}.waivers.{index}.gate: no gate named {waiver.gate!r}"
                    )
        if "production" in self.profiles and self.profiles["production"].waivers:
            raise ValueError("profiles.production.waivers: the production profile may not waive gates")
        production = self.profiles.get("production")
        if production and production.bake is not None and production.bake < self.traffic.bake:
            raise ValueError(f"profiles.production.bake: {production.bake} is shorter than traffic.bake "
                             f"({self.traffic.bake}): production bakes at least as long as the plan says")
        if production and production.recovery_window is not None \
                and production.recovery_window < self.traffic.recovery.window:
            raise ValueError(f"profiles.production.recovery_window: {production.recovery_window} is shorter than "
                             f"traffic.recovery.window ({self.traffic.recovery.window}): production watches blue at "
                             "least as long as the plan says")
        return self

    @model_validator(mode="after")
    def _recovery_names_slos(self) -> ReleaseSpec:
        names = [slo.name for slo in self.analysis.slos]
        for index, name in enumerate(self.traffic.recovery.slos):
            if name not in names:
                raise ValueError(f"traffic.recovery.slos.{index}: no SLO named {name!r} in analysis.slos "
                                 f"({', '.join(names)})")
        return self

    @model_validator(mode="after")
    def _scaled_thresholds_keep_direction(self) -> ReleaseSpec:
        gates = {gate.name: gate for gate in self.gates}
        for profile_name, profile in self.profiles.items():
            for index, scaled in enumerate(profile.scaled_thresholds):
                where = f"profiles.{profile_name}.scaled_thresholds.{index}"
                gate = gates.get(scaled.gate)
                if gate is None:
                    raise ValueError(f"{where}.gate: no gate named {scaled.gate!r}")
                if gate.threshold is None:
                    raise ValueError(f"{where}.gate: gate {scaled.gate!r} has no threshold to scale")
                if scaled.threshold.op != gate.threshold.op or scaled.threshold.unit != gate.threshold.unit:
                    raise ValueError(f"{where}.threshold: must keep the gate's operator and unit "
                                     f"({gate.threshold}); only the value may be scaled")
                if profile.waiver_for(scaled.gate):
                    raise ValueError(f"{where}.gate: {scaled.gate!r} is also waived; a gate is waived or scaled")
            _require_unique([scaled.gate for scaled in profile.scaled_thresholds], "scaled threshold")
        if "production" in self.profiles and self.profiles["production"].scaled_thresholds:
            raise ValueError("profiles.production.scaled_thresholds: the production profile holds every gate to the "
                             "spec's threshold")
        return self

    @model_validator(mode="after")
    def _jobs_resolve(self) -> ReleaseSpec:
        _require_unique([job.name for job in self.jobs], "job")
        jobs = {job.name: job for job in self.jobs}
        order = list(Phase)
        for index, gate in enumerate(self.gates):
            if gate.kind != "job_result":
                continue
            job = jobs.get(gate.params["job"])
            if job is None:
                raise ValueError(f"gates.{index}.params.job: no job named {gate.params['job']!r}")
            if order.index(job.phase) > order.index(gate.phase):
                raise ValueError(f"gates.{index}.params.job: job {job.name!r} runs in {job.phase.value}, "
                                 f"after the gate's phase {gate.phase.value}")
        audit_jobs = [(job, AUDIT_JOB_BUILTIN_VARIABLES) for audit in (self.audits.named() if self.audits else {})
                      .values() for job in audit.jobs]
        for profile_name, profile in self.profiles.items():
            for job, builtins in [(job, JOB_BUILTIN_VARIABLES) for job in self.jobs] + audit_jobs:
                missing = job.variables - builtins - set(profile.job_inputs)
                if missing:
                    raise ValueError(f"profiles.{profile_name}.job_inputs: job {job.name!r} needs {sorted(missing)}")
        return self

    @model_validator(mode="after")
    def _slo_series_name_service_levels(self) -> ReleaseSpec:
        """An ``slo_series`` check that reads an SLO names one of ``service_levels``."""
        names = [slo.name for slo in self.service_levels.slos] if self.service_levels else []
        for audit_name, audit in (self.audits.named() if self.audits else {}).items():
            for index, check in enumerate(audit.checks):
                slo = check.params.get("slo") if check.kind == "slo_series" else None
                if slo is not None and slo not in names:
                    raise ValueError(f"audits.{audit_name}.checks.{index}.params.slo: no SLO {slo!r} in "
                                     f"service_levels ({', '.join(names) or 'none'})")
        return self

    @model_validator(mode="after")
    def _accuracy_reviews_read_job_gates(self) -> ReleaseSpec:
        """A ``model_accuracy`` or ``accuracy_trend`` check names an audit's job and ``job_result`` gates of a release
        job that runs the same entrypoint (the same result document, so the same metrics)."""
        gates = {gate.name: gate for gate in self.gates}
        audits = self.audits.named() if self.audits else {}
        for audit_name, audit in audits.items():
            for index, check in enumerate(audit.checks):
                if check.kind not in ("model_accuracy", "accuracy_trend"):
                    continue
                where = f"audits.{audit_name}.checks.{index}.params"
                reviewing = audits.get(check.params.get("audit", audit_name))
                ours = next((job for job in reviewing.jobs if job.name == check.params["job"]), None) \
                    if reviewing else None
                if ours is None:
                    raise ValueError(f"{where}.job: no job {check.params['job']!r} in the "
                                     f"{check.params.get('audit', audit_name)} audit")
                for gate_name in check.params["gates"]:
                    gate = gates.get(gate_name)
                    if gate is None or gate.kind != "job_result":
                        raise ValueError(f"{where}.gates: {gate_name!r} is not a job_result gate")
                    theirs = self.job(gate.params["job"])
                    if (theirs.image, theirs.command) != (ours.image, ours.command):
                        raise ValueError(f"{where}.gates: gate {gate_name!r} reads job {theirs.name!r} ({theirs.image}"
                                         f" {theirs.command}), not a result of {ours.image} {ours.command}")
        return self

    @model_validator(mode="after")
    def _cost_checks_use_the_spec_costs(self) -> ReleaseSpec:
        """The release gate and the audits price the service with one model: the spec's ``costs``."""
        checks = [(f"gates.{index}", gate.kind, gate.params) for index, gate in enumerate(self.gates)]
        for audit_name, audit in (self.audits.named() if self.audits else {}).items():
            checks += [(f"audits.{audit_name}.checks.{index}", check.kind, check.params)
                       for index, check in enumerate(audit.checks)]
        expected = self.costs.model_dump() if self.costs else None
        for where, kind, params in checks:
            if kind not in ("cost_per_document", "right_sizing"):
                continue
            if expected is None:
                raise ValueError(f"{where}: a {kind} check needs the spec's costs section")
            if CostModel.model_validate(params["costs"]).model_dump() != expected:
                raise ValueError(f"{where}.params.costs: must be the spec's costs section (costs: *costs)")
        return self

    @field_validator("approvals")
    @classmethod
    def _one_approval_per_point(cls, approvals: list[Approval]) -> list[Approval]:
        _require_unique([approval.name for approval in approvals], "approval")
        _require_unique([approval.before.value for approval in approvals], "approval point")
        return approvals

    @model_validator(mode="after")
    def _approvals_name_their_workspace(self) -> ReleaseSpec:
        if self.approvals and self.slack_team is None:
            raise ValueError("slack_team: name the Slack workspace (team ID, T...) whose clicks may answer the "
                             "approvals")
        return self

    @model_validator(mode="after")
    def _attestation_roles_have_attesters(self) -> ReleaseSpec:
        for gate in self.gates:
            if gate.kind == "attestation" and not self.attesters.get(role := gate.params.get("role")):
                raise ValueError(f"attesters: no Airflow user may confirm {gate.name} (role {role!r}); name the "
                                 f"role's people under attesters")
        return self

    @field_validator("people")
    @classmethod
    def _people_have_slack_ids(cls, people: dict[str, str]) -> dict[str, str]:
        for user, slack_id in people.items():
            if not re.fullmatch(SLACK_USER_ID, slack_id):
                raise ValueError(f"{user}: {slack_id!r} is not a Slack user ID (U... or W...)")
        return people

    def approval(self, name: str) -> Approval:
        return _named(self.approvals, name, "approval")

    def approval_before(self, point: ApprovalPoint) -> Approval | None:
        return next((approval for approval in self.approvals if approval.before is point), None)

    def approval_timeout(self, approval: Approval, profile: str) -> timedelta:
        return self.profile(profile).approval_timeout or approval.timeout

    def attestation_timeout_for(self, profile: str) -> timedelta:
        return self.profile(profile).attestation_timeout or self.attestation_timeout

    def attestation_roles_in(self, phase: Phase) -> dict[str, list[Gate]]:
        """The phase's attestation gates by the role that confirms them, in the spec's order."""
        roles: dict[str, list[Gate]] = {}
        for gate in self.gates_in(phase):
            if gate.kind == "attestation":
                roles.setdefault(gate.params["role"], []).append(gate)
        return roles

    def jobs_in(self, phase: Phase) -> list[Job]:
        return [job for job in self.jobs if job.phase is phase]

    def job(self, name: str) -> Job:
        return _named(self.jobs, name, "job")

    def gates_in(self, phase: Phase) -> list[Gate]:
        return [gate for gate in self.gates if gate.phase is phase]

    def gate(self, name: str) -> Gate:
        return _named(self.gates, name, "gate")

    def profile(self, name: str) -> Profile:
        if name not in self.profiles:
            raise SpecError(f"profile: unknown profile {name!r}; known: {', '.join(sorted(self.profiles))}")
        return self.profiles[name]

    def step(self, weight: int) -> TrafficStep:
        for step in self.traffic.steps:
            if step.weight == weight:
                return step
        raise KeyError(f"no traffic step with weight {weight}")

    def window_for(self, step: TrafficStep, profile: str) -> timedelta:
        """The step's window under ``profile``, to the millisecond."""
        return timedelta(seconds=round(step.window.total_seconds() * self.profile(profile).window_scale, 3))

    def bake_window(self, profile: str) -> timedelta:
        """How long green is watched at 100 % before blue may go, under ``profile`` (zero: the plan has no bake)."""
        if not self.traffic.bake:
            return timedelta(0)
        chosen = self.profile(profile)
        if chosen.bake is not None:
            return chosen.bake
        return timedelta(seconds=round(self.traffic.bake.total_seconds() * chosen.window_scale, 3))

    def recovery_window(self, profile: str) -> timedelta:
        """How long blue is watched after a rollback under ``profile``."""
        chosen = self.profile(profile)
        if chosen.recovery_window is not None:
            return chosen.recovery_window
        return timedelta(seconds=round(self.traffic.recovery.window.total_seconds() * chosen.window_scale, 3))

    def analysis_interval(self, profile: str) -> timedelta:
        return self.profile(profile).analysis_interval or self.analysis.interval

    def rate_window(self, profile: str) -> str:
        return self.profile(profile).rate_window or self.analysis.rate_window

    def severe_rate_window(self, profile: str) -> str:
        """The window severe bounds are judged over (the rate window itself where the spec names none)."""
        return (self.profile(profile).severe_rate_window or self.analysis.severe_rate_window
                or self.rate_window(profile))

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def _named(items: list[Any], name: str, what: str) -> Any:
    """The item called ``name``; KeyError naming what was looked for."""
    for item in items:
        if item.name == name:
            return item
    raise KeyError(f"no {what} named {name!r}")


def _require_unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"duplicate {what} name {name!r}")
        seen.add(name)


def describe_errors(exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for error in exc.errors():
        location = ".".join(str(part) for part in ((prefix,) if prefix else ()) + tuple(error["loc"]))
        lines.append(f"{location or '<root>'}: {error['msg']}")
    return "; ".join(lines)


def parse_spec(data: Any, source: str = "<spec>") -> ReleaseSpec:
    """Validate a spec from already-parsed YAML/JSON data."""
    try:
        return ReleaseSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"invalid release spec {source}: {describe_errors(exc)}") from None


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses the spec ~7x faster


def load_spec(path: str | Path) -> ReleaseSpec:
    """Load and validate a release spec YAML file."""
    path = Path(path)
    try:
        data = yaml.load(path.read_text(), Loader=_YAML_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read release spec {path}: {exc}") from None
    return parse_spec(data, source=str(path))
