"""Blue and green as Deployments, through the official client against the Kubernetes API stand-in."""

from __future__ import annotations

import time

import pytest

from sap_llm_release.deployers.base import DeployError
from sap_llm_release.deployers.kubernetes import KubernetesDeployer, render_deployment
from sap_llm_release.kubernetes_settings import DEPLOY_DIR, load_kubernetes_settings

NAMESPACE = "sap-llm-prod"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
WRITES = ("PATCH", "PUT")


@pytest.fixture(scope="module")
def settings():
    return load_kubernetes_settings(DEPLOY_DIR / "settings.example.yaml")


@pytest.fixture
def deployer(kube_api, settings):
    return KubernetesDeployer(settings, kube_api.api_client(), poll_interval_s=0.05, request_timeout_s=1,
                              backoff_s=0.01)


def methods(kube_api, since: int = 0) -> list[str]:
    return [request.method for request in kube_api.requests[since:] if request.path.startswith(DEPLOYMENTS)]


def image_of(deployment: dict) -> str:
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def test_deploy_creates_then_changes_nothing_then_replaces_for_a_new_version(kube_api, deployer, settings):
    assert deployer.running_version("green") is None
    assert deployer.deploy("green", "1.1.0") is True
    live = kube_api.get("deployments", "sap-llm-green", NAMESPACE)
    assert image_of(live) == settings.image_for("1.1.0")
    assert (live["metadata"]["labels"]["app"], live["metadata"]["labels"]["version"]) == ("sap-llm", "green")
    assert deployer.running_version("green") == "1.1.0"

    before = len(kube_api.requests)
    assert deployer.deploy("green", "1.1.0") is False  # a retried task
    assert not set(methods(kube_api, before)) & set(WRITES)
    assert kube_api.get("deployments", "sap-llm-green", NAMESPACE)["metadata"]["generation"] == 1

    before = len(kube_api.requests)
    assert deployer.deploy("green", "1.0.0") is True
    assert methods(kube_api, before) == ["GET", "PUT"]
    live = kube_api.get("deployments", "sap-llm-green", NAMESPACE)
    assert (image_of(live), deployer.running_version("green")) == (settings.image_for("1.0.0"), "1.0.0")
    assert kube_api.get("deployments", "sap-llm-blue", NAMESPACE) is None


def test_an_existing_deployment_is_left_alone_when_it_matches(kube_api, deployer, settings):
    kube_api.put(render_deployment(settings, "green", "1.1.0"))
    before = len(kube_api.requests)
    assert deployer.deploy("green", "1.1.0") is False
    assert methods(kube_api, before) == ["GET"]


def test_an_existing_deployment_edited_by_hand_is_put_back(kube_api, deployer, settings):
    edited = render_deployment(settings, "green", "1.1.0")
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example.com/sap-llm/server:latest"
    kube_api.put(edited)
    assert deployer.deploy("green", "1.1.0") is True
    assert image_of(kube_api.get("deployments", "sap-llm-green", NAMESPACE)) == settings.image_for("1.1.0")


def test_slots_map_roles_onto_deployments(kube_api, settings):
    swapped = KubernetesDeployer(settings, kube_api.api_client(), slots={"blue": "green", "green": "blue"})
    assert swapped.deploy("green", "1.1.0") is True
    live = kube_api.get("deployments", "sap-llm-blue", NAMESPACE)
    assert live["spec"]["selector"]["matchLabels"] == {"app": "sap-llm", "version": "blue"}
    assert swapped.running_version("green") == "1.1.0" and swapped.running_version("blue") is None


def test_wait_ready_sees_the_rollout_complete(deployer):
    deployer.deploy("green", "1.1.0")
    ready, seen = deployer.wait_ready("green", 5)
    assert ready, seen
    assert seen == f"deployment {NAMESPACE}/sap-llm-green: generation 1 observed 1, 3/3 ready, 3/3 updated"


def test_wait_ready_gives_up_at_the_deadline(kube_api, deployer):
    kube_api.hold_rollout("sap-llm-green")
    deployer.deploy("green", "1.1.0")
    started = time.monotonic()
    ready, seen = deployer.wait_ready("green", 0.5)
    assert not ready
    assert time.monotonic() - started < 1.5
    assert seen == f"deployment {NAMESPACE}/sap-llm-green not ready after 0.5s: generation 1 observed 1, " \
                   "0/3 ready, 3/3 updated"


