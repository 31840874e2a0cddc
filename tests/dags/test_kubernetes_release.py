"""Full rehearsals of the release DAG (dag.test) on the kubernetes target: the production code path (KubernetesDeployer,
HTTPRouteRouter, job pods through the KubernetesPodOperator, the Kubernetes check kinds) against the Kubernetes API
stand-in over HTTP, with the live local stack as the cluster's data plane (tests/support/cluster_dataplane.py)."""

from __future__ import annotations

import base64
import copy
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import certifi
import pytest
import yaml

from sap_llm_release.deployers.kubernetes import KubernetesDeployer
from sap_llm_release.kubernetes_settings import DEPLOY_DIR, KubernetesSettings, load_kubernetes_settings
from sap_llm_release.ledger import Ledger
from sap_llm_release.routers.base import ALL_BLUE, Weights
from sap_llm_release.spec import load_spec
from sap_llm_release.targets import KUBERNETES_SETTINGS_ENV
from tests.support.cluster_dataplane import JOB_LABEL, ClusterDataPlane
from tests.support.kube_api import PodScript
from tests.support.runs import SPEC_FILE, release_conf, release_id, run_release, spec_file
from tests.support.stack import LiveStack

pytestmark = [pytest.mark.stack, pytest.mark.timeout(600)]
SPEC = load_spec(SPEC_FILE)
STEPS = [step.weight for step in SPEC.traffic.steps]
PROFILE = "cluster_rehearsal"
NAMESPACE = "sap-llm-prod"
BLUE_VERSION, GREEN_VERSION = "1.0.0", "1.1.0"
VERSIONS = {BLUE_VERSION: "sha256:" + "10" * 32, GREEN_VERSION: "sha256:" + "11" * 32}
JOB_IMAGES = {"validator": "registry.example.com/sap-llm/validator@sha256:" + "a1" * 32,
              "loadtest": "registry.example.com/sap-llm/loadtest@sha256:" + "a2" * 32}
JOBS = {job.name for job in SPEC.jobs}
ROUTE_DESCRIPTION = f"HTTPRoute {NAMESPACE}/sap-llm"


@dataclass
class Cluster:
    kube: object
    settings: KubernetesSettings
    plane: ClusterDataPlane
    stack: LiveStack

    def deployment(self, slot: str) -> dict | None:
        return self.kube.get("deployments", f"sap-llm-{slot}", NAMESPACE)

    def route_weights(self) -> dict[str, int]:
        (rule,) = self.kube.get("httproutes", "sap-llm", NAMESPACE)["spec"]["rules"]
        return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


@pytest.fixture(autouse=True)
def notifications(notification_standins):
    return notification_standins


@pytest.fixture
def ledger(airflow_db):
    return Ledger("sqlite:///" + json.loads(os.environ["AIRFLOW_CONN_SAP_LLM_LEDGER"])["host"])


@pytest.fixture
def cluster_spec(tmp_path, monkeypatch) -> Path:
    """The spec with a ``cluster_rehearsal`` profile: the rehearsal's compressed windows, inputs and waivers on the
    kubernetes target, where the cluster's own gates (the kubernetes_* kinds) are measured, not waived."""
    data = yaml.safe_load(spec_file().read_text())  # the project's, or the one a test cut down
    rehearsal = data["profiles"]["rehearsal"]
    cluster_gates = {gate["name"] for gate in data["gates"] if gate["kind"].startswith("kubernetes_")}
    data["profiles"][PROFILE] = {**copy.deepcopy(rehearsal), "target": "kubernetes",
                                 "waivers": [w for w in rehearsal["waivers"] if w["gate"] not in cluster_gates]}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("SAP_LLM_RELEASE_SPEC", str(path))
    return path


@pytest.fixture
def cluster(kube_api, fresh_stack, cluster_spec, tmp_path, monkeypatch):
    """The stand-in seeded as production looks before a release (blue 1.0.0 serving all traffic through the
    HTTPRoute), its data plane running on the local stack, and the release's connections pointing at both. The
    local stack is left as the other rehearsals expect it: blue 1.0.0 alone, nginx all blue."""
    settings = load_kubernetes_settings(write_settings(tmp_path / "kubernetes.yaml", fresh_stack))
    monkeypatch.setenv(KUBERNETES_SETTINGS_ENV, str(tmp_path / "kubernetes.yaml"))
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_KUBERNETES", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config": kube_api.kube_config()}}))
    info = fresh_stack.info
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_API", json.dumps(
        {"conn_type": "generic", "password": info["api_key"],
         "extra": {"jwt_signing_key": Path(info["jwt_secret_file"]).read_text().strip()}}))
    # the public endpoint's certificate is signed by the stack's CA: the workers trust it as a company CA
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text(Path(certifi.where()).read_text() + Path(info["ca_file"]).read_text())
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))

    plane = ClusterDataPlane(kube_api, fresh_stack.dir, settings).start()
    try:
        seed_cluster(kube_api, settings, fresh_stack)
        yield Cluster(kube_api, settings, plane, fresh_stack)
    finally:
        plane.stop()
        fresh_stack.reset()


