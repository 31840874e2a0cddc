"""The base of the release's operators: each knows the spec file it was composed from."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator


class ReleaseOperator(BaseOperator):
    def __init__(self, *, spec_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_path = spec_path
