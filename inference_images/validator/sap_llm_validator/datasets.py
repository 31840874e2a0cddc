"""Labelled document sets as JSON lines, checked on reading so a bad file fails with its line and field."""

from __future__ import annotations

import json
from pathlib import Path

REQUIRED = ("document_id", "document_type", "po_subtype", "fields", "spans", "route", "api", "content")


class DatasetError(ValueError):
    """A labelled set that cannot be used."""


def read_dataset(path: Path) -> list[dict]:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read: {exc}") from None
    documents = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except ValueError as exc:
            raise DatasetError(f"{path} line {number}: not JSON: {exc}") from None
        missing = [key for key in REQUIRED if key not in document]
        if missing:
            raise DatasetError(f"{path} line {number}: missing {missing}")
        documents.append(document)
    if not documents:
        raise DatasetError(f"{path}: holds no document")
    return documents
