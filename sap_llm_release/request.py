"""What a person asks for when they trigger a release, validated before anything is touched."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sap_llm_release.spec import ReleaseSpec, describe_errors

VERSION_PATTERN = r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$"


class Attestation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(min_length=2, max_length=200)
    link: str = Field(pattern=r"^(https?|file)://\S+$")


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(pattern=VERSION_PATTERN)
    environment: str
    profile: str
    requested_by: str = Field(default="", max_length=200)
    attestations: dict[str, Attestation] = Field(default_factory=dict)


class RequestError(ValueError):
    """The trigger parameters cannot start a release; the message names each field and its rule."""


def validate_request(params: dict[str, Any], spec: ReleaseSpec) -> ReleaseRequest:
    """Check ``params`` against the model and the spec (known environment, profile and attestation gates)."""
    try:
        request = ReleaseRequest.model_validate(params)
    except ValidationError as exc:
        raise RequestError(f"invalid release parameters: {describe_errors(exc)}") from None
    problems = []
    if request.environment not in spec.environments:
        problems.append(f"environment: {request.environment!r} is not one of {spec.environments}")
    if request.profile not in spec.profiles:
        problems.append(f"profile: {request.profile!r} is not one of {sorted(spec.profiles)}")
    if request.environment == "production" and request.profile != "production":
        problems.append(f"profile: the production environment needs the production profile, not {request.profile!r}")
    attestation_gates = {gate.name for gate in spec.gates if gate.kind == "attestation"}
    for gate in request.attestations:
        if gate not in attestation_gates:
            problems.append(f"attestations.{gate}: no attestation gate of that name in the spec")
    if problems:
        raise RequestError("invalid release parameters: " + "; ".join(problems))
    return request


def trigger_params_schema(spec: ReleaseSpec) -> dict[str, dict[str, Any]]:
    """JSON-schema pieces for the Airflow trigger form, in step with :class:`ReleaseRequest`."""
    return {
        "version": {"type": "string", "pattern": VERSION_PATTERN, "description": "SAP_LLM version to release"},
        "environment": {"type": "string", "enum": spec.environments, "description": "where it goes"},
        "profile": {"type": "string", "enum": sorted(spec.profiles), "description": "production or rehearsal"},
        "requested_by": {
            "type": "string",
            "maxLength": 200,
            "description": "who asks for the release (taken from the Airflow user when left empty)",
        },
        "attestations": {
            "type": "object",
            "description": "gate name -> {by, link} for the items only a person can confirm",
            "additionalProperties": {
                "type": "object",
                "properties": {"by": {"type": "string", "minLength": 2}, "link": {"type": "string"}},
                "required": ["by", "link"],
            },
        },
    }

