"""One ``airflow db migrate`` for the whole test run: the first worker to ask migrates a SQLite database into the
run's shared directory (under a lock), and every Airflow home of the run starts from a copy of it. A migration
costs about 5 s of CPU; the suite needs a fresh metadata database in each worker and in several subprocesses."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path


def copy_migrated_airflow_db(destination: Path) -> None:
    """Put a freshly migrated Airflow SQLite database at ``destination``."""
    shared = Path(os.environ["SAP_LLM_TEST_SHARED_DIR"])
    template = shared / "airflow-migrated.db"
    with open(shared / "airflow-migrated.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not template.exists():
            scratch = shared / "airflow-migrating.db"
            env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{scratch}"}
            subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                           env=env)
            scratch.replace(template)
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, destination)
