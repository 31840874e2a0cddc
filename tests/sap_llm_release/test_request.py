"""Release trigger parameters, validated against the model and the spec."""

from __future__ import annotations

import pytest

from sap_llm_release.request import (
    VERSION_PATTERN,
    RequestError,
    trigger_params_schema,
    validate_request,
    validate_requester,
)


def _params(**overrides):
    params = {"version": "2.0.0", "environment": "rehearsal", "profile": "rehearsal", "requested_by": "alice"}
    params.update(overrides)
    return params


def _error(params, spec) -> str:
    with pytest.raises(RequestError) as excinfo:
        validate_request(params, spec)
    return str(excinfo.value)


def test_valid_request(spec):
    request = validate_request(
        _params(attestations={"dr_runbook": {"by": "Sam SRE", "link": "https://wiki/dr-runbook"}}), spec
    )
    assert (request.version, request.environment, request.profile, request.requested_by) == (
        "2.0.0",
        "rehearsal",
        "rehearsal",
        "alice",
    )
    assert request.attestations["dr_runbook"].by == "Sam SRE"
    assert request.attestations["dr_runbook"].link == "https://wiki/dr-runbook"


def test_production_request(spec):
    request = validate_request(_params(environment="production", profile="production", version="2.1.0-rc.1"), spec)
    assert request.version == "2.1.0-rc.1"
    assert request.attestations == {}


FIX_FORWARD = {"by": "sre-lead", "link": "https://incidents.example.com/INC-42"}


def test_a_fix_forward_names_an_approver_of_a_gate_that_allows_one(spec):
    request = validate_request(_params(fix_forward={"error_budget_remaining": FIX_FORWARD}), spec)
    assert request.fix_forward["error_budget_remaining"].by == "sre-lead"


@pytest.mark.parametrize("fix_forward, requested_by, problem", [
    ({"smoke_health": FIX_FORWARD}, "alice",
     "fix_forward.smoke_health: the spec lets no gate of that name pass as a fix-forward"),
    ({"error_budget_remaining": {**FIX_FORWARD, "by": "mallory"}}, "alice",
     "fix_forward.error_budget_remaining.by: 'mallory' is not one of the gate's fix-forward approvers (sre-lead, "
     "head-of-ml-engineering)"),
    ({"error_budget_remaining": FIX_FORWARD}, "sre-lead",
     "fix_forward.error_budget_remaining.by: 'sre-lead' is the requester, who may not approve their own "
     "fix-forward"),
])
def test_a_fix_forward_the_spec_does_not_allow_is_refused_naming_the_field(spec, fix_forward, requested_by, problem):
    assert problem in _error(_params(fix_forward=fix_forward, requested_by=requested_by), spec)


def test_missing_version(spec):
    params = _params()
    del params["version"]
    assert "version: Field required" in _error(params, spec)


@pytest.mark.parametrize("version", [
    "1.0", "v1.0.0", "1.0.0 ", "latest", "1.0.0-", "1.0.0\n", "01.0.0", "1.02.0", "1.0.0-01", "1.0.0-rc-",
    "1.0.0-rc..1", "1.0.0+build.5",
    "１.０.０",  # full-width digits
    "1.٠.0",  # Arabic-Indic digit zero
    "1.0.০",  # Bengali digit zero
])
def test_bad_version(spec, version):
    assert "version: Value error, must be an ASCII semantic version" in _error(_params(version=version), spec)


@pytest.mark.parametrize("version", ["0.0.0", "10.20.30", "1.0.0-rc.1", "1.0.0-0a", "1.0.0-x-y.7", "1.0.0--1"])
def test_good_versions(spec, version):
    assert validate_request(_params(version=version), spec).version == version


def test_a_version_longer_than_a_kubernetes_label_is_refused(spec):
    version = "1.0.0-" + "a" * 57
    assert len(version) == 63 and validate_request(_params(version=version), spec).version == version
    assert "version: String should have at most 63 characters" in _error(_params(version=version + "a"), spec)


@pytest.mark.parametrize("name, rule", [
    ("alice\nINFO forged log line", "control character U+000A at position 5"),
    ("alice\rbob", "control character U+000D"),
    ("al\x00ice", "control character U+0000"),
    ("alice\u2028bob", "line separator character U+2028"),
    ("alice\u202ebob", "format character U+202E"),
    ("   ", "must not be blank"),
    (" alice", "must not start or end with whitespace"),
    ("a" * 101, "String should have at most 100 characters"),
])
def test_free_text_is_one_bounded_line(spec, name, rule):
    message = _error(_params(requested_by=name), spec)
    assert "requested_by: " in message and rule in message
    message = _error(_params(attestations={"dr_runbook": {"by": name, "link": "https://wiki/dr"}}), spec)
    assert "attestations.dr_runbook.by: " in message and rule in message


def test_an_empty_requester_means_the_airflow_user(spec):
    assert validate_request(_params(requested_by=""), spec).requested_by == ""


