"""A person answering a request on Airflow's Required Actions page, for releases run with ``dag.test()``: the answer
goes through the function behind Airflow's ``PATCH .../hitlDetails`` route (its assigned-users check included), as
the logged-in user, once the task waits for input."""

from __future__ import annotations

import threading
from typing import Any

from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

from sap_llm_release.polling import poll_until


class RequiredActionAnswer:
    """Answer ``task_id``'s request of the newest run of ``dag_id`` as ``user``: tick ``chosen``, fill ``params``.
    ``error`` holds what Airflow refused, if it did."""

    def __init__(self, dag_id: str, task_id: str, user: str, chosen: list[str], params: dict[str, Any]) -> None:
        self.dag_id, self.task_id, self.user, self.chosen, self.params = dag_id, task_id, user, chosen, params
        self.answered = threading.Event()
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._answer_when_asked, daemon=True)

    def __enter__(self) -> RequiredActionAnswer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(timeout=5)

    def _waiting_run(self) -> str | None:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            return session.scalar(
                select(TaskInstance.run_id).join(HITLDetail, HITLDetail.ti_id == TaskInstance.id).where(
                    TaskInstance.dag_id == self.dag_id, TaskInstance.task_id == self.task_id,
                    TaskInstance.state == "awaiting_input", HITLDetail.responded_at.is_(None)))

    def _answer_when_asked(self) -> None:
        from airflow.api_fastapi.app import create_auth_manager
        from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
        from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
        from airflow.utils.session import create_session

        try:
            run_id = poll_until(self._waiting_run, lambda run: run is not None, timeout_s=300, interval_s=0.5)
            if run_id is None:
                raise TimeoutError(f"{self.task_id} never waited for input")
            create_auth_manager()
            with create_session() as session:
                update_hitl_detail(
                    dag_id=self.dag_id, dag_run_id=run_id, task_id=self.task_id,
                    update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=self.chosen,
                                                                       params_input=self.params),
                    user=SimpleAuthManagerUser(username=self.user, role="user"), session=session, map_index=-1)
        except Exception as exc:  # noqa: BLE001 - handed to the test, which asserts there was none
            self.error = exc
        finally:
            self.answered.set()
