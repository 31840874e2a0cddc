"""The real KubernetesPodOperator against the Kubernetes API stand-in (tests/support/kube_api.py): pod creation,
logs, the xcom sidecar's exec and kill, and deletion, through the cncf provider's own hook, client and trigger."""

from __future__ import annotations

import asyncio
import json

import pytest
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from tests.support.pod_runs import context_for, first_event

NAMESPACE = "sap-llm-jobs"
IMAGE = "registry.example/sap-llm/evaluate:1.4.0"
RESULT = {"field_accuracy": 0.973, "documents": 500}


@pytest.fixture
def kubernetes_default(kube_api, monkeypatch):
    """The ``kubernetes_default`` connection pointing at the stand-in through its ``kube_config`` extra."""
    connection = {"conn_type": "kubernetes", "extra": {"kube_config": kube_api.kube_config()}}
    monkeypatch.setenv("AIRFLOW_CONN_KUBERNETES_DEFAULT", json.dumps(connection))
    return kube_api


def evaluation_pod(**kwargs) -> KubernetesPodOperator:
    return KubernetesPodOperator(
        task_id="evaluate_green",
        name="model-evaluation",
        namespace=NAMESPACE,
        image=IMAGE,
        cmds=["python", "-m", "sap_llm_model.evaluate"],
        do_xcom_push=True,
        on_finish_action="delete_pod",
        kubernetes_conn_id="kubernetes_default",
        termination_message_policy="FallbackToLogsOnError",
        startup_check_interval_seconds=0.1,
        poll_interval=0.1,
        **kwargs,
    )


def sidecar_execs(kube) -> list:
    return [seen for seen in kube.requests
            if seen.path.endswith("/exec") and seen.query.get("container") == "airflow-xcom-sidecar"]


def test_result_comes_back_and_the_pod_is_deleted(kubernetes_default):
    kube = kubernetes_default
    kube.script_pod(IMAGE, log="loading weights\nevaluated 500 documents", result=RESULT)
    operator = evaluation_pod()
    context = context_for(operator)

    assert operator.execute(context) == RESULT

    assert kube.list("pods", NAMESPACE) == []
    pod_name = context["ti"].pushed["pod_name"]
    assert pod_name.startswith("model-evaluation-")
    assert [seen.method for seen in kube.requests if seen.path.endswith(f"/pods/{pod_name}")][-1] == "DELETE"
    assert len(sidecar_execs(kube)) == 2  # cat return.json, then kill the sidecar
    assert any(seen.path.endswith(f"/pods/{pod_name}/log") and seen.query.get("timestamps", "").lower() == "true"
               for seen in kube.requests)


def test_a_failed_container_raises_with_its_log_tail(kubernetes_default):
    kube = kubernetes_default
    kube.script_pod("model-evaluation", exit_code=1, log="loading weights\nCUDA error: out of memory", run_s=0.1)
    operator = evaluation_pod()

    with pytest.raises(AirflowException, match="returned a failure") as failure:
        operator.execute(context_for(operator))

    assert "CUDA error: out of memory" in str(failure.value)
    assert kube.list("pods", NAMESPACE) == []


def test_deferrable_run_ends_through_the_trigger(kubernetes_default):
    kube = kubernetes_default
    kube.script_pod(IMAGE, log="evaluated 500 documents", result=RESULT, run_s=0.3)
    operator = evaluation_pod(deferrable=True)
    context = context_for(operator)

    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(context)
    event = asyncio.run(first_event(deferred.value.trigger))

    assert event["status"] == "success"
    assert operator.trigger_reentry(context, event) == RESULT
    assert kube.list("pods", NAMESPACE) == []
