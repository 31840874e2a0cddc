"""The Kubernetes manifests in deploy/kubernetes and the settings that render a colour's Deployment: every document
parses, survives a round trip through the official client's models unchanged (a misspelt or misplaced field would
be dropped), pins its image by digest and holds no secret value."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from sap_llm_release.deployers.base import DeployError
from sap_llm_release.deployers.kubernetes import SPEC_HASH_ANNOTATION, render_deployment
from sap_llm_release.kubernetes_settings import (
    DEPLOY_DIR,
    KubernetesSettingsError,
    load_kubernetes_settings,
    parse_kubernetes_settings,
)

SERVER = Path(__file__).resolve().parents[2] / "inference_images" / "sap_llm_server" / "server.py"
MODELS = {
    "Deployment": "V1Deployment", "Service": "V1Service", "NetworkPolicy": "V1NetworkPolicy",
    "ServiceAccount": "V1ServiceAccount", "Role": "V1Role", "RoleBinding": "V1RoleBinding",
    "ClusterRole": "V1ClusterRole", "ClusterRoleBinding": "V1ClusterRoleBinding", "Namespace": "V1Namespace",
}
APPENDIX_A = {"ENVIRONMENT", "LOG_LEVEL", "COSMOS_ENDPOINT", "COSMOS_KEY", "REDIS_HOST", "MONGODB_URI",
              "VISION_ENCODER_PATH", "LANGUAGE_DECODER_PATH", "REASONING_ENGINE_PATH", "WEB_SEARCH_ENABLED",
              "ENABLE_PMG", "ENABLE_APOP", "ENABLE_SHWL"}
SECRET_NAMES = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL|URI|ENDPOINT|HOST")
DIGEST = "sha256:" + "a" * 64


@pytest.fixture(scope="module")
def settings():
    return load_kubernetes_settings(DEPLOY_DIR / "settings.example.yaml")


@pytest.fixture(scope="module")
def deployment(settings):
    return render_deployment(settings, "green", "1.1.0")


def manifests() -> list[tuple[str, dict]]:
    """``(file, document)`` for every document of the files the kustomization lists."""
    listed = yaml.safe_load((DEPLOY_DIR / "kustomization.yaml").read_text())["resources"]
    return [(name, doc) for name in listed for doc in yaml.safe_load_all((DEPLOY_DIR / name).read_text()) if doc]


def round_trip(document: dict) -> dict:
    """``document`` deserialised into its client model and serialised back."""
    from kubernetes.client import ApiClient

    class Response:
        data = json.dumps(document)

    client = ApiClient()
    return client.sanitize_for_serialization(client.deserialize(Response(), MODELS[document["kind"]]))


def test_every_manifest_survives_the_client_models(deployment):
    documents = [("deployment.yaml.tmpl", deployment)] + [(n, d) for n, d in manifests() if d["kind"] in MODELS]
    assert {d["kind"] for _, d in documents} == set(MODELS)
    for name, document in documents:
        assert round_trip(document) == document, f"{name} {document['kind']} {document['metadata']['name']}"


def test_a_misspelt_field_is_caught_by_the_round_trip(deployment):
    misspelt = {**deployment, "spec": {**deployment["spec"], "replicsa": 3}}
    assert round_trip(misspelt) != misspelt


def test_kustomization_lists_every_manifest():
    listed = yaml.safe_load((DEPLOY_DIR / "kustomization.yaml").read_text())["resources"]
    on_disk = {path.name for path in DEPLOY_DIR.glob("*.yaml")} - {"kustomization.yaml", "settings.example.yaml"}
    assert sorted(listed) == sorted(on_disk)


def test_deployment_runs_the_version_by_digest_with_the_checklists_resources(deployment, settings):
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"registry.example.com/sap-llm/server@sha256:{'2' * 64}"
    assert deployment["spec"]["selector"]["matchLabels"] == {"app": "sap-llm", "version": "green"}
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert (pod_labels["app"], pod_labels["version"]) == ("sap-llm", "green")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "1.1.0"
    assert container["resources"] == {"requests": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": "1"},
                                      "limits": {"cpu": "16", "memory": "64Gi", "nvidia.com/gpu": "1"}}
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    model_mount = next(m for m in container["volumeMounts"] if m["name"] == "model")
    assert model_mount == {"name": "model", "mountPath": "/models", "subPath": "sap-llm/1.1.0", "readOnly": True}
    assert {"name": "model", "persistentVolumeClaim": {"claimName": "sap-llm-models", "readOnly": True}} in pod[
        "volumes"]
    assert len(deployment["metadata"]["annotations"][SPEC_HASH_ANNOTATION]) == 64


def test_server_arguments_are_the_reference_servers_own(deployment):
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    flags = [arg for arg in args if arg.startswith("--")]
    declared = set(re.findall(r'add_argument\("(--[a-z-]+)"', SERVER.read_text()))
    assert set(flags) <= declared
    assert args[args.index("--port") + 1] == str(container["ports"][0]["containerPort"])
    assert (args[args.index("--colour") + 1], args[args.index("--version") + 1]) == ("green", "1.1.0")


def test_environment_is_appendix_a_with_secrets_by_reference_only(deployment):
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert set(env) == APPENDIX_A
    for name, item in env.items():
        if SECRET_NAMES.search(name) and not name.endswith("_PATH"):
            assert "value" not in item and set(item["valueFrom"]) == {"secretKeyRef"}, name
    assert env["ENVIRONMENT"]["value"] == "production" and env["LOG_LEVEL"]["value"] == "INFO"
    secret_volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v)
    assert secret_volume["secret"]["secretName"] == "sap-llm-api-keys"


def test_no_manifest_holds_a_secret_value():
    for name, document in manifests():
        assert document["kind"] != "Secret", name
    text = "".join(path.read_text() for path in DEPLOY_DIR.iterdir())
    assert not re.search(r"(?i)(password|token|api[_-]?key|secret)\s*:\s*['\"]?[A-Za-z0-9+/=]{16,}", text)


def test_services_and_route_split_blue_and_green():
    documents = {(d["kind"], d["metadata"]["name"]): d for _, d in manifests()}
    for colour in ("blue", "green"):
        service = documents[("Service", f"sap-llm-{colour}")]
        assert service["spec"]["selector"] == {"app": "sap-llm", "version": colour}
        assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert documents[("Service", "sap-llm")]["spec"]["selector"] == {"app": "sap-llm", "version": "blue"}
    route = documents[("HTTPRoute", "sap-llm")]
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"][0]["kind"] == "Gateway"
    (rule,) = route["spec"]["rules"]
    backends = {ref["name"]: (ref["kind"], ref["port"], ref["weight"]) for ref in rule["backendRefs"]}
    assert backends == {"sap-llm-blue": ("Service", 8000, 100), "sap-llm-green": ("Service", 8000, 0)}


def test_release_role_covers_deployer_routers_and_job_pods():
    role = next(d for _, d in manifests() if d["kind"] == "Role" and d["metadata"]["name"] == "sap-llm-release")
    granted = {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
               for resource in rule["resources"] for verb in rule["verbs"]}
    needed = {("apps", "deployments", v) for v in ("get", "create", "patch", "update", "delete")}
    needed |= {("", "services", v) for v in ("get", "patch")}
    needed |= {("gateway.networking.k8s.io", "httproutes", v) for v in ("get", "patch")}
    needed |= {("networking.k8s.io", "ingresses", v) for v in ("get", "patch")}
    needed |= {("", "pods", v) for v in ("create", "get", "list", "delete")}
    needed |= {("", "pods/log", "get"), ("", "pods/exec", "create")}
    needed |= {("apps", "deployments", "list"), ("rbac.authorization.k8s.io", "roles", "get"),
               ("rbac.authorization.k8s.io", "rolebindings", "list")}  # the monthly audit's posture checks
    assert needed <= granted
    secrets = next(rule for rule in role["rules"] if rule["resources"] == ["secrets"])
    assert secrets["verbs"] == ["get"] and secrets["resourceNames"]  # by name only, never list


def test_airflow_connection_example():
    connections = json.loads((DEPLOY_DIR / "airflow-connection.example.json").read_text())
    assert {c["conn_type"] for c in connections.values()} == {"kubernetes"}
    assert {c["extra"]["namespace"] for c in connections.values()} == {"sap-llm-prod"}
    assert any(c["extra"].get("in_cluster") for c in connections.values())
    assert any(c["extra"].get("kube_config_path") for c in connections.values())


def test_settings_refuse_a_tag_naming_the_field():
    data = {"image": "registry.example.com/sap-llm/server", "model_pvc": "models", "versions": {"1.1.0": "1.1.0"}}
    with pytest.raises(KubernetesSettingsError, match=r"versions: .*'1.1.0' is not an image digest.*never a tag"):
        parse_kubernetes_settings(data)
    data["versions"] = {"1.1.0": "registry.example.com/sap-llm/server:1.1.0"}
    with pytest.raises(KubernetesSettingsError, match="versions: .*never a tag"):
        parse_kubernetes_settings(data)
    data.update(image="registry.example.com/sap-llm/server:latest", versions={"1.1.0": DIGEST})
    with pytest.raises(KubernetesSettingsError, match="image: .*carries a tag or digest"):
        parse_kubernetes_settings(data)


@pytest.mark.parametrize(("field", "value", "rule"), [
    ("namespace", "Prod_NS", "should match pattern"),
    ("replicas", 0, "greater than or equal to 1"),
    ("on_remove", "shrug", "'scale_to_zero' or 'delete'"),
    ("versions", {"1.1.0+build": DIGEST}, "not a Kubernetes label value"),
    ("gpu", 2, "Extra inputs are not permitted"),
])
def test_settings_errors_name_the_field_and_the_rule(field, value, rule):
    data = {"image": "registry.example.com/sap-llm/server", "model_pvc": "models", "versions": {"1.1.0": DIGEST}}
    with pytest.raises(KubernetesSettingsError, match=rf"{field}: .*{re.escape(rule)}"):
        parse_kubernetes_settings({**data, field: value})


def test_settings_file_errors(tmp_path):
    with pytest.raises(KubernetesSettingsError, match="cannot read Kubernetes settings"):
        load_kubernetes_settings(tmp_path / "absent.yaml")
    (tmp_path / "settings.yaml").write_text("image: registry.example.com/x\nversions: {}\n")
    with pytest.raises(KubernetesSettingsError, match=r"settings.yaml: .*model_pvc: Field required"):
        load_kubernetes_settings(tmp_path / "settings.yaml")


def test_a_full_reference_is_used_as_given_and_an_unknown_version_refused(settings):
    other = f"mirror.example.com/sap-llm/server@{DIGEST}"
    pinned = settings.model_copy(update={"versions": {"2.0.0": other}})
    (container,) = render_deployment(pinned, "blue", "2.0.0")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == other
    with pytest.raises(DeployError, match=r"version '9.9.9' has no image digest .*known: \['1.0.0', '1.1.0'\]"):
        render_deployment(settings, "blue", "9.9.9")


def test_rendering_is_stable_and_a_new_version_changes_the_hash(settings):
    first, again = render_deployment(settings, "green", "1.1.0"), render_deployment(settings, "green", "1.1.0")
    other = render_deployment(settings, "green", "1.0.0")
    hashes = [d["metadata"]["annotations"][SPEC_HASH_ANNOTATION] for d in (first, again, other)]
    assert hashes[0] == hashes[1] != hashes[2]
