"""Run the release DAG with ``dag.test()`` and read back what happened."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SPEC_FILE = ROOT / "specs" / "sap_llm.yaml"


def attestations(skip: tuple[str, ...] = ()) -> dict[str, dict[str, str]]:
    spec = yaml.safe_load(SPEC_FILE.read_text())
    return {
        gate["name"]: {"by": "release-tester", "link": "file:///checklist/production-deployment.md"}
        for gate in spec["gates"]
        if gate["kind"] == "attestation" and gate["name"] not in skip
    }


def release_conf(**overrides: Any) -> dict[str, Any]:
    conf = {
        "version": "1.1.0",
        "environment": "rehearsal",
        "profile": "rehearsal",
        "requested_by": "release-tester",
        "attestations": attestations(),
    }
    conf.update(overrides)
    return conf


def release_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["sap_llm_release"]


def run_release(conf: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """Run one release; return the DagRun and ``task_id -> state``."""
    dag_run = release_dag().test(run_conf=conf)
    states = {ti.task_id: getattr(ti.state, "value", ti.state) for ti in dag_run.get_task_instances()}
    return dag_run, states


def release_id(dag_run: Any) -> str:
    return f"{dag_run.dag_id}:{dag_run.run_id}"
