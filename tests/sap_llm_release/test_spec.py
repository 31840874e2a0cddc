"""The release spec: the real checklist loads with its bounds, and every kind of invalid spec names its field."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sap_llm_release.evidence import Threshold
from sap_llm_release.spec import PRE_TRAFFIC_PHASES, ApprovalPoint, Phase, SpecError, load_spec, parse_spec

# Checklist sections 1-8 and the phases their items are gates of.
CHECKLIST_SECTIONS = {
    1: [Phase.MODEL_VALIDATION],
    2: [Phase.DATA_KNOWLEDGE_BASE],
    3: [Phase.INFRASTRUCTURE],
    4: [Phase.SECURITY],
    5: [Phase.MONITORING],
    6: [Phase.PREFLIGHT],
    7: [Phase.DEPLOY_GREEN, Phase.SMOKE_GREEN],
    8: [Phase.POST_DEPLOYMENT],
}


# -- the real spec -------------------------------------------------------------------------------------------------


def test_real_spec_loads_all_gates(spec):
    assert spec.service == "sap-llm"
    assert spec.environments == ["production", "staging", "rehearsal"]
    assert len(spec.gates) == 122
    assert len({gate.name for gate in spec.gates}) == 122
    assert sorted(spec.profiles) == ["production", "rehearsal"]


@pytest.mark.parametrize("section", sorted(CHECKLIST_SECTIONS))
def test_every_checklist_section_has_gates(spec, section):
    for phase in CHECKLIST_SECTIONS[section]:
        assert spec.gates_in(phase), f"section {section}: no gate in phase {phase.value}"


def test_gates_cover_only_gate_phases(spec):
    assert spec.gates_in(Phase.TRAFFIC_SHIFT) == []
    assert [gate.name for gate in spec.gates_in(Phase.DECOMMISSION_BLUE)] == ["blue_has_no_traffic"]
    assert PRE_TRAFFIC_PHASES[0] is Phase.MODEL_VALIDATION and PRE_TRAFFIC_PHASES[-1] is Phase.PREFLIGHT


@pytest.mark.parametrize(
    ("gate", "op", "value"),
    [
        ("vision_encoder_classification_accuracy", ">=", 0.95),
        ("vision_encoder_field_extraction_f1", ">=", 0.94),
        ("language_decoder_json_schema_compliance", ">=", 0.99),
        ("reasoning_engine_routing_accuracy", ">=", 0.97),
        ("reasoning_engine_api_selection_accuracy", ">=", 1.0),
        ("vision_encoder_training_documents", ">=", 1_000_000),
        ("training_data_documents", ">=", 1_000_000),
        ("knowledge_base_apis", ">=", 400),
        ("process_memory_graph_documents", ">=", 100_000),
        ("k8s_gpu_nodes", ">=", 2),
        ("k8s_storage", ">=", 2_000_000_000_000),
        ("load_test_p95_latency", "<", 1.5),
        ("load_test_memory_per_pod", "<", 64),
        ("dr_rto", "<", 60),
        ("dr_rpo", "<", 5),
    ],
)
def test_checklist_thresholds(spec, gate, op, value):
    threshold = spec.gate(gate).threshold
    assert (threshold.op, threshold.value) == (op, value)


def test_threshold_units_and_kinds(spec):
    assert spec.gate("load_test_memory_per_pod").threshold == Threshold(op="<", value=64, unit="GiB")
    assert spec.gate("dr_rto").threshold == Threshold(op="<", value=60, unit="min")
    assert spec.gate("dr_rpo").threshold == Threshold(op="<", value=5, unit="min")
    assert spec.gate("k8s_storage").threshold.unit == "bytes"
    accuracy = spec.gate("vision_encoder_classification_accuracy")
    assert (accuracy.kind, accuracy.phase) == ("job_result", Phase.MODEL_VALIDATION)
    params = accuracy.check_params
    assert (params.job, params.metric) == ("model_evaluation", "vision_encoder.classification_accuracy")
    assert spec.gate("reasoning_engine_chain_of_thought_quality").threshold is None


def test_gate_lookup_of_unknown_name_raises(spec):
    with pytest.raises(KeyError, match="no gate named 'nope'"):
        spec.gate("nope")


def test_traffic_steps_and_windows(spec):
    steps = spec.traffic.steps
    assert [step.weight for step in steps] == [5, 20, 50, 100]
    assert [step.window for step in steps] == [
        timedelta(minutes=30),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=4),
    ]
    assert [step.name for step in steps] == ["step_005", "step_020", "step_050", "step_100"]
    assert spec.step(50).window == timedelta(hours=2)
    with pytest.raises(KeyError, match="weight 30"):
        spec.step(30)


def test_rehearsal_window_scale(spec):
    windows = [spec.window_for(step, "rehearsal").total_seconds() for step in spec.traffic.steps]
    assert windows == [4.0, 8.0, 16.0, 32.0]
    production = [spec.window_for(step, "production") for step in spec.traffic.steps]
    assert production == [step.window for step in spec.traffic.steps]


def test_analysis_settings_per_profile(spec):
    assert spec.analysis.failure_limit == 2
    assert spec.analysis_interval("production") == timedelta(minutes=1)
    assert spec.analysis_interval("rehearsal") == timedelta(seconds=2)
    assert spec.rate_window("production") == "5m"
    assert spec.rate_window("rehearsal") == "10s"
    assert [slo.name for slo in spec.analysis.slos] == ["error_rate", "p95_latency", "throughput", "critical_alerts"]
    rendered = spec.analysis.slos[0].render(colour="green", rate_window="10s", service="sap-llm")
    assert 'colour="green"' in rendered and "[10s]" in rendered and "$" not in rendered


def test_unknown_profile_names_field(spec):
    with pytest.raises(SpecError, match="profile: unknown profile 'staging'"):
        spec.window_for(spec.traffic.steps[0], "staging")


def test_rehearsal_waivers_name_existing_gates_with_reasons(spec):
    waivers = spec.profile("rehearsal").waivers
    assert waivers
    names = {gate.name for gate in spec.gates}
    for waiver in waivers:
        assert waiver.gate in names
        assert len(waiver.reason) >= 10
    assert len({waiver.gate for waiver in waivers}) == len(waivers)
    assert spec.profile("rehearsal").waiver_for("weights_language_decoder") is not None
    # what the local stack can check is never waived: the model the rehearsal trains is evaluated for real
    for gate in ("smoke_documents", "smoke_health", "traffic_routing_configured", "prometheus_retention_30d",
                 "vision_encoder_classification_accuracy", "language_decoder_json_schema_compliance",
                 "weights_checksums", "load_test_throughput", "load_test_p95_latency"):
        assert spec.profile("rehearsal").waiver_for(gate) is None


def test_production_profile_waives_nothing(spec):
    production = spec.profile("production")
    assert production.waivers == []
    assert all(production.waiver_for(gate.name) is None for gate in spec.gates)
    assert production.target == "kubernetes" and production.window_scale == 1


def test_digest_is_stable(spec, spec_data):
    assert spec.digest == parse_spec(spec_data).digest
    assert len(spec.digest) == 16
    spec_data["traffic"]["steps"][0]["window"] = "31m"
    assert parse_spec(spec_data).digest != spec.digest


# -- invalid specs -------------------------------------------------------------------------------------------------


def _error(data) -> str:
    with pytest.raises(SpecError) as excinfo:
        parse_spec(data)
    return str(excinfo.value)


def test_unknown_gate_kind(spec_data):
    spec_data["gates"][3]["kind"] = "magic"
    assert "gates.3.kind: Value error, unknown gate kind 'magic'" in _error(spec_data)


def test_clear_before_traffic_selects_alerts(spec, spec_data):
    clear = spec.analysis.clear_before_traffic
    assert clear.alerts == 'ALERTS{alertstate="firing",severity="critical"}' and clear.wait == timedelta(minutes=3)
    spec_data["analysis"]["clear_before_traffic"]["alerts"] = 'up{job="sap-llm"} == 0'
    assert "analysis.clear_before_traffic.alerts: Value error, must select series of Prometheus' ALERTS metric" \
        in _error(spec_data)


def test_the_error_rate_fails_a_window_at_once_at_25_times_its_threshold(spec):
    error_rate = next(slo for slo in spec.analysis.slos if slo.name == "error_rate")
    assert (str(error_rate.threshold), str(error_rate.severe), error_rate.severe.min_events) == ("< 0.01", "< 0.25", 8)
    assert (spec.severe_rate_window("production"), spec.severe_rate_window("rehearsal")) == ("1m", "3s")


@pytest.mark.parametrize("severe, message", [
    ({"op": ">", "value": 0.5}, "severe: > 0.5 must bound the same side as the threshold < 0.01"),
    ({"op": "<", "value": 0.005}, "severe: < 0.005 must lie beyond the threshold < 0.01"),
    ({"min_events": 0}, "severe.min_events: Input should be greater than or equal to 1"),
    ({"events": "sum(x[$window])"}, "severe.events: Value error"),
])
def test_a_severe_bound_lies_beyond_its_threshold_on_the_same_side_and_counts_its_events(spec_data, severe, message):
    slo = next(slo for slo in spec_data["analysis"]["slos"] if slo["name"] == "error_rate")
    slo["severe"] = {**slo["severe"], **severe}
    assert message in _error(spec_data)


def test_the_error_rate_and_latency_tell_noise_from_a_breach_by_their_counts(spec):
    counted = {slo.name: (slo.counts.share, slo.counts.confidence) for slo in spec.analysis.slos if slo.counts}
    assert counted == {"error_rate": (0.01, 0.99), "p95_latency": (0.05, 0.99)}


@pytest.mark.parametrize("counts, message", [
    ({"share": 0}, "counts.share: Input should be greater than 0"),
    ({"share": 1.5}, "counts.share: Input should be less than 1"),
    ({"confidence": 0.4}, "counts.confidence: Input should be greater than or equal to 0.5"),
    ({"confidence": 1}, "counts.confidence: Input should be less than 1"),
    ({"bad": "sum(increase(x[$window]))"}, "counts.bad: Value error"),
    ({"events": ""}, "counts.events: String should have at least 1 character"),
])
def test_an_slos_counts_name_known_templates_a_share_and_a_confidence(spec_data, counts, message):
    slo = next(slo for slo in spec_data["analysis"]["slos"] if slo["name"] == "error_rate")
    slo["counts"] = {**slo["counts"], **counts}
    assert message in _error(spec_data)


def test_weights_not_increasing(spec_data):
    spec_data["traffic"]["steps"][1]["weight"] = 5
    assert "traffic.steps: Value error, weights must increase step by step: step 1 has 5 after 5" in _error(spec_data)


def test_weight_above_100(spec_data):
    spec_data["traffic"]["steps"][3]["weight"] = 101
    assert "traffic.steps.3.weight: Input should be less than or equal to 100" in _error(spec_data)


def test_weight_below_1(spec_data):
    spec_data["traffic"]["steps"][0]["weight"] = 0
    assert "traffic.steps.0.weight: Input should be greater than or equal to 1" in _error(spec_data)


def test_last_step_not_100(spec_data):
    spec_data["traffic"]["steps"].pop()
    assert "traffic.steps: Value error, the last step must send 100 % to green, got 50" in _error(spec_data)


@pytest.mark.parametrize("window", ["0m", 0, -5])
def test_window_not_positive(spec_data, window):
    spec_data["traffic"]["steps"][0]["window"] = window
    assert "traffic.steps.0.window: Value error, must be greater than 0" in _error(spec_data)


@pytest.mark.parametrize("window", ["soon", "30 minutes", "", "1h30m"])
def test_window_malformed(spec_data, window):
    spec_data["traffic"]["steps"][0]["window"] = window
    assert "traffic.steps.0.window: Value error, must be a duration like" in _error(spec_data)


def test_threshold_value_string(spec_data):
    spec_data["gates"][1]["threshold"]["value"] = "0.95"
    assert "gates.1.threshold.value" in _error(spec_data)


def test_threshold_unknown_operator(spec_data):
    spec_data["gates"][1]["threshold"]["op"] = "=>"
    assert "gates.1.threshold.op" in _error(spec_data)


def test_unknown_params_for_kind(spec_data):
    spec_data["gates"][0]["params"]["bogus"] = 1
    assert "gates.0: Value error, params.bogus: Extra inputs are not permitted" in _error(spec_data)


def test_params_of_wrong_shape_for_kind(spec_data):
    spec_data["gates"][0]["params"] = {"job": "model_evaluation"}  # job_result without its metric
    assert "gates.0: Value error, params.metric: Field required" in _error(spec_data)


def test_missing_threshold_for_kind_that_needs_one(spec_data):
    del spec_data["gates"][0]["threshold"]
    assert "gates.0: Value error, kind 'job_result' needs a threshold" in _error(spec_data)


def test_threshold_for_kind_that_takes_none(spec_data):
    index = next(i for i, gate in enumerate(spec_data["gates"]) if gate["kind"] == "attestation")
    spec_data["gates"][index]["threshold"] = {"op": ">=", "value": 1}
    assert f"gates.{index}: Value error, kind 'attestation' takes no threshold" in _error(spec_data)


def test_waiver_for_unknown_gate(spec_data):
    waivers = spec_data["profiles"]["rehearsal"]["waivers"]
    waivers.append({"gate": "no_such_gate", "reason": "nothing to check here at all"})
    message = _error(spec_data)
    assert f"profiles.rehearsal.waivers.{len(waivers) - 1}.gate: no gate named 'no_such_gate'" in message


def test_waiver_reason_too_short(spec_data):
    spec_data["profiles"]["rehearsal"]["waivers"][0]["reason"] = "n/a"
    assert "profiles.rehearsal.waivers.0.reason" in _error(spec_data)


def test_waivers_in_production(spec_data):
    spec_data["profiles"]["production"]["waivers"] = [{"gate": "dr_rto", "reason": "we trust the last drill"}]
    assert "profiles.production.waivers: the production profile may not waive gates" in _error(spec_data)


def _scale(spec_data, **scaled) -> int:
    entries = spec_data["profiles"]["rehearsal"].setdefault("scaled_thresholds", [])
    entries.append({"reason": "the rehearsal store is smaller", **scaled})
    return len(entries) - 1


def test_scaled_threshold_for_unknown_gate(spec_data):
    index = _scale(spec_data, gate="no_such_gate", threshold={"op": ">=", "value": 1})
    assert f"profiles.rehearsal.scaled_thresholds.{index}.gate: no gate named 'no_such_gate'" in _error(spec_data)


def test_scaled_threshold_may_not_turn_the_bound_around(spec_data):
    index = _scale(spec_data, gate="process_memory_graph_documents", threshold={"op": "<=", "value": 100})
    assert (f"profiles.rehearsal.scaled_thresholds.{index}.threshold: must keep the gate's operator and unit "
            "(>= 100000)") in _error(spec_data)


def test_scaled_threshold_for_a_gate_without_one(spec_data):
    index = _scale(spec_data, gate="dr_runbook", threshold={"op": ">=", "value": 1})
    assert f"profiles.rehearsal.scaled_thresholds.{index}.gate: gate 'dr_runbook' has no threshold" in _error(spec_data)


def test_scaled_and_waived_at_once(spec_data):
    index = _scale(spec_data, gate="dr_rto", threshold={"op": "<", "value": 30, "unit": "min"})
    assert f"profiles.rehearsal.scaled_thresholds.{index}.gate: 'dr_rto' is also waived" in _error(spec_data)


def test_scaled_thresholds_in_production(spec_data):
    spec_data["profiles"]["production"]["scaled_thresholds"] = [
        {"gate": "knowledge_base_apis", "threshold": {"op": ">=", "value": 1}, "reason": "the store is young yet"}]
    assert "profiles.production.scaled_thresholds: the production profile holds every gate" in _error(spec_data)


def test_unknown_promql_template_variable(spec_data):
    spec_data["analysis"]["slos"][0]["query"] = 'sum(up{namespace="$namespace"})'
    assert "analysis.slos.0.query: Value error, unknown template variables ['namespace']" in _error(spec_data)


def test_unknown_template_variable_in_gate_query(spec_data):
    index = next(i for i, gate in enumerate(spec_data["gates"]) if gate["kind"] == "prometheus_query")
    spec_data["gates"][index]["params"]["query"] = 'min(up{job="$service",colour="$colour"})'
    message = _error(spec_data)
    assert f"gates.{index}: Value error, params.query" in message
    assert "unknown template variables ['colour']" in message


def test_duplicate_gate_names(spec_data):
    spec_data["gates"][1]["name"] = spec_data["gates"][0]["name"]
    assert "gates: Value error, duplicate gate name 'vision_encoder_training_documents'" in _error(spec_data)


def test_duplicate_slo_names(spec_data):
    spec_data["analysis"]["slos"][1]["name"] = "error_rate"
    assert "analysis.slos: Value error, duplicate SLO name 'error_rate'" in _error(spec_data)


def test_green_health_is_checked_with_the_slos(spec):
    health = spec.analysis.health
    assert [slo.name for slo in health] == ["green_scraped", "green_fresh"]
    assert all(slo.no_data.value == "fail" for slo in health)
    assert health[0].render(colour="green", rate_window="10s", service="sap-llm") == (
        'min(up{job="sap-llm",colour="green"})')


def test_green_health_is_required(spec_data):
    spec_data["analysis"]["health"] = []
    assert "analysis.health: List should have at least 1 item" in _error(spec_data)


def test_green_health_without_data_must_fail(spec_data):
    spec_data["analysis"]["health"][1]["no_data"] = "inconclusive"
    assert ("analysis.health: Value error, health checks green_fresh: no_data must be 'fail'"
            in _error(spec_data))


def test_health_and_slo_names_are_one_namespace(spec_data):
    spec_data["analysis"]["health"][0]["name"] = "error_rate"
    assert "analysis: Value error, duplicate SLO name 'error_rate'" in _error(spec_data)
    spec_data["analysis"]["health"][0]["name"] = "green_ready"
    assert "analysis: Value error, SLO name 'green_ready' is the readiness probe's own" in _error(spec_data)


def test_gate_in_traffic_shift_phase(spec_data):
    spec_data["gates"][0]["phase"] = "traffic_shift"
    assert "gates.0.phase: Value error, traffic_shift is driven by traffic.steps" in _error(spec_data)


def test_unknown_top_level_field(spec_data):
    spec_data["rollout"] = {}
    assert "rollout: Extra inputs are not permitted" in _error(spec_data)


def test_window_scale_out_of_range(spec_data):
    spec_data["profiles"]["rehearsal"]["window_scale"] = 2
    assert "profiles.rehearsal.window_scale: Input should be less than or equal to 1" in _error(spec_data)


def test_error_names_the_source(tmp_path, spec_data):
    import yaml

    spec_data["gates"][3]["kind"] = "magic"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(spec_data))
    with pytest.raises(SpecError, match=rf"invalid release spec {path}: gates\.3\.kind"):
        load_spec(path)


def test_load_spec_unreadable_file(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(SpecError, match=f"cannot read release spec {missing}"):
        load_spec(missing)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("gates: [unclosed\n")
    with pytest.raises(SpecError, match=f"cannot read release spec {bad_yaml}"):
        load_spec(bad_yaml)


def test_jobs_and_the_gates_that_read_them(spec):
    assert [job.name for job in spec.jobs] == [
        "dataset_audit", "model_evaluation", "weights_verification", "green_smoke", "load_test"]
    readers = {gate.params["job"] for gate in spec.gates if gate.kind == "job_result"}
    assert readers == {job.name for job in spec.jobs}
    evaluation = spec.job("model_evaluation")
    assert (evaluation.image, evaluation.command, evaluation.gpus) == ("validator", "evaluate", 1)
    variables = spec.profile("production").job_variables(
        {"version": "2.0.0", "blue_url": "b", "green_url": "http://green", "router_url": "r"})
    assert evaluation.render_args(variables)[:2] == ["--artifacts", "/models/sap-llm/2.0.0"]
    assert spec.job("load_test").render_args(variables)[:2] == ["--url", "http://green"]
    assert spec.job("dataset_audit").render_args(variables)[:2] == ["--manifest", "/datasets/sap-llm/manifest.jsonl"]


def test_job_result_gate_must_name_a_job_that_runs_no_later(spec_data):
    spec_data["gates"][0]["params"]["job"] = "no_such_job"
    with pytest.raises(SpecError, match="gates.0.params.job: no job named 'no_such_job'"):
        parse_spec(spec_data)
    spec_data["gates"][0]["params"]["job"] = "load_test"
    with pytest.raises(SpecError, match="job 'load_test' runs in smoke_green, after the gate's phase model_validation"):
        parse_spec(spec_data)


def test_every_profile_gives_every_job_input(spec_data):
    del spec_data["profiles"]["rehearsal"]["job_inputs"]["heldout_set"]
    needs = r"profiles.rehearsal.job_inputs: job 'model_evaluation' needs \['heldout_set'\]"
    with pytest.raises(SpecError, match=needs):
        parse_spec(spec_data)


def test_job_inputs_may_use_only_the_builtins(spec_data):
    spec_data["profiles"]["production"]["job_inputs"]["test_set"] = "/data/$colour/test.jsonl"
    unknown = r"profiles.production.job_inputs: Value error, test_set: unknown template variables \[.colour.\]"
    with pytest.raises(SpecError, match=unknown):
        parse_spec(spec_data)


def test_approvals_name_who_may_answer_and_one_per_point(spec_data):
    spec_data["approvals"] = [{"name": "go_live", "before": "full_traffic", "description": "100 % to green",
                               "approvers": ["U0APPROVER"], "timeout": "30m"}]
    spec = parse_spec(spec_data)
    assert spec.approval("go_live").timeout == timedelta(minutes=30)
    spec_data["approvals"].append({"name": "again", "before": "full_traffic", "description": "twice",
                                   "approver_group": "S0RELEASE"})
    with pytest.raises(SpecError, match="duplicate approval point name 'full_traffic'"):
        parse_spec(spec_data)
    spec_data["approvals"][1:] = [{"name": "nobody", "before": "first_shift", "description": "no one"}]
    with pytest.raises(SpecError, match="approvals.1: Value error, approvers or approver_group"):
        parse_spec(spec_data)
    spec_data["approvals"][1:] = [{"name": "email", "before": "first_shift", "description": "x",
                                   "approvers": ["sam@example.com"]}]
    with pytest.raises(SpecError, match=r"approvals.1.approvers: Value error, 0: 'sam@example.com' is not a Slack"):
        parse_spec(spec_data)


def test_approvals_name_the_slack_workspace(spec, spec_data):
    assert spec.slack_team == "T0SAPLLM01"
    spec_data["slack_team"] = "sap-llm.slack.com"
    with pytest.raises(SpecError, match=r"slack_team: String should match pattern"):
        parse_spec(spec_data)
    del spec_data["slack_team"]
    with pytest.raises(SpecError, match=r"slack_team: name the Slack workspace \(team ID, T...\)"):
        parse_spec(spec_data)
    spec_data["approvals"] = []
    assert parse_spec(spec_data).slack_team is None  # no approval, no button to click


def test_approvals_one_per_point_with_people_for_four_eyes(spec):
    assert [(a.name, a.before.value) for a in spec.approvals] == [
        ("first_shift_go", "first_shift"), ("full_traffic_go", "full_traffic"),
        ("decommission_blue_go", "decommission_blue")]
    assert spec.approval_before(ApprovalPoint.FULL_TRAFFIC).approvers == ["U0RELMGR01"]
    assert spec.approval_timeout(spec.approval("full_traffic_go"), "production") == timedelta(hours=2)
    assert spec.approval_timeout(spec.approval("full_traffic_go"), "rehearsal") == timedelta(seconds=45)
    assert spec.people["dag_test"] == "U0DAGTEST1" and spec.deadline == timedelta(hours=14)


def test_people_must_map_to_slack_user_ids(spec_data):
    spec_data["people"] = {"alice": "alice@example.com"}
    assert "people: Value error, alice: 'alice@example.com' is not a Slack user ID" in _error(spec_data)


def test_two_approvals_at_one_point(spec_data):
    spec_data["approvals"][1]["before"] = "first_shift"
    assert "duplicate approval point name 'first_shift'" in _error(spec_data)


def test_an_approval_nobody_may_answer(spec_data):
    spec_data["approvals"][2]["approvers"] = []
    assert "approvers or approver_group: name who may answer" in _error(spec_data)
