"""Running a KubernetesPodOperator outside a DAG run: the part of a task instance it reads, a context, and the first
event of the trigger it defers to."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


class TaskInstanceStub:
    """The part of a task instance the operator reads: its identity, its start and ``xcom_push``."""

    def __init__(self, task_id: str) -> None:
        self.dag_id, self.task_id, self.map_index, self.try_number = "sap_llm_release", task_id, -1, 1
        self.start_date = datetime.now(timezone.utc)
        self.pushed: dict = {}

    def xcom_push(self, key: str, value) -> None:
        self.pushed[key] = value


def context_for(operator: Any) -> dict:
    ti = TaskInstanceStub(operator.task_id)
    return {"ti": ti, "task_instance": ti, "task": operator, "dag": None, "run_id": "manual__2026-11-27T00:00:00"}


async def first_event(trigger: Any) -> dict:
    async for event in trigger.run():
        return event.payload
