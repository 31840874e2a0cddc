"""Release trigger parameters, validated against the model and the spec."""

from __future__ import annotations

import pytest

from sap_llm_release.request import RequestError, trigger_params_schema, validate_request


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


def test_missing_version(spec):
    params = _params()
    del params["version"]
    assert "version: Field required" in _error(params, spec)


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "1.0.0 ", "latest", "1.0.0-"])
def test_bad_version(spec, version):
    assert "version: String should match pattern" in _error(_params(version=version), spec)


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


def test_unknown_parameter(spec):
    assert "force: Extra inputs are not permitted" in _error(_params(force=True), spec)


def test_several_problems_all_named(spec):
    message = _error(_params(environment="moon", profile="fast"), spec)
    assert "environment: 'moon'" in message and "profile: 'fast'" in message


def test_trigger_schema_follows_spec(spec):
    schema = trigger_params_schema(spec)
    assert schema["environment"]["enum"] == ["production", "staging", "rehearsal"]
    assert schema["profile"]["enum"] == ["production", "rehearsal"]
    assert schema["version"]["pattern"] == r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$"
    assert schema["attestations"]["additionalProperties"]["required"] == ["by", "link"]
