"""Scan a colour's service log for error lines."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from sap_llm_release.checks.base import Check, CheckContext, Params
from sap_llm_release.evidence import Evidence, Threshold


class LogScanParams(Params):
    colour: Literal["blue", "green"]
    pattern: str = Field(default=r"\b(ERROR|CRITICAL|Traceback)\b")


class LogScan(Check):
    """Measured: the number of log lines matching ``pattern``; an empty log fails (nothing was shown)."""

    Params = LogScanParams

    def run(self, params: LogScanParams, threshold: Threshold | None, context: CheckContext) -> Evidence:
        lines = context.require("deployer").logs(params.colour).splitlines()
        if not lines:  # a running service logs at least its start; no log proves nothing
            return Evidence.unmeasured(threshold, f"no {params.colour} log lines to scan")
        matcher = re.compile(params.pattern)
        hits = [line for line in lines if matcher.search(line)]
        detail = f"{len(hits)} of {len(lines)} {params.colour} log lines match {params.pattern!r}"
        if hits:
            detail += f"; first: {hits[0][:200]}"
        return Evidence.compare(len(hits), threshold, detail)
