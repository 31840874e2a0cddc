"""log_scan over a colour's service log."""

from __future__ import annotations

import pytest

from sap_llm_release.checks.base import CheckContext, CheckUnavailable
from sap_llm_release.checks.logs import LogScan, LogScanParams
from sap_llm_release.evidence import Threshold, Verdict

NONE = Threshold(op="==", value=0)
GREEN_LOG = """\
2026-01-01 10:00:00 INFO colour=green version=2.0.0 model=deterministic-fallback ready
2026-01-01 10:00:01 WARNING colour=green faults set: {'error_rate': 0.5}
2026-01-01 10:00:02 ERROR colour=green document=doc-1 inference failed (injected fault)
2026-01-01 10:00:03 INFO request served
Traceback (most recent call last):
2026-01-01 10:00:04 INFO MY_ERRORS_TOTAL is a metric name, not an error
"""


class FakeDeployer:
    def __init__(self, logs: dict[str, str]) -> None:
        self._logs = logs
        self.asked: list[str] = []

    def logs(self, colour: str) -> str:
        self.asked.append(colour)
        return self._logs.get(colour, "")


def scan(deployer, threshold: Threshold = NONE, **params):
    return LogScan().run(LogScanParams(**params), threshold, CheckContext(service="sap-llm", deployer=deployer))


def test_error_lines_fail():
    deployer = FakeDeployer({"green": GREEN_LOG, "blue": ""})
    evidence = scan(deployer, colour="green")
    assert deployer.asked == ["green"]
    assert (evidence.verdict, evidence.measured, evidence.threshold) == (Verdict.FAILED, 2, "== 0")
    assert evidence.detail == (
        r"2 of 6 green log lines match '\\b(ERROR|CRITICAL|Traceback)\\b'; "
        "first: 2026-01-01 10:00:02 ERROR colour=green document=doc-1 inference failed (injected fault)"
    )


def test_clean_log_passes():
    log = "INFO colour=blue version=1.0.0 ready\nINFO ok\n"
    evidence = scan(FakeDeployer({"blue": log}), colour="blue")
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 0)
    assert evidence.detail == r"0 of 2 blue log lines match '\\b(ERROR|CRITICAL|Traceback)\\b'"


def test_empty_log_fails_because_it_shows_nothing():
    evidence = scan(FakeDeployer({}), colour="blue")
    assert (evidence.verdict, evidence.measured, evidence.detail) == (Verdict.FAILED, None, "no blue log lines to scan")


def test_custom_pattern():
    log = "INFO a\nDEBUG b\nDEBUG c\nINFO DEBUGGING is not DEBUG? yes it is\n"
    evidence = scan(FakeDeployer({"blue": log}), colour="blue", pattern=r"\bDEBUG\b")
    assert (evidence.verdict, evidence.measured) == (Verdict.FAILED, 3)


def test_threshold_allows_some_lines():
    evidence = scan(FakeDeployer({"green": GREEN_LOG}), Threshold(op="<=", value=2), colour="green")
    assert (evidence.verdict, evidence.measured) == (Verdict.PASSED, 2)


def test_no_deployer_is_unavailable():
    with pytest.raises(CheckUnavailable, match="this target provides no deployer"):
        LogScan().run(LogScanParams(colour="green"), NONE, CheckContext(service="sap-llm"))