def write_settings(path: Path, stack: LiveStack) -> Path:
    local = stack.target
    path.write_text(yaml.safe_dump({
        "namespace": NAMESPACE,
        "image": "registry.example.com/sap-llm/server",
        "versions": VERSIONS,
        "replicas": 1,
        "model_pvc": "sap-llm-models",
        "router": "gateway_api",
        "route": "sap-llm",
        "urls": {"router": local.url("router"), "public": local.url("public"), "blue": local.url("blue"),
                 "green": local.url("green")},
        "job_images": JOB_IMAGES,
        "reports_dir": str(stack.dir / "reports"),
        "services": stack.info["services"],
        "prometheus_replicas": stack.info["prometheus_replicas"],
    }))
    return path


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def seed_cluster(kube, settings: KubernetesSettings, stack: LiveStack) -> None:
    """deploy/kubernetes's manifests, the cluster around them (GPU nodes, volumes, secrets), and blue's Deployment
    rendered and applied by the production deployer."""
    for manifest in ("namespace.yaml", "rbac.yaml", "services.yaml", "httproute.yaml", "networkpolicy.yaml"):
        for obj in yaml.safe_load_all((DEPLOY_DIR / manifest).read_text()):
            if obj["kind"] == "Namespace":
                obj["status"] = {"phase": "Active"}
            kube.put(obj)
    for index in range(2):
        kube.put({"apiVersion": "v1", "kind": "Node",
                  "metadata": {"name": f"gpu-node-{index}", "labels": {"nvidia.com/gpu.present": "true",
                                                                       "nvidia.com/gpu.product": "NVIDIA-A100"}},
                  "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "nvidia.com/gpu": "2"},
                             "conditions": [{"type": "Ready", "status": "True"}]}})
    for name, capacity, phase in (("sap-llm-models", "2Ti", "Bound"), ("sap-llm-datasets", "500Gi", "Available")):
        kube.put({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
                  "spec": {"capacity": {"storage": capacity}, "storageClassName": "nvme",
                           "accessModes": ["ReadOnlyMany"], "csi": {"driver": "nvme.csi", "volumeHandle": name}},
                  "status": {"phase": phase}})
    auth, tls = Path(stack.info["jwt_secret_file"]).parent, Path(stack.info["ca_file"]).parent
    secrets = {
        "sap-llm-api-keys": ("Opaque", {"jwt-secret": (auth / "jwt-secret").read_text(),
                                        "api-key-digests": (auth / "api-keys").read_text()}),
        "sap-llm-db-credentials": ("Opaque", {"cosmos-endpoint": "https://cosmos.invalid", "cosmos-key": "k",
                                              "redis-host": "127.0.0.1", "mongodb-uri": "mongodb://mongo.invalid"}),
        "sap-llm-tls": ("kubernetes.io/tls", {"tls.crt": (tls / "router.pem").read_text(),
                                              "tls.key": (tls / "router-key.pem").read_text()}),
    }
    for name, (kind, data) in secrets.items():
        kube.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
                  "type": kind, "data": {key: _b64(value) for key, value in data.items()}})

    deployer = KubernetesDeployer(settings, kube.api_client(), poll_interval_s=0.2)
    assert deployer.deploy("blue", BLUE_VERSION) is True
    ready, seen = deployer.wait_ready("blue", 60)
    assert ready, seen
    assert kube.get("httproutes", "sap-llm", NAMESPACE) is not None


def _failed(states: dict[str, str]) -> list[str]:
    return sorted(task for task, state in states.items() if state == "failed")


def _job_pods(cluster: Cluster) -> list[str]:
    return [pod["metadata"]["name"] for pod in cluster.kube.list("pods")
            if JOB_LABEL in (pod["metadata"].get("labels") or {})]