def test_wait_ready_stops_at_a_stalled_rollout(kube_api, deployer, settings):
    stalled = render_deployment(settings, "green", "1.1.0")
    stalled["status"] = {"observedGeneration": 1, "replicas": 3, "updatedReplicas": 1, "readyReplicas": 0,
                         "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                         "message": 'ReplicaSet "sap-llm-green-7d9" has timed out progressing.'}]}
    kube_api.put(stalled)
    started = time.monotonic()
    ready, seen = deployer.wait_ready("green", 30)
    assert not ready and time.monotonic() - started < 1
    assert seen.endswith('rollout stalled: generation 1 observed 1, 0/3 ready, 1/3 updated; '
                         'ReplicaSet "sap-llm-green-7d9" has timed out progressing.')


def test_wait_ready_for_a_missing_deployment(deployer):
    assert deployer.wait_ready("blue", 5) == (False, f"deployment {NAMESPACE}/sap-llm-blue not found")


def test_remove_scales_to_zero(kube_api, deployer):
    assert deployer.remove("green") is False
    deployer.deploy("green", "1.1.0")
    assert deployer.remove("green") is True
    assert kube_api.get("deployments", "sap-llm-green", NAMESPACE)["spec"]["replicas"] == 0
    assert deployer.running_version("green") is None
    assert deployer.remove("green") is False
    before = len(kube_api.requests)
    assert deployer.deploy("green", "1.1.0") is True  # scaled back up
    assert "PUT" in methods(kube_api, before)
    assert kube_api.get("deployments", "sap-llm-green", NAMESPACE)["spec"]["replicas"] == 3


def test_remove_deletes_when_set_to(kube_api, settings):
    deleting = KubernetesDeployer(settings.model_copy(update={"on_remove": "delete"}), kube_api.api_client())
    deleting.deploy("green", "1.1.0")
    assert deleting.remove("green") is True
    assert kube_api.get("deployments", "sap-llm-green", NAMESPACE) is None
    assert deleting.remove("green") is False


def test_logs_are_the_running_versions_pods(kube_api, deployer):
    assert deployer.logs("green") == ""
    deployer.deploy("green", "1.1.0")
    kube_api.script_pod("sap-llm-green-", log="INFO colour=green version=1.1.0 ready", run_s=30)
    from kubernetes import client

    pods = client.CoreV1Api(kube_api.api_client())
    for name, version in (("sap-llm-green-a", "1.1.0"), ("sap-llm-green-b", "1.1.0"), ("sap-llm-green-old", "1.0.0")):
        labels = {"app": "sap-llm", "version": "green", "app.kubernetes.io/version": version}
        pods.create_namespaced_pod(NAMESPACE, {"metadata": {"name": name, "labels": labels},
                                               "spec": {"containers": [{"name": "sap-llm", "image": "x"}]}})
    deadline = time.monotonic() + 5
    while deployer.logs("green").count("ready") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert deployer.logs("green") == "INFO colour=green version=1.1.0 ready\n" * 2


def test_a_create_refused_with_a_conflict_reads_and_compares(kube_api, deployer, settings):
    kube_api.put(render_deployment(settings, "green", "1.0.0"))
    before = len(kube_api.requests)
    assert deployer.deploy("green", "1.1.0") is True
    assert methods(kube_api, before) == ["GET", "PUT"]
    assert deployer.running_version("green") == "1.1.0"


def test_a_replace_that_lost_a_race_reads_again(kube_api, deployer, settings):
    kube_api.put(render_deployment(settings, "green", "1.0.0"))
    kube_api.fail_next("PUT", "deployments/sap-llm-green", 409)
    assert deployer.deploy("green", "1.1.0") is True
    assert methods(kube_api)[-4:] == ["GET", "PUT", "GET", "PUT"]


@pytest.mark.parametrize("write", ["POST", "PUT"])
def test_a_write_whose_answer_was_lost_still_counts_as_this_deploys_change(kube_api, deployer, settings, write):
    """The API applies the write but the answer comes after the client's timeout; the retry conflicts (409), and
    the next read finds the Deployment as desired: changed by this call, not found so."""
    if write == "PUT":
        kube_api.put(render_deployment(settings, "green", "1.0.0"))
    kube_api.answer_late(write, "deployments", 1.5)
    assert deployer.deploy("green", "1.1.0") is True
    assert deployer.running_version("green") == "1.1.0"
    assert methods(kube_api).count(write) == 2  # the write that timed out, and its retry


def test_transient_failures_are_retried(kube_api, deployer):
    kube_api.fail_next("POST", "deployments", 500, times=2)
    kube_api.fail_next("GET", "deployments/sap-llm-green", 429)
    assert deployer.deploy("green", "1.1.0") is True
    assert methods(kube_api) == ["GET", "GET", "POST", "POST", "POST"]  # the read's 429, then the create's 500s


def test_a_stalled_request_times_out_and_is_retried(kube_api, deployer):
    deployer.deploy("green", "1.1.0")
    kube_api.stall_next("GET", "deployments/sap-llm-green", 3)
    started = time.monotonic()
    assert deployer.running_version("green") == "1.1.0"
    assert time.monotonic() - started < 2.5


def test_persistent_server_errors_name_the_object(kube_api, deployer):
    kube_api.fail_next("POST", "deployments", 500, times=10)
    with pytest.raises(DeployError, match=rf"^deployment {NAMESPACE}/sap-llm-green: create failed after 4 tries: "
                                          r"500 Internal Server Error: injected failure"):
        deployer.deploy("green", "1.1.0")
    assert methods(kube_api) == ["GET"] + ["POST"] * 4


def test_a_refusal_is_not_retried(kube_api, deployer):
    kube_api.fail_next("GET", "deployments/sap-llm-blue", 403)
    with pytest.raises(DeployError, match=rf"^deployment {NAMESPACE}/sap-llm-blue: read failed: 403 Forbidden"):
        deployer.running_version("blue")
    assert methods(kube_api) == ["GET"]


def test_an_unreachable_api_is_a_deploy_error(settings, free_port):
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port}"
    unreachable = KubernetesDeployer(settings, client.ApiClient(configuration), attempts=2, backoff_s=0.01)
    with pytest.raises(DeployError, match=rf"deployment {NAMESPACE}/sap-llm-blue: read failed after 2 tries: "
                                          "MaxRetryError"):
        unreachable.remove("blue")


def test_a_tag_or_an_unknown_version_is_refused_before_any_request(kube_api, deployer, settings):
    with pytest.raises(DeployError, match=r"version '9.9.9' has no image digest"):
        deployer.deploy("green", "9.9.9")
    tagged = settings.model_copy(update={"versions": {"1.2.0": "registry.example.com/sap-llm/server:1.2.0"}})
    with pytest.raises(DeployError, match=r"version '1.2.0': .* is not an image digest.*never a tag"):
        KubernetesDeployer(tagged, kube_api.api_client()).deploy("green", "1.2.0")
    assert kube_api.requests == []
