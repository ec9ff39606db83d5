"""The one settings module: every location and switch of the platform, read from the environment.

Defaults are embedded stores under one local state directory, ``MAESTRO_HOME``
(``.maestro/`` in the repository), so a fresh clone runs with no configuration.
Production points the same variables at ``s3://`` URIs, PostgreSQL and Redis.

Secrets (the PII hashing key, database passwords) are never defaulted here: they
come from the environment or from Airflow Connections.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

# The folder holding the maestro_ml package: child processes (training, feast apply) import it from there.
PLUGINS_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = PLUGINS_DIR.parent
INCLUDE_DIR = REPO_ROOT / "include"
FEATURE_REPO_DIR = INCLUDE_DIR / "feature_repo"

# Tags a DAG may carry; the DAG policy tests reject anything else so the UI filter stays useful.
APPROVED_DAG_TAGS = frozenset(
    {"maestro", "ingestion", "validation", "features", "training", "registry", "scoring", "monitoring", "demo"}
)
DAG_OWNER = "ml-platform"

Compute = Literal["local", "kubernetes"]
FeastEnv = Literal["local", "server"]
PromotionApproval = Literal["auto", "required"]


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def join_uri(base: str, *parts: str) -> str:
    """Join URI parts with '/', which is right for both local paths and object-store URIs."""
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


@dataclass(frozen=True)
class Settings:
    home: str
    landing_uri: str
    lake_uri: str
    quarantine_uri: str
    truth_uri: str
    reports_uri: str
    mlflow_tracking_uri: str
    compute: Compute
    feast_env: FeastEnv
    feast_registry_path: str
    feast_online_path: str
    feast_registry_sql_uri: str
    redis_connection_string: str
    training_image: str
    # Offline feature tables (one directory per feature view), read by Feast's file offline store.
    features_uri: str
    # Feast project name: Redis keys and registry rows carry it, so tests isolate by choosing their own.
    feast_project: str
    # First hour the platform ingests; hourly DAGs catch up from here. `make up` pins it to 14 days
    # before its first start so the demo data and the schedule line up.
    start_date: datetime
    pii_key_env_var: str = "MAESTRO_PII_KEY"
    # Events older than this (relative to their landing hour) are accepted as late, not absurd.
    allowed_lateness_hours: int = 48
    # Event ids seen in this many earlier hours count as duplicates of a late re-send.
    dedupe_lookback_hours: int = 24
    future_tolerance_minutes: int = 10
    # The longest range one ingest run takes (a backfill or a catch-up): 92 days. Longer ones are refused.
    max_range_hours: int = 92 * 24
    # Days of demo events `make up` simulates from start_date into an empty landing zone.
    seed_days: int = 14
    # CPU niceness of batch work (feature builds, materialization, trainings) on a shared machine: the
    # hourly ingestion keeps its pace beside a training on 2 cores. 0 leaves it as the worker's.
    batch_nice: int = 10
    # The candidate rule's managers: a user who assigned tasks to other people at least this many times
    # before a decision is not a candidate for it (assigning to oneself never counts). 0: nobody is excluded.
    manager_min_assignments: int = 1
    # A duration outcome is known only once the task is done: a holdout of the newest assignments holds the
    # quick ones only (the slow ones are still open), and judges intervals on a censored sample. Duration
    # holdouts therefore end this many hours before the newest data, so most of their tasks had time to finish.
    duration_outcome_maturity_hours: int = 48
    # `promote_models`: "auto" moves `champion` as soon as every gate passes; "required" first waits for a
    # person to approve or reject a passing promotion in the Airflow UI (a human-in-the-loop step).
    promotion_approval: PromotionApproval = "auto"

    @property
    def feature_repo_dir(self) -> Path:
        return FEATURE_REPO_DIR

    @property
    def scores_uri(self) -> str:
        """The lake's scores (``score_open_tasks``): one table per kind, one file per scoring hour."""
        return join_uri(self.lake_uri, "scores")

    def pii_key(self) -> bytes:
        """The keyed-hash secret for PII. Fails loudly rather than hashing with a guessable key."""
        key = os.environ.get(self.pii_key_env_var, "")
        if not key:
            raise RuntimeError(
                f"{self.pii_key_env_var} is not set: PII cannot be masked without the secret key. "
                "Set it in the environment (make up and make demo generate one under MAESTRO_HOME)."
            )
        return key.encode()


