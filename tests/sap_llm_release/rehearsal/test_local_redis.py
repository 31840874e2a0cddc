"""The Celery rehearsal's broker: a throwaway Redis that answers and is gone afterwards."""

from __future__ import annotations

import socket

import redis

from sap_llm_release.rehearsal.local_redis import temporary_redis


def test_a_temporary_redis_serves_and_is_removed():
    with temporary_redis() as url:
        assert url is not None, "make setup installs Debian's redis-server"
        client = redis.Redis.from_url(url)
        client.set("release", "1.1.0")
        assert client.get("release") == b"1.1.0"
        port = client.connection_pool.connection_kwargs["port"]
        client.close()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # stopped
