"""Release SAP_LLM: every item of the production checklist as a gate, a deployed green, a gradual traffic
shift watched against the SLOs, and an automatic rollback to blue on any failure once traffic moved."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import DAG, DeadlineAlert, DeadlineReference, SyncCallback

from operators.dag_builder import compose_release, release_params
from operators.deadline import page_stuck_release
from operators.runtime import release_spec_path
from sap_llm_release.spec import load_spec

SPEC_PATH = release_spec_path()
SPEC = load_spec(SPEC_PATH)

with DAG(
    "sap_llm_release",
    description=f"Release {SPEC.service}: checklist gates, gradual traffic shift, automatic rollback",
    schedule=None,
    max_active_runs=1,
    params=release_params(SPEC),
    tags=["release", SPEC.service],
    default_args={"retries": 0, "execution_timeout": timedelta(hours=6)},
    deadline=DeadlineAlert(reference=DeadlineReference.DAGRUN_QUEUED_AT, interval=SPEC.deadline,
                           callback=SyncCallback(page_stuck_release), name="release stuck: page on-call"),
    doc_md=__doc__,
):
    compose_release(SPEC, SPEC_PATH)
