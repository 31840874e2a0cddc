"""What a person asks for when they trigger a release, validated before anything is touched.

The version becomes a Kubernetes label value and an image reference, so it is an ASCII semantic version (digits
``0-9`` only, no leading zeros, a pre-release that ends in a letter or digit) of at most 63 characters. What a
person types as a name goes into log lines, the ledger and Slack messages: one line of printable text, bounded, not
blank. The same rules reach the Airflow trigger form as JSON schema (:func:`trigger_params_schema`)."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sap_llm_release.spec import ReleaseSpec, describe_errors

_NUMBER = r"(?:0|[1-9][0-9]*)"
# semver 2.0 pre-release identifiers; the last one also ends in a letter or digit (a label value must)
_PRERELEASE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_LAST_PRERELEASE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*[0-9A-Za-z]|[0-9]*[A-Za-z])"
VERSION_PATTERN = rf"^{_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:-(?:{_PRERELEASE_ID}\.)*{_LAST_PRERELEASE_ID})?$"
VERSION_MAX_LENGTH = 63  # a Kubernetes label value
NAME_MAX_LENGTH = 100
LINK_MAX_LENGTH = 2000
# RFC 3986 characters only: no spaces, quotes, angle brackets or pipes (Slack link syntax), no raw non-ASCII
LINK_PATTERN = r"^(?:https?|file)://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$"
# Unicode control, format and line / paragraph separator characters, for the trigger form (the server-side check
# asks unicodedata for the categories Cc, Cf, Cs, Zl and Zp).
_INVISIBLE = r"\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
NAME_PATTERN = rf"^[^\s{_INVISIBLE}](?:[^{_INVISIBLE}]*[^\s{_INVISIBLE}])?$"
# Python's ``$`` also matches before a final newline (Airflow checks the form with Python's jsonschema): the form's
# patterns forbid one after the end.
_END = r"(?!\n)"
_REFUSED_CATEGORIES = {"Cc": "control", "Cf": "format", "Cs": "surrogate", "Zl": "line separator",
                       "Zp": "paragraph separator"}


def one_line_of_text(value: str) -> str:
    """A person's name as typed: refused when blank, padded with whitespace, or holding any control, format or
    line-separator character (a newline could forge a log line)."""
    if not value.strip():
        raise ValueError("must not be blank")
    if value != value.strip():
        raise ValueError("must not start or end with whitespace")
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES:
            raise ValueError(f"must be one line of printable text: {_REFUSED_CATEGORIES[category]} character "
                             f"U+{ord(char):04X} at position {position}")
    return value


def semantic_version(value: str) -> str:
    if not re.fullmatch(VERSION_PATTERN, value):
        raise ValueError("must be an ASCII semantic version such as 1.2.3 or 1.2.3-rc.1: digits 0-9, no leading "
                         "zeros, a pre-release of letters, digits, '-' and '.' that ends in a letter or digit")
    return value


PersonName = Annotated[str, Field(min_length=2, max_length=NAME_MAX_LENGTH), AfterValidator(one_line_of_text)]


def _optional_name(value: str) -> str:
    return value if value == "" else one_line_of_text(value)


def _blank_when_absent(value: Any) -> Any:
    """An optional name the trigger form left empty arrives as null: the same as not given."""
    return "" if value is None else value


def _empty_when_absent(value: Any) -> Any:
    """An optional mapping the trigger form left empty arrives as null: the same as not given."""
    return {} if value is None else value


class Attestation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: PersonName
    link: str = Field(max_length=LINK_MAX_LENGTH, pattern=LINK_PATTERN)


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Annotated[str, Field(max_length=VERSION_MAX_LENGTH), AfterValidator(semantic_version)]
    environment: str
    profile: str
    # empty or null: the Airflow user who triggered the run is the requester
    requested_by: Annotated[str, Field(max_length=NAME_MAX_LENGTH), BeforeValidator(_blank_when_absent),
                            AfterValidator(_optional_name)] = ""
    attestations: Annotated[dict[str, Attestation], BeforeValidator(_empty_when_absent)] = Field(default_factory=dict)
    # gate name -> the approver (and the link to their approval) of a fix-forward past that gate failing
    fix_forward: Annotated[dict[str, Attestation], BeforeValidator(_empty_when_absent)] = Field(default_factory=dict)
    # plan and check what needs no change; deploy, shift, approve, page and post nothing but the plan
    dry_run: bool = False


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
    problems += _fix_forward_problems(request, spec)
    if problems:
        raise RequestError("invalid release parameters: " + "; ".join(problems))
    return request


def _fix_forward_problems(request: ReleaseRequest, spec: ReleaseSpec) -> list[str]:
    """Each fix-forward names a gate the spec lets pass that way, approved by one of its approvers who is not the
    requester named in the form (the Airflow user who triggers is checked when the gate runs)."""
    problems = []
    gates = {gate.name: gate for gate in spec.gates}
    for name, approval in request.fix_forward.items():
        allowed = gates[name].fix_forward if name in gates else None
        if allowed is None:
            problems.append(f"fix_forward.{name}: the spec lets no gate of that name pass as a fix-forward")
        elif refused := allowed.refusal(approval.by, request.requested_by):
            problems.append(f"fix_forward.{name}.by: {refused}")
    return problems


def validate_requester(name: str, field: str = "requested_by") -> str:
    """The person a release is recorded as triggered by (the Airflow user, or ``requested_by``), held to the same
    rule as a typed name."""
    try:
        if len(name) > NAME_MAX_LENGTH:
            raise ValueError(f"at most {NAME_MAX_LENGTH} characters, got {len(name)}")
        return one_line_of_text(name)
    except ValueError as exc:
        raise RequestError(f"invalid release parameters: {field}: {exc}") from None


def trigger_params_schema(spec: ReleaseSpec) -> dict[str, dict[str, Any]]:
    """JSON-schema pieces for the Airflow trigger form, in step with :class:`ReleaseRequest`."""
    name = {"type": "string", "minLength": 2, "maxLength": NAME_MAX_LENGTH, "pattern": NAME_PATTERN + _END}
    approval = {
        "type": "object",
        "properties": {"by": name,
                       "link": {"type": "string", "maxLength": LINK_MAX_LENGTH, "pattern": LINK_PATTERN + _END}},
        "required": ["by", "link"],
        "additionalProperties": False,
    }
    # optional fields allow null: the trigger form marks every field whose type does not as required, and sends an
    # optional field left empty as null
    return {
        "version": {"type": "string", "pattern": VERSION_PATTERN + _END, "maxLength": VERSION_MAX_LENGTH,
                    "description": "SAP_LLM version to release (semantic version, ASCII, at most 63 characters)"},
        "environment": {"type": "string", "enum": spec.environments, "description": "where it goes"},
        "profile": {"type": "string", "enum": sorted(spec.profiles), "description": "production or rehearsal"},
        "requested_by": {
            "type": ["string", "null"],
            "maxLength": NAME_MAX_LENGTH,
            "pattern": f"^${_END}|{NAME_PATTERN}{_END}",
            "description": "who asks for the release (taken from the Airflow user when left empty)",
        },
        "attestations": {
            "type": ["object", "null"],
            "description": "gate name -> {by, link} for the items only a person can confirm, for automation; an item "
                           "not given here is asked of its role on the Required Actions page when its phase starts",
            "additionalProperties": approval,
        },
        "dry_run": {
            "type": "boolean",
            "description": "check every gate that needs no change and record the plan of every action the release "
                           "would take; deploy, shift traffic, ask for approvals, page and post nothing but the plan",
        },
        "fix_forward": {
            "type": ["object", "null"],
            "description": "gate name -> {by, link}: a fix-forward past that gate failing (error budget spent), "
                           "approved by one of the gate's approvers in the spec, not the requester",
            "additionalProperties": approval,
        },
    }
