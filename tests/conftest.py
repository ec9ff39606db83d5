"""Test environment: hermetic state under a temporary MAESTRO_HOME, Airflow metadata on a throwaway Postgres DB.

The environment is set at import time, before anything imports Airflow, because Airflow
reads its configuration once when it is first imported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_STATE = Path(tempfile.mkdtemp(prefix="maestro-test-"))
PG_DSN = os.environ.get("MAESTRO_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("MAESTRO_TEST_REDIS", "127.0.0.1:6379")
TEST_DB = f"maestro_test_{uuid.uuid4().hex[:10]}"

os.environ.update(
    {
        "MAESTRO_HOME": str(_STATE / "maestro"),
        "MAESTRO_PII_KEY": "test-only-pii-key",
        "MLFLOW_TRACKING_URI": f"sqlite:///{_STATE / 'mlflow.db'}",
        "AIRFLOW_HOME": str(_STATE / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://postgres@127.0.0.1:5432/{TEST_DB}",
    }
)
for name in list(os.environ):
    # A developer's own shell settings must not leak into the suite.
    if name.startswith("MAESTRO_") and name not in {"MAESTRO_HOME", "MAESTRO_PII_KEY"} and not name.startswith(
        "MAESTRO_TEST_"
    ):
        del os.environ[name]


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_DSN}/postgres", autocommit=True) as conn:
        conn.execute(sql)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[str]:
    """A migrated Airflow metadata database on the local Postgres, dropped after the session."""
    _pg_admin(f'CREATE DATABASE "{TEST_DB}"')
    try:
        from airflow.utils import db

        db.initdb()
        yield TEST_DB
    finally:
        from airflow import settings as airflow_settings

        airflow_settings.dispose_orm()
        _pg_admin(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    from maestro_ml.settings import get_settings

    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_STATE, ignore_errors=True)