def test_slack_markup_in_a_name_is_kept_as_text(spec):
    """Refused nowhere, escaped where it is shown (see tests/sap_llm_release/notify/test_slack.py)."""
    assert validate_request(_params(requested_by="<!channel>"), spec).requested_by == "<!channel>"


@pytest.mark.parametrize("link", ["https://wiki/a b", "https://wiki/<a>", "https://wiki/a|b", "https://wiki/ä",
                                  "https://wiki/a\n", "javascript:alert(1)"])
def test_attestation_links_are_plain_urls(spec, link):
    params = _params(attestations={"dr_runbook": {"by": "bob", "link": link}})
    assert "attestations.dr_runbook.link: String should match pattern" in _error(params, spec)


def test_the_requester_of_record_is_checked_like_a_typed_name():
    assert validate_requester("jane.doe") == "jane.doe"
    with pytest.raises(RequestError, match="requested_by: must be one line of printable text"):
        validate_requester("jane\nforged")


def test_unknown_environment(spec):
    assert "environment: 'moon' is not one of ['production', 'staging', 'rehearsal']" in _error(
        _params(environment="moon"), spec
    )


def test_unknown_profile(spec):
    assert "profile: 'fast' is not one of ['production', 'rehearsal']" in _error(_params(profile="fast"), spec)


def test_production_needs_production_profile(spec):
    message = _error(_params(environment="production", profile="rehearsal"), spec)
    assert "profile: the production environment needs the production profile, not 'rehearsal'" in message


def test_attestation_for_unknown_gate(spec):
    params = _params(attestations={"no_such_gate": {"by": "bob", "link": "https://x/y"}})
    assert "attestations.no_such_gate: no attestation gate of that name in the spec" in _error(params, spec)


def test_attestation_for_a_verified_gate(spec):
    params = _params(attestations={"dr_rto": {"by": "bob", "link": "https://x/y"}})
    assert "attestations.dr_rto: no attestation gate of that name" in _error(params, spec)


def test_attestation_bad_link(spec):
    params = _params(attestations={"dr_runbook": {"by": "bob", "link": "wiki page"}})
    assert "attestations.dr_runbook.link: String should match pattern" in _error(params, spec)


def test_attestation_missing_by(spec):
    params = _params(attestations={"dr_runbook": {"link": "https://x/y"}})
    assert "attestations.dr_runbook.by: Field required" in _error(params, spec)


def test_optional_fields_left_empty_by_the_form_arrive_as_null(spec):
    request = validate_request(_params(requested_by=None, attestations=None, fix_forward=None), spec)
    assert (request.requested_by, request.attestations, request.fix_forward) == ("", {}, {})


def test_unknown_parameter(spec):
    assert "force: Extra inputs are not permitted" in _error(_params(force=True), spec)


def test_several_problems_all_named(spec):
    message = _error(_params(environment="moon", profile="fast"), spec)
    assert "environment: 'moon'" in message and "profile: 'fast'" in message


def test_trigger_schema_follows_spec(spec):
    schema = trigger_params_schema(spec)
    assert schema["environment"]["enum"] == ["production", "staging", "rehearsal"]
    assert schema["profile"]["enum"] == ["production", "rehearsal"]
    assert schema["version"]["pattern"] == VERSION_PATTERN + r"(?!\n)" and schema["version"]["maxLength"] == 63
    assert schema["attestations"]["additionalProperties"]["required"] == ["by", "link"]


@pytest.mark.parametrize("field, value, accepted", [
    ("version", "1.1.0", True), ("version", "1.1.0-rc.1", True), ("version", "1.1.0\n", False),
    ("version", "１.1.0", False), ("version", "1.1.0-" + "a" * 58, False),
    ("requested_by", "", True), ("requested_by", "jane.doe", True), ("requested_by", "\n", False),
    ("requested_by", "jane\nforged", False), ("requested_by", "  ", False), ("requested_by", "jane\u2028x", False),
])
def test_trigger_form_schema_applies_the_same_rules(spec, field, value, accepted):
    """The form is checked by Airflow with jsonschema (Python's re, whose $ also matches before a final newline)."""
    import jsonschema

    schema = trigger_params_schema(spec)[field]
    try:
        jsonschema.validate(value, schema)
        form_accepts = True
    except jsonschema.ValidationError:
        form_accepts = False
    assert form_accepts is accepted
    try:
        validate_request(_params(**{field: value}), spec)
        server_accepts = True
    except RequestError:
        server_accepts = False
    assert server_accepts is accepted


def test_trigger_form_checks_attestations(spec):
    import jsonschema

    schema = trigger_params_schema(spec)["attestations"]
    jsonschema.validate({"dr_runbook": {"by": "Sam SRE", "link": "https://wiki/dr"}}, schema)
    for bad in ({"by": "Sam\nSRE", "link": "https://wiki/dr"}, {"by": "Sam", "link": "https://wiki/<dr>"},
                {"by": "Sam", "link": "https://wiki/dr", "extra": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"dr_runbook": bad}, schema)
