"""The throwaway PostgreSQL's restart, as the Celery rehearsal uses it: open connections are cut, committed rows
stay, and a pooled engine that pings its connections carries on."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from sap_llm_release.rehearsal.local_postgres import restart_postgres, temporary_postgres


@pytest.mark.postgres
def test_a_restart_cuts_open_connections_and_keeps_what_was_committed():
    with temporary_postgres("restart_test") as url:
        assert url is not None, "make setup installs Debian's postgresql"
        engine = create_engine(url, pool_pre_ping=True)
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE releases (version TEXT)"))
            conn.execute(text("INSERT INTO releases VALUES ('1.1.0')"))
        held = engine.connect()
        held.execute(text("SELECT 1"))

        restart_postgres(url)

        with pytest.raises(OperationalError):  # the connection open across the restart was cut
            held.execute(text("SELECT 1"))
        held.close()
        with engine.connect() as conn:  # a pinged pool reconnects
            assert conn.execute(text("SELECT version FROM releases")).scalars().all() == ["1.1.0"]
        engine.dispose()
