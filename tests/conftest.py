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
from contextlib import contextmanager
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
        # In-process dag.test() runs would otherwise renice the test process itself.
        "MAESTRO_BATCH_NICE": "0",
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
    kept = {"MAESTRO_HOME", "MAESTRO_PII_KEY", "MAESTRO_BATCH_NICE"}
    if name.startswith("MAESTRO_") and name not in kept and not name.startswith("MAESTRO_TEST_"):
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


# Tests under these folders need real services (Postgres, Redis, the MLflow store), a built lake, a training
# or an infrastructure tool; `make test-fast` deselects them with -m "not integration".
INTEGRATION_DIRS = {"integration", "e2e"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_DIRS & set(item.path.relative_to(REPO_ROOT).parts[:2]):
            item.add_marker(pytest.mark.integration)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_STATE, ignore_errors=True)


# --------------------------------------------------------------------------- a tiny platform with data

TINY_START = "2026-11-01T00:00:00Z"
TINY_HOURS = 48 + 3  # the tiny preset's two days plus the late-landing tail
TINY_FEATURE_DAYS = 3  # whole days covering TINY_HOURS


@contextmanager
def _maestro_home(home: Path) -> Iterator[None]:
    """MAESTRO_HOME (and the cached settings) pointed at ``home`` for the duration of the block."""
    from maestro_ml.settings import get_settings

    previous = os.environ.get("MAESTRO_HOME")
    os.environ["MAESTRO_HOME"] = str(home)
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ["MAESTRO_HOME"] = previous or ""
        get_settings.cache_clear()


def _build_tiny_lake(home: Path, *, dirt: bool) -> None:
    """Simulate the tiny preset into ``home`` and ingest every hour, as ingest_events would."""
    from datetime import timedelta

    from maestro_ml.ingestion import ingest_hours
    from maestro_ml.lake import as_hour
    from maestro_ml.settings import get_settings
    from maestro_ml.simulation import DirtRates, config_for_preset, simulate

    with _maestro_home(home):
        settings = get_settings()
        start = as_hour(TINY_START)
        overrides = {} if dirt else {"dirt": DirtRates.off()}
        simulate(config_for_preset("tiny", start=start, seed=11, **overrides), settings.landing_uri, settings.truth_uri)
        ingest_hours([start + timedelta(hours=i) for i in range(TINY_HOURS)], settings)


@pytest.fixture(scope="session")
def tiny_lake_sources() -> dict[str, Path]:
    """Tiny lakes built once per session: with the default dirt, and clean (for comparisons with the truth)."""
    sources = {}
    for name, dirt in (("dirty", True), ("clean", False)):
        home = _STATE / f"tiny-{name}"
        _build_tiny_lake(home, dirt=dirt)
        sources[name] = home
    return sources


@pytest.fixture(scope="session")
def tiny_features_source(tiny_lake_sources: dict[str, Path]) -> Path:
    """The dirty tiny lake with the features of its days published (unvalidated), built once per session.

    Training tests need features but not the feature build; each gets a copy (``tiny_features_home``).
    """
    from datetime import timedelta

    from maestro_ml.features import steps
    from maestro_ml.lake import as_hour

    home = _STATE / "tiny-features"
    shutil.copytree(tiny_lake_sources["dirty"], home)
    with _maestro_home(home):
        start = as_hour(TINY_START)
        steps.build_features(start, start + timedelta(days=TINY_FEATURE_DAYS), validate=False)
    return home


def _module_home(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("tiny") / "maestro"
    shutil.copytree(source, home)
    from maestro_ml.settings import get_settings

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAESTRO_HOME", str(home))
        # Module fixtures run before the per-test cache reset: settings must follow the new home now.
        get_settings.cache_clear()
        yield home
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def tiny_home(tiny_lake_sources: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This module's own copy of the dirty tiny lake, as MAESTRO_HOME for the module's tests."""
    yield from _module_home(tiny_lake_sources["dirty"], tmp_path_factory)


@pytest.fixture(scope="module")
def tiny_features_home(tiny_features_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This module's own copy of the dirty tiny lake with its features, as MAESTRO_HOME."""
    yield from _module_home(tiny_features_source, tmp_path_factory)
