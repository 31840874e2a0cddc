"""Inference jobs as pods: one factory turns a spec'd job into a KubernetesPodOperator (deferrable, the image by
digest, GPUs on GPU nodes, the model and dataset volumes read-only, the result read back through the xcom sidecar,
the pod deleted whatever happened, the job's timeout as the pod's active deadline)."""

from __future__ import annotations

from typing import Any

from sap_llm_release.jobs.spec import InferenceJob
from sap_llm_release.targets import TargetError

XCOM_RESULT = "/airflow/xcom/return.json"  # what the KubernetesPodOperator's xcom sidecar reads back
JOB_LABEL = "sap-llm-release/job"


def job_pod_operator(job: InferenceJob, args: list[str], settings: Any, *, task_id: str, conn_id: str) -> Any:
    """The pod that runs ``job``'s image entrypoint with ``args`` on the cluster ``settings`` (KubernetesSettings)
    describe; the entrypoint writes its result where the xcom sidecar reads it."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    image = settings.job_images.get(job.image)
    if image is None:
        raise TargetError(f"job {job.name}: no digest for image {job.image!r} in the Kubernetes settings' job_images "
                          f"(known: {sorted(settings.job_images)})")
    volumes, mounts = [], []
    for name, claim, path in (("models", settings.model_pvc, "/models"), ("datasets", settings.datasets_pvc,
                                                                         "/datasets")):
        if claim:
            volumes.append(k8s.V1Volume(name=name, persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                claim_name=claim, read_only=True)))
            mounts.append(k8s.V1VolumeMount(name=name, mount_path=path, read_only=True))
    gpus = {"nvidia.com/gpu": str(job.gpus)} if job.gpus else {}
    return KubernetesPodOperator(
        task_id=task_id,
        name=f"sap-llm-{job.name.replace('_', '-')}",
        namespace=settings.job_namespace or settings.namespace,
        kubernetes_conn_id=conn_id,
        image=image,
        arguments=[job.command, *args, "--result", XCOM_RESULT],
        labels={"app.kubernetes.io/part-of": "sap-llm-release", JOB_LABEL: job.name},
        container_resources=k8s.V1ResourceRequirements(requests=gpus or None, limits=gpus or None),
        node_selector=dict(settings.node_selector) if job.gpus else None,
        tolerations=[k8s.V1Toleration(**t) for t in settings.gpu_tolerations] if job.gpus else None,
        volumes=volumes,
        volume_mounts=mounts,
        active_deadline_seconds=int(job.timeout.total_seconds()),
        termination_message_policy="FallbackToLogsOnError",  # a failed pod's log tail comes back in its status
        do_xcom_push=True,
        on_finish_action="delete_pod",
        deferrable=True,
        get_logs=True,
    )


def base_container_end(pod: Any) -> tuple[int | None, str]:
    """How the job's container in a pod the operator read back ended: its exit code (None when it did not end) and
    its termination message (the log's tail when it failed, by ``FallbackToLogsOnError``)."""
    statuses = (pod.status.container_statuses or []) if pod is not None and pod.status else []
    for status in statuses:
        if status.name == "base" and status.state and status.state.terminated:
            return status.state.terminated.exit_code, (status.state.terminated.message or "").strip()
    return None, ""
