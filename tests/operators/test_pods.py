"""Inference jobs as pods: the factory's KubernetesPodOperator (image by digest, GPUs, read-only volumes, deadline,
result through the xcom sidecar, pod deleted) run deferrably against the Kubernetes API stand-in."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import yaml
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from operators.pods import XCOM_RESULT, base_container_end, job_pod_operator
from sap_llm_release.kubernetes_settings import DEPLOY_DIR, parse_kubernetes_settings
from sap_llm_release.spec import Job
from sap_llm_release.targets import TargetError
from tests.support.pod_runs import context_for, first_event

SETTINGS = parse_kubernetes_settings({**yaml.safe_load((DEPLOY_DIR / "settings.example.yaml").read_text()),
                                      "deployment_template": str(DEPLOY_DIR / "deployment.yaml.tmpl")})
EVALUATION = Job(name="model_evaluation", phase="model_validation", image="validator", command="evaluate", gpus=1,
                 timeout=timedelta(hours=2), args=["--artifacts", "/models/sap-llm/1.1.0"])
RESULT = {"passed": True, "vision_encoder": {"classification_accuracy": 0.97}}


def pod_for(job: Job = EVALUATION, settings=SETTINGS):
    operator = job_pod_operator(job, ["--artifacts", "/models/sap-llm/1.1.0"], settings, task_id=f"run_{job.name}",
                                conn_id="sap_llm_kubernetes")
    operator.startup_check_interval_seconds = operator.poll_interval = 0.1
    return operator


@pytest.fixture
def cluster(kube_api, monkeypatch):
    connection = {"conn_type": "kubernetes", "extra": {"kube_config": kube_api.kube_config()}}
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_KUBERNETES", json.dumps(connection))
    return kube_api


def test_the_pod_is_the_spec_job_on_gpu_nodes_by_digest(cluster):
    operator = pod_for()
    pod = operator.build_pod_request_obj(context_for(operator))
    container = pod.spec.containers[0]
    assert container.image == SETTINGS.job_images["validator"] and "@sha256:" in container.image
    assert container.args == ["evaluate", "--artifacts", "/models/sap-llm/1.1.0", "--result", XCOM_RESULT]
    assert container.resources.limits == {"nvidia.com/gpu": "1"} == container.resources.requests
    assert pod.spec.node_selector == SETTINGS.node_selector
    assert [t.key for t in pod.spec.tolerations] == ["nvidia.com/gpu"]
    assert pod.spec.active_deadline_seconds == 7200
    assert {(m.mount_path, m.read_only) for m in container.volume_mounts} >= {("/models", True), ("/datasets", True)}
    claims = {v.name: v.persistent_volume_claim for v in pod.spec.volumes if v.persistent_volume_claim}
    assert claims["models"].claim_name == SETTINGS.model_pvc and claims["models"].read_only
    assert pod.metadata.labels["sap-llm-release/job"] == "model_evaluation"
    assert pod.metadata.namespace == SETTINGS.job_namespace
    assert (operator.deferrable, operator.do_xcom_push, operator.on_finish_action.value) == (True, True, "delete_pod")


def test_a_cpu_job_asks_for_no_gpu(cluster):
    smoke = Job(name="green_smoke", phase="smoke_green", image="loadtest", command="smoke", args=[])
    operator = pod_for(smoke)
    pod = operator.build_pod_request_obj(context_for(operator))
    assert pod.spec.containers[0].resources.limits is None and not pod.spec.node_selector and not pod.spec.tolerations
    assert pod.spec.containers[0].image == SETTINGS.job_images["loadtest"]


def test_an_image_without_a_digest_is_refused_naming_it():
    settings = SETTINGS.model_copy(update={"job_images": {"loadtest": SETTINGS.job_images["loadtest"]}})
    with pytest.raises(TargetError, match="job model_evaluation: no digest for image 'validator'"):
        pod_for(settings=settings)


def test_the_result_comes_back_through_the_trigger_and_the_pod_is_deleted(cluster):
    cluster.script_pod(SETTINGS.job_images["validator"], log="evaluated 150 documents", result=RESULT, run_s=0.2)
    operator = pod_for()
    context = context_for(operator)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    assert deferred.value.method_name == "trigger_reentry"
    event = asyncio.run(first_event(deferred.value.trigger))
    assert operator.trigger_reentry(context, event) == RESULT
    assert base_container_end(operator.pod) == (0, "")
    assert cluster.list("pods", SETTINGS.job_namespace) == []


def test_a_failed_pod_raises_with_its_log_and_still_hands_back_what_it_wrote(cluster):
    failed = {"passed": False, "vision_encoder": {"classification_accuracy": 0.41}}
    cluster.script_pod(SETTINGS.job_images["validator"], exit_code=1, log="accuracy 0.41 below 0.95", result=failed)
    operator = pod_for()
    context = context_for(operator)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    event = asyncio.run(first_event(deferred.value.trigger))
    with pytest.raises(AirflowException) as failure:
        operator.trigger_reentry(context, event)
    assert "accuracy 0.41 below 0.95" in str(failure.value)
    assert context["ti"].pushed["return_value"] == failed
    exit_code, message = base_container_end(operator.pod)
    assert exit_code == 1 and "accuracy 0.41 below 0.95" in message
    assert cluster.list("pods", SETTINGS.job_namespace) == []
