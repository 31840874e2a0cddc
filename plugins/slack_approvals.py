"""Slack's interactivity endpoint for release approvals, served by the Airflow API server at
``/sap-llm-slack/interactions``.

Airflow does not authenticate plugin apps: here the Slack request signature (signing secret in the connection
``sap_llm_slack_signing``, as its password) is the authentication, checked before anything in the body is read. A
checked click resolves the approval's HITL task through the same code as Airflow's ``PATCH .../hitlDetails`` route,
recorded as answered by the Slack user. The answer to Slack is ephemeral: only the clicking user sees it.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.plugins_manager import AirflowPlugin
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed

from operators.runtime import LEDGER_CONN_ID, connection_url, ledger_for, release_spec_path, spec_at
from sap_llm_release.approvals.decision import APPROVE, REJECT, SLACK_USER_PREFIX
from sap_llm_release.approvals.slack_callback import MAX_BODY_BYTES, CallbackDesk, Interaction, Refusal

log = logging.getLogger(__name__)
SIGNING_CONN_ID = "sap_llm_slack_signing"
SLACK_CONN_ID = "sap_llm_slack"

slack_app = FastAPI(title="SAP_LLM Slack approvals", description=__doc__)


class SlackApprover(BaseUser):
    """The Slack user a HITL answer is recorded for (``responded_by`` reads ``slack:U...``)."""

    def __init__(self, interaction: Interaction) -> None:
        self.interaction = interaction

    def get_id(self) -> str:
        return f"{SLACK_USER_PREFIX}{self.interaction.slack_user}"

    def get_name(self) -> str:
        return self.interaction.responder


class AirflowHITL:
    """The approval's task instance in Airflow's metadata database."""

    def answer(self, request: Any) -> str | None:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            detail = session.scalar(
                select(HITLDetail).join(TaskInstance, HITLDetail.ti_id == TaskInstance.id).where(
                    TaskInstance.dag_id == request["dag_id"], TaskInstance.run_id == request["run_id"],
                    TaskInstance.task_id == request["task_id"], TaskInstance.map_index == request["map_index"]))
            if detail is None:
                raise Refusal(404, f"approval task {request['task_id']} has no pending request in Airflow")
            if not detail.response_received:
                return None
            who = (detail.responded_by or {}).get("name") or "the timeout"
            return f"{', '.join(detail.chosen_options or [])} by {who}"

    def resolve(self, request: Any, interaction: Interaction) -> None:
        from fastapi import HTTPException

        chosen = APPROVE if interaction.decision == "approved" else REJECT
        try:
            _write_answer(request, chosen, SlackApprover(interaction))
        except HTTPException as exc:
            raise Refusal(exc.status_code, f"Airflow refused the answer: {exc.detail}") from None


@retry(retry=retry_if_exception_type(OperationalError), stop=stop_after_attempt(3), wait=wait_fixed(0.5),
       reraise=True)
def _write_answer(request: Any, chosen: str, user: SlackApprover) -> None:
    """Airflow's own HITL PATCH, after locking the task instance and its HITL row (in Airflow's order) so that an
    answer committed before the lock is read, and refused, rather than overwritten."""
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select, update

    with create_session() as session:
        ti_id = session.scalar(select(TaskInstance.id).where(
            TaskInstance.dag_id == request["dag_id"], TaskInstance.run_id == request["run_id"],
            TaskInstance.task_id == request["task_id"], TaskInstance.map_index == request["map_index"],
        ).with_for_update())
        if ti_id is not None:  # on SQLite this write takes the database's write lock
            session.execute(update(HITLDetail).where(HITLDetail.ti_id == ti_id).values(
                responded_at=HITLDetail.responded_at))
        update_hitl_detail(
            dag_id=request["dag_id"], dag_run_id=request["run_id"], task_id=request["task_id"],
            update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[chosen], params_input={}),
            user=user, session=session, map_index=request["map_index"],
        )


def _slack_client() -> Any:
    from airflow.providers.slack.hooks.slack import SlackHook

    return SlackHook(slack_conn_id=SLACK_CONN_ID, timeout=10).client


def _group_members(group: str) -> set[str]:
    return set(_slack_client().usergroups_users_list(usergroup=group)["users"])


class NotConfigured(RuntimeError):
    """The endpoint has no signing secret, so it cannot tell Slack's requests from anyone else's."""


def _signing_secret() -> str:
    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection

    try:
        secret = Connection.get_connection_from_secrets(SIGNING_CONN_ID).password
    except AirflowNotFoundException:
        secret = None
    if not secret:
        raise NotConfigured(f"connection {SIGNING_CONN_ID} with the Slack signing secret as password is missing")
    return secret


def _desk() -> CallbackDesk:
    spec = spec_at(release_spec_path())
    return CallbackDesk(ledger=ledger_for(connection_url(LEDGER_CONN_ID)), spec=spec,
                        signing_secret=_signing_secret(), airflow=AirflowHITL(), group_members=_group_members)


def _tell_the_user(response_url: str, text: str) -> None:
    """The answer, shown only to the clicking user (Slack ignores a block_actions response body)."""
    from slack_sdk.webhook import WebhookClient

    try:
        WebhookClient(response_url, timeout=5).send(text=text, response_type="ephemeral", replace_original=False)
    except Exception as exc:  # noqa: BLE001 - the decision stands whether or not Slack shows the reply
        log.warning("could not answer the Slack user through response_url: %s", exc)


def _answer(body: bytes, headers: dict[str, str]) -> JSONResponse:
    try:
        desk = _desk()
    except NotConfigured as exc:
        log.error("slack callback refused every request: %s", exc)
        return JSONResponse({"ok": False, "status": 503, "text": f"approvals callback not configured: {exc}"},
                            status_code=503)
    reply = desk.handle(body, headers)
    if reply.interaction is None:  # unsigned, stale, oversized or unreadable: not a Slack user to talk to
        return JSONResponse({"ok": False, "status": reply.status, "text": reply.text}, status_code=reply.status)
    if reply.interaction.response_url:
        _tell_the_user(reply.interaction.response_url, reply.text)
    # A signed click is answered 200 (Slack shows an error icon otherwise); the outcome is in the body.
    return JSONResponse({"ok": reply.status == 200, "status": reply.status, "response_type": "ephemeral",
                         "replace_original": False, "text": reply.text})


@slack_app.post("/interactions")
async def interactions(request: Request) -> JSONResponse:
    """Verify, check, resolve; every outcome is recorded in the ledger and answered in one line."""
    body = b""
    async for chunk in request.stream():  # read no more than the size check needs to refuse
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            break
    return await run_in_threadpool(_answer, body, dict(request.headers))


class SlackApprovalsPlugin(AirflowPlugin):
    name = "sap_llm_slack_approvals"
    fastapi_apps = [{"app": slack_app, "url_prefix": "/sap-llm-slack", "name": "SAP_LLM Slack approvals"}]