def to_utc(value: datetime | str) -> datetime:
    """An aware UTC ``datetime`` from a datetime (naive means UTC) or an ISO-8601 string (``Z`` allowed)."""
    if isinstance(value, str):
        text = value.strip()
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def day_start(value: datetime) -> datetime:
    """Midnight UTC of the day ``value`` falls on."""
    value = value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def parse_utc_hour(value: str) -> datetime:
    """Parse an ISO-8601 instant as an aware UTC datetime; naive values are taken as UTC."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if parsed.minute or parsed.second or parsed.microsecond:
        raise ValueError(f"{value!r} is not aligned to an hour")
    return parsed


def load_settings() -> Settings:
    home = _env("MAESTRO_HOME", str(REPO_ROOT / ".maestro"))
    compute = _env("MAESTRO_COMPUTE", "local")
    if compute not in ("local", "kubernetes"):
        raise ValueError(f"MAESTRO_COMPUTE must be 'local' or 'kubernetes', not {compute!r}")
    feast_env = _env("MAESTRO_FEAST_ENV", "local")
    if feast_env not in ("local", "server"):
        raise ValueError(f"MAESTRO_FEAST_ENV must be 'local' or 'server', not {feast_env!r}")
    approval = _env("MAESTRO_PROMOTION_APPROVAL", "auto")
    if approval not in ("auto", "required"):
        raise ValueError(f"MAESTRO_PROMOTION_APPROVAL must be 'auto' or 'required', not {approval!r}")
    lake = _env("MAESTRO_LAKE_URI", join_uri(home, "lake"))
    return Settings(
        home=home,
        landing_uri=_env("MAESTRO_LANDING_URI", join_uri(home, "landing")),
        lake_uri=lake,
        quarantine_uri=_env("MAESTRO_QUARANTINE_URI", join_uri(home, "quarantine")),
        truth_uri=_env("MAESTRO_TRUTH_URI", join_uri(home, "truth")),
        reports_uri=_env("MAESTRO_REPORTS_URI", join_uri(home, "reports")),
        mlflow_tracking_uri=_env("MLFLOW_TRACKING_URI", f"sqlite:///{join_uri(home, 'mlflow', 'mlflow.db')}"),
        compute=compute,  # type: ignore[arg-type]
        feast_env=feast_env,  # type: ignore[arg-type]
        feast_registry_path=_env("MAESTRO_FEAST_REGISTRY_PATH", join_uri(home, "feast", "registry.db")),
        feast_online_path=_env("MAESTRO_FEAST_ONLINE_PATH", join_uri(home, "feast", "online.db")),
        feast_registry_sql_uri=_env(
            "MAESTRO_FEAST_REGISTRY_SQL_URI", "postgresql+psycopg://postgres@127.0.0.1:5432/maestro_feast"
        ),
        redis_connection_string=_env("MAESTRO_REDIS_CONNECTION", "127.0.0.1:6379"),
        training_image=_env("MAESTRO_TRAINING_IMAGE", "maestro-ml/training:latest"),
        features_uri=_env("MAESTRO_FEATURES_URI", join_uri(lake, "features")),
        feast_project=_env("MAESTRO_FEAST_PROJECT", "maestro_ml"),
        start_date=parse_utc_hour(_env("MAESTRO_START_DATE", "2026-11-01T00:00:00Z")),
        allowed_lateness_hours=int(_env("MAESTRO_ALLOWED_LATENESS_HOURS", "48")),
        dedupe_lookback_hours=int(_env("MAESTRO_DEDUPE_LOOKBACK_HOURS", "24")),
        future_tolerance_minutes=int(_env("MAESTRO_FUTURE_TOLERANCE_MINUTES", "10")),
        max_range_hours=int(_env("MAESTRO_MAX_RANGE_HOURS", str(92 * 24))),
        seed_days=int(_env("MAESTRO_SEED_DAYS", "14")),
        batch_nice=int(_env("MAESTRO_BATCH_NICE", "10")),
        manager_min_assignments=int(_env("MAESTRO_MANAGER_MIN_ASSIGNMENTS", "1")),
        duration_outcome_maturity_hours=int(_env("MAESTRO_DURATION_OUTCOME_MATURITY_HOURS", "48")),
        promotion_approval=approval,  # type: ignore[arg-type]
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process. Tests that change the environment call ``get_settings.cache_clear()``."""
    return load_settings()
