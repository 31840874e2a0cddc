"""The release DAG's trigger form: valid as it opens, each field titled and described in its section, the optional
fields not marked required (Airflow's form requires every field whose type does not allow null), the versions the
cluster's settings deploy offered."""

from __future__ import annotations

import pytest
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError

from operators.dag_builder import release_params
from sap_llm_release.request import validate_request
from sap_llm_release.spec import load_spec
from sap_llm_release.targets import KUBERNETES_SETTINGS_ENV
from tests.support.runs import ROOT, SPEC_FILE

SPEC = load_spec(SPEC_FILE)
OPTIONAL = {"requested_by", "attestations", "fix_forward"}


@pytest.fixture(scope="module")
def form():
    return release_params(SPEC)


def test_the_form_as_it_opens_is_valid_and_starts_a_rehearsal(form):
    values = ParamsDict(form).validate()
    assert (values["environment"], values["profile"]) == ("rehearsal", "rehearsal")
    request = validate_request(values, SPEC)  # the server-side check of the same values
    assert (request.requested_by, request.attestations, request.fix_forward) == ("", {}, {})


def test_only_the_optional_fields_may_be_left_empty(form):
    nullable = {name for name, param in form.items() if "null" in param.schema["type"]}
    assert nullable == OPTIONAL
    assert all(form[name].value is not None for name in form.keys() - OPTIONAL)


def test_each_field_has_a_title_a_description_and_a_section(form):
    for name, param in form.items():
        assert param.schema["title"] and param.description and param.schema["section"], name
    assert [form[name].schema["section"] for name in ("version", "environment", "profile")] == ["What to release"] * 3


def test_the_profile_choices_say_what_each_profile_does(form):
    shown = form["profile"].schema["values_display"]
    assert set(shown) == set(form["profile"].schema["enum"]) == set(SPEC.profiles)
    assert shown["production"] == "production: kubernetes target, real-time windows, no gate waived"
    waived = len(SPEC.profiles["rehearsal"].waivers)
    assert shown["rehearsal"] == f"rehearsal: local target, windows scaled x0.0022222, {waived} gates waived"


@pytest.mark.parametrize("field, value", [("version", "latest"), ("environment", "moon"), ("requested_by", " x"),
                                          ("attestations", {"dr_runbook": {"by": "Sam"}})])
def test_the_form_refuses_a_bad_value_naming_the_field(form, field, value):
    params = ParamsDict(form)
    with pytest.raises(ParamValidationError, match=f"^Invalid input for param {field}: "):
        params[field] = value


def test_the_versions_the_clusters_settings_pin_are_offered_with_their_digests(monkeypatch):
    monkeypatch.setenv(KUBERNETES_SETTINGS_ENV, str(ROOT / "deploy" / "kubernetes" / "settings.example.yaml"))
    version = release_params(SPEC)["version"]
    assert version.schema["examples"] == ["1.1.0", "1.0.0"]  # newest first
    assert "1.1.0: registry.example.com/sap-llm/server@sha256:2222" in version.description
    assert "Any other version is refused when the release starts" in version.description
    assert "The local target (rehearsal profile) serves any version" in version.description
    assert ParamsDict({"version": version}).validate()["version"] == "1.1.0"


def test_without_cluster_settings_the_form_says_so_and_offers_nothing(monkeypatch, tmp_path):
    monkeypatch.delenv(KUBERNETES_SETTINGS_ENV, raising=False)
    version = release_params(SPEC)["version"]
    assert "examples" not in version.schema and "No Kubernetes settings are configured here" in version.description
    (tmp_path / "broken.yaml").write_text("image: [\n")
    monkeypatch.setenv(KUBERNETES_SETTINGS_ENV, str(tmp_path / "broken.yaml"))
    version = release_params(SPEC)["version"]
    assert "examples" not in version.schema and "The Kubernetes settings cannot be read" in version.description
