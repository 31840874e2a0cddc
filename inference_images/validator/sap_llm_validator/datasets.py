"""Labelled document sets as JSON lines, checked on reading so a bad file fails with its line and field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

REQUIRED = ("document_id", "document_type", "po_subtype", "fields", "spans", "route", "api", "content")


class DatasetError(ValueError):
    """A labelled set that cannot be used."""


def read_jsonl(path: Path, problem: Callable[[object], str | None]) -> list[dict]:
    """The JSON lines of ``path`` (blank lines skipped); ``problem`` names what is wrong with a line, or None."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path} line {number}: not JSON: {exc}") from None
        if reason := problem(record):
            raise DatasetError(f"{path} line {number}: {reason}")
        records.append(record)
    if not records:
        raise DatasetError(f"{path}: holds no document")
    return records


def read_dataset(path: Path) -> list[dict]:
    def problem(document: object) -> str | None:
        missing = [key for key in REQUIRED if not isinstance(document, dict) or key not in document]
        return f"missing {missing}" if missing else None

    return read_jsonl(path, problem)
