"""The spec's ``disaster_recovery`` section: which stores are backed up, where, how often, and when the drill runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Store = Literal["ledger", "knowledge_base", "process_memory_graph"]


class DisasterRecovery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stores: list[Store] = Field(min_length=1, description="what is backed up and restored by the drill")
    backup_dir: str = Field(min_length=1, description="where backups are written; ${VARS} expand")
    backup_schedule: str = Field(min_length=9, description="cron: how often the stores are backed up (the RPO)")
    drill_schedule: str = Field(min_length=9, description="cron: when the drill restores the newest backups")
    keep_backups: int = Field(default=48, ge=2, le=10_000, description="backup files kept per store")

    def directory(self, store: str) -> Path:
        expanded = os.path.expandvars(self.backup_dir)
        if "$" in expanded:
            raise ValueError(f"disaster_recovery.backup_dir: {self.backup_dir!r} names an unset variable")
        return Path(expanded) / store
