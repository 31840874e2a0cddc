"""The local stack's service processes: each slot's log file (``<slot>.log``) and the archived logs of its earlier
deployments beside it (``<slot>.<ms>.log``, kept by the local-process deployer). The reference server stamps each
line with its time in UTC (``2026-12-01 06:00:00,123 ...``)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from sap_llm_release.service_logs.base import LogsUnavailable

STAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2})(?:[.,](\d{1,6})\d*)?")


def line_time(line: str) -> datetime | None:
    """The UTC time a log line starts with, or None for a line without one."""
    found = STAMP.match(line)
    if not found:
        return None
    moment = datetime.fromisoformat(found.group(1).replace(" ", "T"))
    micros = int((found.group(2) or "0").ljust(6, "0"))
    return moment.replace(microsecond=micros, tzinfo=timezone.utc)


class LocalProcessLogs:
    """The log files of the processes ``processes`` (the slots) in ``state_dir`` (the stack directory)."""

    def __init__(self, state_dir: Path, processes: tuple[str, ...] = ("blue", "green")) -> None:
        self.state_dir = Path(state_dir)
        self.processes = processes

    def describe(self) -> str:
        return f"process logs in {self.state_dir}"

    def lines(self, start: datetime, end: datetime) -> dict[str, list[tuple[datetime, str]]]:
        files = {process: self._files(process) for process in self.processes}
        if not any(files.values()):
            raise LogsUnavailable(f"no service log files ({', '.join(self.processes)}) in {self.state_dir}")
        return {process: [line for path in paths for line in _within(path, start, end)]
                for process, paths in files.items()}

    def _files(self, process: str) -> list[Path]:
        """The process's archived logs, oldest first, then its current one."""
        archived = sorted(self.state_dir.glob(f"{process}.*.log"), key=lambda path: path.stat().st_mtime)
        current = self.state_dir / f"{process}.log"
        return archived + ([current] if current.is_file() else [])


def _within(path: Path, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        raise LogsUnavailable(f"{path} could not be read: {exc}") from None
    kept, current = [], None
    for line in text.splitlines():
        current = line_time(line) or current
        if current is not None and start <= current < end:
            kept.append((current, line))
    return kept
