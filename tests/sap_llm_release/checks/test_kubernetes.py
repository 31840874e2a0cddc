"""The cluster checks through the official client against the Kubernetes API stand-in: each passes, fails with what
it measured, and fails with the reason when the API cannot be asked; a target without a cluster cannot be checked."""

from __future__ import annotations

import base64
import datetime

import pytest
from pydantic import ValidationError

from sap_llm_release.checks.base import CheckContext, CheckUnavailable
from sap_llm_release.checks.kubernetes import (
    KubernetesAccess,
    KubernetesGpuNodes,
    KubernetesNamespace,
    KubernetesNetworkPolicies,
    KubernetesRbac,
    KubernetesRbacParams,
    KubernetesSecrets,
    KubernetesStorage,
    KubernetesTlsSecret,
)
from sap_llm_release.checks.kubernetes_posture import KubernetesImageDigests, KubernetesRbacDrift, KubernetesSecretAge
from sap_llm_release.checks.registry import CHECK_KINDS
from sap_llm_release.evidence import Threshold, Verdict

NAMESPACE = "sap-llm-prod"
EXACTLY_ONE, NONE_MISSING, AT_LEAST_TWO = (Threshold(op="==", value=1), Threshold(op="==", value=0),
                                           Threshold(op=">=", value=2))
AT_LEAST_2TB = Threshold(op=">=", value=2_000_000_000_000, unit="bytes")
AT_LEAST_14_DAYS = Threshold(op=">=", value=14, unit="days")
SECRET_VALUE = "s3cr3t-signing-key-never-shown"

EVERY_KIND = [
    (KubernetesNamespace, {}),
    (KubernetesGpuNodes, {"accepted_models": ["NVIDIA-A100"]}),
    (KubernetesStorage, {}),
    (KubernetesNetworkPolicies, {}),
    (KubernetesSecrets, {"names": ["sap-llm-api-keys"]}),
    (KubernetesTlsSecret, {"name": "sap-llm-tls"}),
    (KubernetesRbac, {"service_accounts": ["sap-llm"]}),
    (KubernetesImageDigests, {}),
    (KubernetesSecretAge, {"names": ["sap-llm-api-keys"]}),
    (KubernetesRbacDrift, {}),
]


@pytest.fixture
def access(kube_api):
    return KubernetesAccess(kube_api.api_client(), NAMESPACE, request_timeout_s=2)


def run(check_class, params: dict, threshold: Threshold, access: KubernetesAccess | None):
    check = check_class()
    return check.run(check.Params(**params), threshold, CheckContext(service="sap-llm", kubernetes=access))


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def node(name: str, gpus: str | None, *, ready: bool = True, cordoned: bool = False, product: str = "") -> dict:
    labels = {"nvidia.com/gpu.product": product} if product else {}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"unschedulable": cordoned},
            "status": {"allocatable": {"cpu": "32", **({"nvidia.com/gpu": gpus} if gpus else {})},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def volume(name: str, capacity: str, phase: str, storage_class: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
            "spec": {"capacity": {"storage": capacity}, "storageClassName": storage_class,
                     "accessModes": ["ReadWriteOnce"], "hostPath": {"path": f"/data/{name}"}},
            "status": {"phase": phase}}


def secret(name: str, data: dict[str, str], kind: str = "Opaque") -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE}, "type": kind,
            "data": {key: b64(value) for key, value in data.items()}}


