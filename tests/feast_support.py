"""Throwaway Feast stores for the integration tests: an embedded SQLite store, or Redis with a PostgreSQL
registry, in a project of their own that is cleaned up afterwards.

Imported as ``from tests.feast_support import ...`` (the repository root is on pytest's pythonpath).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from maestro_ml.settings import get_settings

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# What points the settings at a Feast project and its stores.
FEAST_SWITCHES = ("MAESTRO_FEAST_PROJECT", "MAESTRO_FEAST_ENV", "MAESTRO_FEAST_REGISTRY_SQL_URI",
                  "MAESTRO_FEAST_REGISTRY_PATH", "MAESTRO_FEAST_ONLINE_PATH")


def server_reachable() -> str | None:
    """None when Redis and PostgreSQL answer, else why not."""
    try:
        import psycopg
        import redis

        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
        psycopg.connect(_PG_ADMIN, connect_timeout=2).close()
    except Exception as exc:
        return f"Redis/PostgreSQL not reachable: {exc}"
    return None


def pg(sql: str) -> None:
    import psycopg

    with psycopg.connect(_PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


def redis_keys(project: str) -> list[bytes]:
    """The Redis keys Feast wrote for ``project``."""
    import redis

    return list(redis.Redis(host="127.0.0.1", port=6379).scan_iter(match=f"*{project}"))


@contextmanager
def throwaway_feast_env(kind: str, home: Path, prefix: str = "maestro_test") -> Iterator[str]:
    """Settings pointed at a new Feast project (``kind``: ``local`` or ``server``); yields the project name.

    On the server its registry database is created first and dropped afterwards (the test skips when Redis or
    PostgreSQL is down). The caller applies, uses and tears the store down inside the block.
    """
    project = f"{prefix}_{uuid.uuid4().hex[:8]}"
    database = f"{project}_registry"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAESTRO_FEAST_PROJECT", project)
        if kind == "server":
            reason = server_reachable()
            if reason:
                pytest.skip(reason)
            pg(f'CREATE DATABASE "{database}"')
            patch.setenv("MAESTRO_FEAST_ENV", "server")
            patch.setenv("MAESTRO_FEAST_REGISTRY_SQL_URI", f"{PG}/{database}")
        else:
            patch.setenv("MAESTRO_FEAST_REGISTRY_PATH", str(home / project / "registry.db"))
            patch.setenv("MAESTRO_FEAST_ONLINE_PATH", str(home / project / "online.db"))
        get_settings.cache_clear()
        try:
            yield project
        finally:
            if kind == "server":
                pg(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            get_settings.cache_clear()
