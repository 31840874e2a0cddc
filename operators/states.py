"""Task states of the current DAG run, asked through the Task SDK (tasks have no database access)."""

from __future__ import annotations

from typing import Any


def task_states(context: Any) -> dict[str, str]:
    """``task_id -> state`` for every task instance of this run."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    ti = context["ti"]
    by_run = RuntimeTaskInstance.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id])
    return {task_id: getattr(state, "value", state) for task_id, state in by_run.get(ti.run_id, {}).items()}
