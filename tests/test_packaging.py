"""What CI cannot build here (no Docker engine) is still checked: every path the Dockerfile and the compose file
name exists, and the compose stack wires the connections the DAG reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from operators import deployment

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_copies_existing_paths():
    copies = re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    sources = [source for line in copies for source in line.split()]
    assert "sap_llm_release" in sources and "operators" in sources and "sql" in sources
    missing = [source for source in sources if not (ROOT / source).exists()]
    assert missing == []


def test_compose_services_and_mounted_files_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    services = compose["services"]
    expected = {"postgres", "redis", "prometheus", "airflow-scheduler", "airflow-triggerer", "airflow-worker"}
    assert expected <= set(services)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_compose_runs_airflow_as_the_deployment_description_says():
    """The compose file and the Helm values come from one description (operators/deployment.py): the executor, the
    settings, the connections the DAGs need, and one service per component, started with its command."""
    services = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == deployment.EXECUTOR
    assert {name: env.get(name) for name in deployment.SETTINGS} == deployment.SETTINGS
    executor = deployment.executor_settings(deployment.EXECUTOR, env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
                                            "http://airflow-apiserver:8080", env["AIRFLOW__CELERY__BROKER_URL"])
    assert {name: env.get(name) for name in executor} == executor  # the result backend, the execution API's URL
    assert {deployment.env_name(conn_id) for conn_id in deployment.REQUIRED_CONNECTIONS} <= set(env)
    started = {name.removeprefix("airflow-"): service["command"] for name, service in services.items()
               if name.startswith("airflow-") and name != "airflow-init"}
    assert started == deployment.components(deployment.EXECUTOR) == deployment.COMPONENTS


def test_the_helm_values_are_what_the_deployment_description_generates():
    assert deployment.main(["--check"]) == 0, "deploy/helm/airflow-values.yaml is stale: python -m operators.deployment"
    values = yaml.safe_load(deployment.VALUES_FILE.read_text())
    assert values["executor"] == deployment.EXECUTOR and values["dagProcessor"]["enabled"] is True
    assert {entry["envName"] for entry in values["secret"]} == {deployment.env_name(c) for c in deployment.CONNECTIONS}
    assert {entry["name"]: entry["value"] for entry in values["env"]} == deployment.SETTINGS


def test_the_slack_plugins_signing_connection_is_deployed():
    plugin = (ROOT / "plugins" / "slack_approvals.py").read_text()
    assert f'SIGNING_CONN_ID = "{deployment.SIGNING_CONN_ID}"' in plugin


def _build_context(dockerfile: Path) -> Path:
    """The directory a Dockerfile is built from: its own, unless its first line names another."""
    declared = re.match(r"# build context: (\S+)", dockerfile.read_text())
    return ROOT / declared.group(1) if declared else dockerfile.parent


def test_every_inference_image_dockerfile_copies_existing_paths_and_runs_as_non_root():
    dockerfiles = sorted((ROOT / "inference_images").glob("*/Dockerfile"))
    assert len(dockerfiles) >= 2
    for dockerfile in dockerfiles:
        text, context = dockerfile.read_text(), _build_context(dockerfile)
        copies = re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+$", text, re.MULTILINE)
        missing = [source for line in copies for source in line.split() if not (context / source).exists()]
        assert missing == [], dockerfile
        assert re.search(r"^USER\s+(?!root)\S+", text, re.MULTILINE), f"{dockerfile} runs as root"
        entrypoint = json.loads(re.search(r"^ENTRYPOINT\s+(\[.*\])$", text, re.MULTILINE).group(1))
        program = entrypoint[-1]
        copied = [context / source for line in copies for source in line.split()]
        if entrypoint[-2:-1] == ["-m"]:  # a module: a copied package of that name with a __main__
            assert any(path.name == program and (path / "__main__.py").exists() for path in copied), dockerfile
        else:
            assert any(path.name == Path(program).name and path.is_file() for path in copied), dockerfile


def test_validator_image_pins_its_requirements_and_takes_torch_from_the_base_image():
    requirements = (ROOT / "inference_images" / "validator" / "requirements.txt").read_text().splitlines()
    pins = [line for line in requirements if line and not line.startswith("#")]
    assert pins and all(re.match(r"^[A-Za-z0-9_.-]+==[^=]+$", line) for line in pins)
    assert not any(line.lower().startswith(("torch==", "nvidia-cudnn")) for line in pins)
    assert "transformers==" in "\n".join(pins) and "jsonschema==" in "\n".join(pins)
    base = re.search(r"^FROM\s+(\S+)", (ROOT / "inference_images" / "validator" / "Dockerfile").read_text(),
                     re.MULTILINE).group(1)
    assert base.startswith("pytorch/pytorch:2.13.0-cuda")


def test_the_rehearsal_runs_the_components_the_deployment_description_names(tmp_path):
    """The Celery rehearsal (tests/dags/test_release_on_celery.py, ``make demo EXECUTOR=celery``) starts what the
    compose file and the Helm values run, with the same settings, the checkout's paths in place of the image's."""
    url = "postgresql+psycopg2://postgres@127.0.0.1:5999/airflow"
    env = deployment.local_environment(tmp_path, "CeleryExecutor", url, 18999, "redis://127.0.0.1:6999/0")
    assert {name: env[name] for name in deployment.SETTINGS} == deployment.settings(ROOT)
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://postgres@127.0.0.1:5999/airflow"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18999/execution/"
    assert "worker" not in deployment.components("LocalExecutor")
    with pytest.raises(ValueError, match="broker"):
        deployment.local_environment(tmp_path, "CeleryExecutor", url, 18999)
