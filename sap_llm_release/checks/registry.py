"""The one place that maps a gate's ``kind`` to its check; an unknown kind is an error, never a fallback."""

from __future__ import annotations

from sap_llm_release.checks.alertmanager import AlertmanagerReceivers
from sap_llm_release.checks.attestation import Attestation
from sap_llm_release.checks.auth import ApiAuth
from sap_llm_release.checks.base import Check
from sap_llm_release.checks.cost import CostPerDocument
from sap_llm_release.checks.http import HttpProbe, SmokeDocuments
from sap_llm_release.checks.kubernetes import (
    KubernetesGpuNodes,
    KubernetesNamespace,
    KubernetesNetworkPolicies,
    KubernetesRbac,
    KubernetesSecrets,
    KubernetesStorage,
    KubernetesTlsSecret,
)
from sap_llm_release.checks.kubernetes_posture import (
    KubernetesImageDigests,
    KubernetesRbacDrift,
    KubernetesSecretAge,
)
from sap_llm_release.checks.logs import LogScan
from sap_llm_release.checks.privacy import AuditLog, PiiMasking
from sap_llm_release.checks.prometheus import (
    PrometheusFlag,
    PrometheusQuery,
    PrometheusReplicas,
    PrometheusRules,
    PrometheusTargets,
)
from sap_llm_release.checks.recovery import DrDrill, RollbackTested
from sap_llm_release.checks.reports import JobResult, ReportMetric
from sap_llm_release.checks.services import ServicePing
from sap_llm_release.checks.stores import StoreQuery
from sap_llm_release.checks.target import DeploymentReady, RouterWeight
from sap_llm_release.checks.tls import TlsEndpoint
from sap_llm_release.checks.vulnerabilities import ScanCoverage, ScanReportAge, VulnerabilityFindings

CHECK_KINDS: dict[str, type[Check]] = {
    "alertmanager_receivers": AlertmanagerReceivers,
    "api_auth": ApiAuth,
    "attestation": Attestation,
    "audit_log": AuditLog,
    "cost_per_document": CostPerDocument,
    "deployment_ready": DeploymentReady,
    "dr_drill": DrDrill,
    "http_probe": HttpProbe,
    "job_result": JobResult,
    "kubernetes_gpu_nodes": KubernetesGpuNodes,
    "kubernetes_image_digests": KubernetesImageDigests,
    "kubernetes_namespace": KubernetesNamespace,
    "kubernetes_network_policies": KubernetesNetworkPolicies,
    "kubernetes_rbac": KubernetesRbac,
    "kubernetes_rbac_drift": KubernetesRbacDrift,
    "kubernetes_secret_age": KubernetesSecretAge,
    "kubernetes_secrets": KubernetesSecrets,
    "kubernetes_storage": KubernetesStorage,
    "kubernetes_tls_secret": KubernetesTlsSecret,
    "pii_masking": PiiMasking,
    "log_scan": LogScan,
    "prometheus_flag": PrometheusFlag,
    "prometheus_query": PrometheusQuery,
    "prometheus_replicas": PrometheusReplicas,
    "prometheus_rules": PrometheusRules,
    "prometheus_targets": PrometheusTargets,
    "report_metric": ReportMetric,
    "rollback_tested": RollbackTested,
    "router_weight": RouterWeight,
    "scan_coverage": ScanCoverage,
    "scan_report_age": ScanReportAge,
    "service_ping": ServicePing,
    "smoke_documents": SmokeDocuments,
    "store_query": StoreQuery,
    "tls_endpoint": TlsEndpoint,
    "vulnerability_findings": VulnerabilityFindings,
}

