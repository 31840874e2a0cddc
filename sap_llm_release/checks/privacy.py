"""Privacy and accountability of the service, asked of the service: a document carrying synthetic personal data
(a name, an e-mail address, an IBAN, a tax ID, a phone number) is posted, then the service's log is read for any of
those values in the clear; and the request must have left an audit entry naming who, what and when."""

from __future__ import annotations

import re
import secrets
import time
from typing import Literal

import httpx
from pydantic import Field
from sap_llm_contract.taxonomy import DOCUMENT_TYPES

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold
from sap_llm_release.tls import default_tls


class ServiceLogParams(Params):
    colour: Literal["blue", "green"] = "blue"
    settle_s: float = Field(default=1.0, ge=0, le=30, description="wait this long for the log line to be written")


def personal_data() -> dict[str, str]:
    """Fresh synthetic personal data, unique to this run so an older log line cannot match."""
    token = secrets.token_hex(4)
    digits = "".join(secrets.choice("0123456789") for _ in range(18))
    return {
        "Contact Name": f"Jane Q{token} Example",
        "Contact Email": f"jane.{token}@example.org",
        "IBAN": f"DE{digits[:2]} {digits[2:6]} {digits[6:10]} {digits[10:14]} {digits[14:18]} 00",
        "Tax ID": f"DE{digits[:9]}",
        "Phone": f"+49 6227 {digits[9:16]}",
    }


def _post(context: CheckContext, colour: str, document_id: str, content: str) -> int:
    headers = {"X-API-Key": context.api_key} if context.api_key else {}
    url = context.require("endpoints").url(colour) + "/v1/documents"
    return httpx.post(url, json={"document_id": document_id, "content": content}, headers=headers,
                      timeout=10, verify=default_tls()).status_code


def _document(values: dict[str, str]) -> str:
    heading = DOCUMENT_TYPES["purchase_order"].heading
    return "\n".join([heading, "Purchase Order Number: 4500012345", *(f"{k}: {v}" for k, v in values.items())])


class PiiMasking(Check):
    """Measured: personal values found in the clear in the service's log after posting them (0 is the pass)."""

    Params = ServiceLogParams

    def run(self, params: ServiceLogParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        values = personal_data()
        document_id = f"pii-probe-{secrets.token_hex(4)}"
        try:
            status = _post(context, params.colour, document_id, _document(values))
        except httpx.HTTPError as exc:
            return Evidence.unmeasured(threshold, f"posting the probe failed: {exc!r}")
        if status != 200:
            return Evidence.unmeasured(threshold, f"the probe was answered {status}: not processed")
        time.sleep(params.settle_s)
        log = context.require("deployer").logs(params.colour)
        if not log.strip():  # nothing to search proves nothing
            return Evidence.unmeasured(threshold, f"no {params.colour} log lines to search")
        compact = log.replace(" ", "")
        leaked = [name for name, value in values.items() if value in log or value.replace(" ", "") in compact]
        mentioned = sum(document_id in line for line in log.splitlines())
        detail = (f"posted {document_id} with {len(values)} personal values to {params.colour}; "
                  f"{mentioned} log lines mention it; in the clear: {', '.join(leaked) or 'none'}")
        return Evidence.compare(len(leaked), threshold, detail)


_AUDIT_FIELDS = (re.compile(r"\bwho=\S+"), re.compile(r"\bwhat=\S+"),
                 re.compile(r"\bat=\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}"))


class AuditLog(Check):
    """Measured: probe requests without an audit entry naming who, what and when (0 is the pass)."""

    Params = ServiceLogParams

    def run(self, params: ServiceLogParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        document_id = f"audit-probe-{secrets.token_hex(4)}"
        try:
            status = _post(context, params.colour, document_id, _document({}))
        except httpx.HTTPError as exc:
            return Evidence.unmeasured(threshold, f"posting the probe failed: {exc!r}")
        if status != 200:
            return Evidence.unmeasured(threshold, f"the probe was answered {status}: not processed")
        time.sleep(params.settle_s)
        entries = [line for line in context.require("deployer").logs(params.colour).splitlines()
                   if document_id in line and all(field.search(line) for field in _AUDIT_FIELDS)]
        detail = f"{document_id}: " + (entries[0][:300] if entries else "no log line names who, what and when")
        return Evidence.compare(0 if entries else 1, threshold, detail)