def test_a_release_on_the_cluster_promotes_through_the_httproute(quiet_stack, cluster, ledger):
    dag_run, states = run_release(release_conf(profile=PROFILE))
    cluster.plane.settle()

    assert dag_run.state == "success", _failed(states)
    assert cluster.plane.errors == []
    # every split the route held, in order; the ledger's record of each step is the route's state at that moment
    wanted = [Weights.green_percent(weight) for weight in STEPS]
    assert cluster.plane.route_weights == [ALL_BLUE, *wanted]
    record = ledger.release_record(release_id(dag_run))
    changes = record["traffic_changes"]
    assert [(c["blue_before"], c["green_before"], c["blue_after"], c["green_after"]) for c in changes] == [
        (*before.as_tuple(), *after.as_tuple()) for before, after in zip([ALL_BLUE, *wanted], wanted, strict=False)]
    assert {c["router"] for c in changes} == {ROUTE_DESCRIPTION}
    # recorded as the route changed: within 4 s, the shortest window apart (the data plane follows the route a few
    # seconds late on 2 cores running four rehearsals at once: 2.97 s seen)
    for change, seen in zip(changes, cluster.plane.route_changes[1:], strict=True):
        assert abs(datetime.fromisoformat(change["changed_at"]).timestamp() - seen.at) < 4, (change, seen)
    assert cluster.route_weights() == {"sap-llm-blue": 0, "sap-llm-green": 100}
    assert cluster.stack.target.router.get_weights() == Weights(0, 100)  # nginx followed the route

    green, blue = cluster.deployment("green"), cluster.deployment("blue")
    (container,) = green["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"registry.example.com/sap-llm/server@{VERSIONS[GREEN_VERSION]}"
    assert green["metadata"]["labels"]["app.kubernetes.io/version"] == GREEN_VERSION
    assert green["spec"]["replicas"] == 1 and green["status"]["readyReplicas"] == 1
    assert blue["spec"]["replicas"] == 0  # decommissioned: scaled to zero
    assert cluster.stack.target.deployer.running_version("green") == GREEN_VERSION
    assert cluster.stack.target.deployer.running_version("blue") is None

    # the jobs ran as pods, their results the real entrypoints' measurements, and no pod was left behind
    jobs = {row["job"]: row for row in record["job_results"]}
    assert set(jobs) == JOBS
    ran = {run.job: run for run in cluster.plane.jobs}
    assert set(ran) == JOBS
    for name, row in jobs.items():
        assert (row["runner"], row["exit_code"], row["passed"]) == ("kubernetes_pod", 0, 1), (name, row["detail"])
        assert row["image"] == JOB_IMAGES[SPEC.job(name).image]
        assert json.loads(row["result_json"]) == ran[name].result
    assert f"--url {cluster.stack.target.url('green')}" in " ".join(ran["green_smoke"].argv)
    assert ran["load_test"].result["docs_per_hour"] >= 5000
    assert _job_pods(cluster) == []

    verdicts = {row["gate"]: row for row in record["gate_results"]}
    assert len(verdicts) == len(SPEC.gates)
    assert [g for g, row in verdicts.items() if row["verdict"] == "failed"] == []
    cluster_gates = [gate.name for gate in SPEC.gates if gate.kind.startswith("kubernetes_")]
    assert cluster_gates and all(verdicts[g]["verdict"] == "passed" for g in cluster_gates)
    assert verdicts["smoke_documents"]["verdict"] == "passed"
    assert verdicts["data_audit_logging"]["verdict"] == "passed"  # blue's log read through its pod
    events = {e["event"]: e["detail"] for e in record["release_events"]}
    assert list(events) == ["started", "green_deployed", "green_ready", "blue_decommissioned", "promoted"]
    assert f"deployment {NAMESPACE}/sap-llm-green" in events["green_ready"]  # the Deployment's own rollout


def test_an_slo_breach_on_the_cluster_rolls_the_httproute_back(quiet_stack, traffic_spec, cluster, ledger):
    breach_at = 20
    cluster.stack.when_green_weight(breach_at, lambda: cluster.stack.set_faults("green", error_rate=1.0))

    dag_run, states = run_release(release_conf(profile=PROFILE))
    cluster.plane.settle()

    assert dag_run.state == "failed"
    assert states[f"traffic_shift.shift_to_{breach_at:03d}"] == "failed"
    assert states["rollback.rollback_to_blue"] == "success"
    assert states["decommission_blue.remove_blue"] == "skipped"
    assert cluster.plane.errors == []
    assert cluster.plane.route_weights == [ALL_BLUE, Weights(95, 5), Weights(80, 20), ALL_BLUE]
    assert cluster.route_weights() == {"sap-llm-blue": 100, "sap-llm-green": 0}
    assert cluster.stack.target.router.get_weights() == ALL_BLUE

    assert cluster.deployment("green")["spec"]["replicas"] == 0
    blue = cluster.deployment("blue")
    assert (blue["spec"]["replicas"], blue["metadata"]["labels"]["app.kubernetes.io/version"]) == (1, BLUE_VERSION)
    assert cluster.stack.target.deployer.running_version("green") is None
    assert cluster.stack.target.deployer.running_version("blue") == BLUE_VERSION

    record = ledger.release_record(release_id(dag_run))
    assert [c["green_after"] for c in record["traffic_changes"]] == [5, 20, 0]
    assert {c["router"] for c in record["traffic_changes"]} == {ROUTE_DESCRIPTION}
    (rollback,) = record["rollbacks"]
    assert (rollback["blue_weight_after"], rollback["green_removed"], rollback["blue_healthy"]) == (100, 1, 1)
    assert f"step_{breach_at:03d}" in rollback["cause"] and "error_rate" in rollback["cause"]
    assert record["release_events"][-1]["event"] == "rolled_back"
    assert states["rollback.watch_blue_recovery"] == "success"
    # these settings name no ingress-nginx controller whose log would show the switch: nothing proves no loss
    (counted,) = record["rollback_lost_requests"]
    assert states["rollback.count_lost_requests"] == "failed"
    assert (counted["verdict"], counted["requests"]) == ("failed", None)
    assert "names no router access log" in counted["detail"]
    assert [job["job"] for job in record["job_results"]] == ["dataset_audit"]  # ran as a pod, which is gone
    assert _job_pods(cluster) == []


def test_a_gpu_pod_that_fails_fails_its_job_with_the_pods_log_and_touches_no_traffic(cluster, ledger):
    """The evaluation pod dies (exit 1, no result): the job fails with the pod's log tail, the ledger keeps it, the
    gates reading the job never pass, and the release ends before any traffic moves."""

    def out_of_memory(pod: dict) -> PodScript | None:
        if (pod["metadata"].get("labels") or {}).get(JOB_LABEL) != "model_evaluation":
            return None
        return PodScript(pod["metadata"]["name"], exit_code=1, log="loading weights\nCUDA error: out of memory")

    cluster.kube.on_pod(out_of_memory)
    dag_run, states = run_release(release_conf(profile=PROFILE))

    assert dag_run.state == "failed"
    assert states["model_validation.run_model_evaluation"] == "failed"
    assert states["model_validation.vision_encoder_classification_accuracy"] == "upstream_failed"
    assert states["traffic_shift.shift_to_005"] == "upstream_failed"
    record = ledger.release_record(release_id(dag_run))
    (job,) = [row for row in record["job_results"] if row["job"] == "model_evaluation"]
    assert (job["runner"], job["exit_code"], job["result_json"]) == ("kubernetes_pod", 1, None)
    assert "CUDA error: out of memory" in job["detail"]
    assert record["traffic_changes"] == []
    assert cluster.route_weights() == {"sap-llm-blue": 100, "sap-llm-green": 0}
    assert _job_pods(cluster) == []


def test_a_version_the_clusters_settings_pin_no_image_for_is_refused_before_anything(
        traffic_spec, kube_api, cluster_spec, tmp_path, monkeypatch, ledger):
    """The trigger form offers the versions the settings pin; a run asking for another (through the REST API, say)
    fails ``start_release`` naming the field and the deployable versions, with nothing recorded or touched."""
    settings = yaml.safe_load((DEPLOY_DIR / "settings.example.yaml").read_text())
    (tmp_path / "kubernetes.yaml").write_text(yaml.safe_dump({**settings, "versions": VERSIONS}))
    monkeypatch.setenv(KUBERNETES_SETTINGS_ENV, str(tmp_path / "kubernetes.yaml"))
    monkeypatch.setenv("AIRFLOW_CONN_SAP_LLM_KUBERNETES", json.dumps(
        {"conn_type": "kubernetes", "extra": {"kube_config": kube_api.kube_config()}}))

    dag_run, states = run_release(release_conf(profile=PROFILE, version="9.9.9"))

    assert dag_run.state == "failed" and _failed(states) == ["finish_release", "start_release"]
    assert ledger.release_record(release_id(dag_run))["releases"] == []
    assert kube_api.list("deployments") == []