def certificate(days: float) -> tuple[bytes, bytes]:
    """A self-signed certificate valid for ``days`` more days (negative: expired), and its key, in PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.sap-llm.prod")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=400))
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_every_kind_is_registered():
    assert {name for name in CHECK_KINDS if name.startswith("kubernetes_")} == {
        "kubernetes_namespace", "kubernetes_gpu_nodes", "kubernetes_storage", "kubernetes_network_policies",
        "kubernetes_secrets", "kubernetes_tls_secret", "kubernetes_rbac", "kubernetes_image_digests",
        "kubernetes_secret_age", "kubernetes_rbac_drift"}


@pytest.mark.parametrize(("check_class", "params"), EVERY_KIND)
def test_without_a_cluster_nothing_can_be_checked(check_class, params):
    with pytest.raises(CheckUnavailable, match="this target provides no kubernetes"):
        run(check_class, params, EXACTLY_ONE, None)


@pytest.mark.parametrize(("check_class", "params"), EVERY_KIND)
def test_an_api_error_fails_with_the_reason(kube_api, access, check_class, params):
    kube_api.fail_next("GET", "/api", 500)
    evidence = run(check_class, params, EXACTLY_ONE, access)
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, None, "== 1")
    assert "failed: 500 Internal Server Error: injected failure for GET /api" in evidence.detail


@pytest.mark.parametrize(("check_class", "params"), EVERY_KIND)
def test_an_unreachable_api_fails_with_the_reason(free_port, check_class, params):
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{free_port}"
    evidence = run(check_class, params, EXACTLY_ONE, KubernetesAccess(client.ApiClient(configuration), NAMESPACE))
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert "failed: MaxRetryError" in evidence.detail and "Connection refused" in evidence.detail


def test_namespace_active(kube_api, access):
    kube_api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE},
                  "status": {"phase": "Active"}})
    evidence = run(KubernetesNamespace, {}, EXACTLY_ONE, access)
    assert (evidence.verdict, evidence.measured, evidence.detail) == (
        Verdict.PASSED, 1, f"namespace {NAMESPACE} is Active")


def test_namespace_missing_or_terminating(kube_api, access):
    evidence = run(KubernetesNamespace, {}, EXACTLY_ONE, access)
    assert (evidence.verdict, evidence.measured, evidence.detail) == (
        Verdict.FAILED, 0, f"namespace {NAMESPACE} not found")
    kube_api.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sap-llm-old"},
                  "status": {"phase": "Terminating"}})
    evidence = run(KubernetesNamespace, {"namespace": "sap-llm-old"}, EXACTLY_ONE, access)
    assert (evidence.verdict, evidence.measured, evidence.detail) == (
        Verdict.FAILED, 0, "namespace sap-llm-old is Terminating")


@pytest.fixture
def gpu_cluster(kube_api):
    for seeded in (node("gpu-a", "1", product="NVIDIA-A100-SXM4-80GB"), node("gpu-b", "2", product="NVIDIA-A10"),
                   node("gpu-c", "1", ready=False, product="NVIDIA-A10"),
                   node("gpu-d", "1", cordoned=True, product="NVIDIA-A10"), node("cpu-e", None)):
        kube_api.put(seeded)
    return kube_api


A10_A100 = {"accepted_models": ["NVIDIA-A10", "NVIDIA-A100"]}


def test_gpu_nodes_counts_ready_schedulable_nodes_of_accepted_models(gpu_cluster, access):
    evidence = run(KubernetesGpuNodes, A10_A100, AT_LEAST_TWO, access)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 2)
    assert evidence.detail == (
        "2 of 5 nodes ready with nvidia.com/gpu (NVIDIA-A10/NVIDIA-A100): gpu-a (1 nvidia.com/gpu, "
        "NVIDIA-A100-SXM4-80GB), gpu-b (2 nvidia.com/gpu, NVIDIA-A10); not counted: cpu-e has no nvidia.com/gpu, "
        "gpu-c (1 nvidia.com/gpu, NVIDIA-A10) not Ready, gpu-d (1 nvidia.com/gpu, NVIDIA-A10) cordoned")


def test_gpu_nodes_of_other_models_do_not_count(kube_api, access):
    for seeded in (node("t4", "1", product="Tesla-T4"), node("a1000", "1", product="NVIDIA-A1000"),
                   node("a10g", "1", product="NVIDIA-A10G"), node("unlabelled", "4"),
                   node("a100", "8", product="NVIDIA-A100-PCIE-40GB")):
        kube_api.put(seeded)
    evidence = run(KubernetesGpuNodes, A10_A100, AT_LEAST_TWO, access)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1)
    for refused in ("t4 (1 nvidia.com/gpu, Tesla-T4) is not an accepted model (NVIDIA-A10, NVIDIA-A100)",
                    "a1000 (1 nvidia.com/gpu, NVIDIA-A1000) is not an accepted model",
                    "a10g (1 nvidia.com/gpu, NVIDIA-A10G) is not an accepted model",
                    "unlabelled (4 nvidia.com/gpu) has no nvidia.com/gpu.product label: GPU model unknown"):
        assert refused in evidence.detail


def test_gpu_nodes_need_accepted_models():
    with pytest.raises(ValueError, match="accepted_models"):
        KubernetesGpuNodes.Params()


def test_gpu_nodes_of_a_product_too_few(gpu_cluster, access):
    selector = "nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB"
    evidence = run(KubernetesGpuNodes, {"label_selector": selector, **A10_A100}, AT_LEAST_TWO, access)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1)
    assert evidence.detail.startswith(f"1 of 1 nodes with {selector} ready with nvidia.com/gpu (NVIDIA-A10/NVIDIA-A100"
                                      "): gpu-a")


def test_gpu_nodes_none_at_all(access):
    evidence = run(KubernetesGpuNodes, A10_A100, AT_LEAST_TWO, access)
    assert (evidence.verdict, evidence.measured, evidence.detail) == (
        Verdict.FAILED, 0, "0 of 0 nodes ready with nvidia.com/gpu (NVIDIA-A10/NVIDIA-A100): none")


@pytest.fixture
def volumes(kube_api):
    for seeded in (volume("nvme-1", "1Ti", "Bound", "nvme"), volume("nvme-2", "1000Gi", "Available", "nvme"),
                   volume("nvme-3", "500G", "Released", "nvme"), volume("disk-1", "2T", "Bound", "standard")):
        kube_api.put(seeded)
    return kube_api


def test_storage_sums_usable_volumes_of_a_class(volumes, access):
    evidence = run(KubernetesStorage, {"storage_class": "nvme"}, AT_LEAST_2TB, access)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 2**40 + 1000 * 2**30)
    assert evidence.detail == ("2 persistent volumes of class nvme Available or Bound: 2.17 TB; "
                               "not counted: nvme-3 Released")
    everything = run(KubernetesStorage, {}, AT_LEAST_2TB, access)
    assert everything.measured == 2**40 + 1000 * 2**30 + 2 * 10**12


def test_storage_too_small(volumes, access):
    evidence = run(KubernetesStorage, {"storage_class": "standard"}, Threshold(op=">", value=2 * 10**12), access)
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, 2 * 10**12, "> 2000000000000")


def test_network_policies_counted_in_the_namespace(kube_api, access):
    evidence = run(KubernetesNetworkPolicies, {}, Threshold(op=">=", value=1), access)
    assert (evidence.verdict, evidence.measured, evidence.detail) == (
        Verdict.FAILED, 0, f"0 network policies in {NAMESPACE}: none")
    for name, namespace in (("default-deny-ingress", NAMESPACE), ("sap-llm", NAMESPACE), ("other", "default")):
        kube_api.put({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                      "metadata": {"name": name, "namespace": namespace},
                      "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}})
    evidence = run(KubernetesNetworkPolicies, {}, Threshold(op=">=", value=1), access)
    assert (evidence.verdict, evidence.measured, evidence.detail) == (
        Verdict.PASSED, 2, f"2 network policies in {NAMESPACE}: default-deny-ingress, sap-llm")


def test_secrets_present_without_showing_a_value(kube_api, access):
    kube_api.put(secret("sap-llm-api-keys", {"jwt-secret": SECRET_VALUE, "api-key-digests": "ab" * 32}))
    kube_api.put(secret("sap-llm-db-credentials", {"cosmos-key": SECRET_VALUE}))
    evidence = run(KubernetesSecrets, {"names": ["sap-llm-api-keys", "sap-llm-db-credentials"]}, NONE_MISSING,
                   access)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0)
    assert evidence.detail == (f"2 of 2 secrets in {NAMESPACE}: sap-llm-api-keys present (Opaque, 2 keys); "
                               "sap-llm-db-credentials present (Opaque, 1 keys)")
    assert SECRET_VALUE not in repr(evidence) and b64(SECRET_VALUE) not in repr(evidence)


def test_secrets_missing_or_empty_are_counted(kube_api, access):
    kube_api.put(secret("sap-llm-api-keys", {}))
    evidence = run(KubernetesSecrets, {"names": ["sap-llm-api-keys", "sap-llm-db-credentials"]}, NONE_MISSING,
                   access)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 2)
    assert evidence.detail == (f"0 of 2 secrets in {NAMESPACE}: sap-llm-api-keys empty; "
                               "sap-llm-db-credentials missing")


def test_tls_secret_days_left(kube_api, access):
    cert, key = certificate(days=30)
    kube_api.put(secret("sap-llm-tls", {"tls.crt": cert.decode(), "tls.key": key.decode()}, "kubernetes.io/tls"))
    evidence = run(KubernetesTlsSecret, {"name": "sap-llm-tls"}, AT_LEAST_14_DAYS, access)
    assert evidence.verdict is Verdict.PASSED and 29.9 < evidence.measured <= 30
    assert evidence.detail.startswith(f"secret {NAMESPACE}/sap-llm-tls: subject CN=api.sap-llm.prod, "
                                      "issuer CN=api.sap-llm.prod, notAfter ")
    assert "PRIVATE KEY" not in repr(evidence) and b64(key)[:40] not in repr(evidence)


def test_tls_secret_expired(kube_api, access):
    cert, key = certificate(days=-2)
    kube_api.put(secret("sap-llm-tls", {"tls.crt": cert.decode(), "tls.key": key.decode()}, "kubernetes.io/tls"))
    evidence = run(KubernetesTlsSecret, {"name": "sap-llm-tls"}, AT_LEAST_14_DAYS, access)
    assert evidence.verdict is Verdict.FAILED and -2.1 < evidence.measured < -1.9


@pytest.mark.parametrize(("seeded", "detail"), [
    (None, "secret sap-llm-prod/sap-llm-tls not found"),
    (secret("sap-llm-tls", {"tls.crt": "x"}), "secret sap-llm-prod/sap-llm-tls is of type Opaque, not "
                                              "kubernetes.io/tls with a tls.crt"),
    (secret("sap-llm-tls", {"tls.crt": "not a certificate", "tls.key": "k"}, "kubernetes.io/tls"),
     "secret sap-llm-prod/sap-llm-tls tls.crt is not a PEM certificate"),
])
def test_tls_secret_that_holds_no_certificate_fails(kube_api, access, seeded, detail):
    if seeded:
        kube_api.put(seeded)
    evidence = run(KubernetesTlsSecret, {"name": "sap-llm-tls"}, AT_LEAST_14_DAYS, access)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, None)
    assert evidence.detail.startswith(detail)


def test_rbac_counts_missing_service_accounts_and_bindings(kube_api, access):
    for name in ("sap-llm", "sap-llm-release"):
        kube_api.put({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": NAMESPACE}})
    params = {"service_accounts": ["sap-llm", "sap-llm-release"], "role_bindings": ["sap-llm-release"]}
    evidence = run(KubernetesRbac, params, NONE_MISSING, access)
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 1)
    assert evidence.detail == (f"2 of 3 present in {NAMESPACE}: ServiceAccount sap-llm present; "
                               "ServiceAccount sap-llm-release present; RoleBinding sap-llm-release missing")
    kube_api.put({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                  "metadata": {"name": "sap-llm-release", "namespace": NAMESPACE},
                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sap-llm-release"},
                  "subjects": [{"kind": "ServiceAccount", "name": "sap-llm-release", "namespace": NAMESPACE}]})
    evidence = run(KubernetesRbac, params, NONE_MISSING, access)
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0)
    assert evidence.detail.endswith("RoleBinding sap-llm-release present (binds Role sap-llm-release)")


def test_rbac_must_name_something():
    with pytest.raises(ValidationError, match="name at least one of service_accounts, role_bindings"):
        KubernetesRbacParams()
