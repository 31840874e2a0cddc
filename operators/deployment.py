"""How this project's Airflow runs as separate components, described once: the executor, the settings every
component gets, the components started and the connections the DAGs read. The Helm values for the official Apache
Airflow chart are generated from it, and the compose file is checked against it (tests/test_packaging.py), so the
two do not drift.

    .venv/bin/python -m operators.deployment [--check]   # writes deploy/helm/airflow-values.yaml (or checks it)

The values were written for the chart's 1.18 line (Airflow 3 components: api-server, dag-processor); Helm cannot run
here, so they are checked for their keys, not rendered.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from pathlib import Path

import yaml

from operators.notifications import PAGERDUTY_CONN_ID, SLACK_CONN_ID
from operators.runtime import (
    API_CONN_ID,
    KUBERNETES_CONN_ID,
    LEDGER_CONN_ID,
    PROMETHEUS_CONN_ID,
    SERVICE_CONN_IDS,
    release_spec_path,
)
from sap_llm_release.spec import ReleaseSpec, load_spec

ROOT = Path(__file__).resolve().parent.parent
VALUES_FILE = ROOT / "deploy" / "helm" / "airflow-values.yaml"
AIRFLOW_VERSION = "3.3.2"
HELM_CHART_VERSION = "1.18.0"
EXECUTOR = "CeleryExecutor"
PROJECT_DIR = "/opt/sap-llm-release"


def settings(project_dir: str | Path = PROJECT_DIR) -> dict[str, str]:
    """Airflow settings every component gets, beyond the executor and its databases, with the project at
    ``project_dir``."""
    return {
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": f"{project_dir}/dags",
        "AIRFLOW__CORE__PLUGINS_FOLDER": f"{project_dir}/plugins",
        # a task whose worker died (a node lost, the OOM killer) is failed after a minute without a heartbeat, not
        # Airflow's default five: the rollback task is then retried on another worker that much sooner
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
    }


SETTINGS = settings()  # in the project's image
# component -> the `airflow` command that starts it
COMPONENTS = {
    "apiserver": "api-server",
    "scheduler": "scheduler",
    "dag-processor": "dag-processor",
    "triggerer": "triggerer",
    "worker": "celery worker",
}
SIGNING_CONN_ID = "sap_llm_slack_signing"  # plugins/slack_approvals.py: the Slack request signing secret
# the connections the DAGs and plugins read; the ledger and Prometheus are required, the rest as the target needs
REQUIRED_CONNECTIONS = (LEDGER_CONN_ID, PROMETHEUS_CONN_ID)
CONNECTIONS = (*REQUIRED_CONNECTIONS, SLACK_CONN_ID, SIGNING_CONN_ID, PAGERDUTY_CONN_ID, KUBERNETES_CONN_ID,
               API_CONN_ID, *SERVICE_CONN_IDS.values())
# the triggerer runs every SLO window and approval of every release at once (benchmarks/trigger_scale.py: 500
# windows in one triggerer at a third of a core)
TRIGGERER_CAPACITY = 500


def executor_settings(executor: str, metadata_url: str, api_url: str, broker_url: str | None = None) -> dict[str, str]:
    """The executor's settings: the metadata database, the API server the workers report to, and for Celery the
    broker and the result backend (Celery's table in the metadata database)."""
    env = {
        "AIRFLOW__CORE__EXECUTOR": executor,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
    }
    if executor == "CeleryExecutor":
        if not broker_url:
            raise ValueError("the CeleryExecutor needs a broker URL (Redis)")
        env["AIRFLOW__CELERY__BROKER_URL"] = broker_url
        env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + re.sub(r"^postgresql\+\w+", "postgresql", metadata_url)
    return env


def components(executor: str = EXECUTOR) -> dict[str, str]:
    """The components started for ``executor``: Celery workers only for the CeleryExecutor."""
    return {name: command for name, command in COMPONENTS.items() if name != "worker" or executor == "CeleryExecutor"}


def local_environment(home: Path, executor: str, metadata_url: str, api_port: int,
                      broker_url: str | None = None) -> dict[str, str]:
    """The environment of this project's Airflow run from this checkout on one machine (the rehearsals): the image's
    settings with the checkout's paths, the executor's, the API on a loopback port, one JWT secret every component
    shares (the API server checks the tokens the scheduler gives tasks), every DAG paused until the rehearsal unpauses
    the ones it runs (no scheduled audit runs beside a release rehearsal), the spec's people and attesters as UI users.
    The caller adds the connections."""
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        **settings(ROOT),
        **executor_settings(executor, metadata_url, f"http://127.0.0.1:{api_port}", broker_url),
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",  # the rehearsal unpauses the DAGs it runs
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": rehearsal_users(load_spec(release_spec_path())),
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",  # two cores: more tasks at once only thrash
        # the checkout's DAG files do not change during a rehearsal: parsed at start, not every 30 s (a tenth of a
        # core on two cores)
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
    }


def rehearsal_users(spec: ReleaseSpec) -> str:
    """The simple auth manager's users for a rehearsal (``name:role``, its passwords generated): the admin, and the
    spec's people and attesters as users who may trigger, answer approvals and confirm attestations."""
    people = [*spec.people, *(user for users in spec.attesters.values() for user in users)]
    return ",".join(["admin:admin", *(f"{user}:user" for user in dict.fromkeys(people) if user != "admin")])


def env_name(conn_id: str) -> str:
    """The environment variable Airflow reads a connection from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def helm_values() -> dict:
    """The official chart's values: the project's image, the executor, the settings, every connection from a
    Kubernetes Secret (``sap-llm-airflow-connections``, one key per connection id), the Airflow 3 components."""
    return {
        "airflowVersion": AIRFLOW_VERSION,
        "images": {"airflow": {"repository": "registry.example.com/sap-llm/release-airflow", "tag": AIRFLOW_VERSION,
                               "pullPolicy": "IfNotPresent"}},
        "executor": EXECUTOR,
        "env": [{"name": name, "value": value} for name, value in SETTINGS.items()],
        "secret": [{"envName": env_name(conn_id), "secretName": "sap-llm-airflow-connections", "secretKey": conn_id}
                   for conn_id in CONNECTIONS],
        "data": {"metadataSecretName": "sap-llm-airflow-metadata", "brokerUrlSecretName": "sap-llm-airflow-broker"},
        "postgresql": {"enabled": False},
        "redis": {"enabled": False},
        "apiServer": {"replicas": 2},
        "scheduler": {"replicas": 2},  # HA schedulers on PostgreSQL
        "dagProcessor": {"enabled": True, "replicas": 1},
        "triggerer": {"replicas": 2},
        "workers": {"replicas": 2},
        "config": {"triggerer": {"capacity": str(TRIGGERER_CAPACITY)}},
    }


def values_text() -> str:
    header = (f"# Generated by `python -m operators.deployment` from operators/deployment.py; do not edit.\n"
              f"# Values for the official Apache Airflow Helm chart {HELM_CHART_VERSION}, Airflow {AIRFLOW_VERSION}.\n")
    return header + yaml.safe_dump(helm_values(), sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the committed values are stale")
    args = parser.parse_args(argv)
    if args.check:
        if VALUES_FILE.read_text() != values_text():
            print(f"{VALUES_FILE} is stale: run python -m operators.deployment", file=sys.stderr)
            return 1
        return 0
    VALUES_FILE.parent.mkdir(parents=True, exist_ok=True)
    VALUES_FILE.write_text(values_text())
    print(f"wrote {VALUES_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
