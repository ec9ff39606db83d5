"""Defaults every Maestro DAG shares, so the policy tests have one place to point at."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from maestro_ml.settings import DAG_OWNER

DEFAULT_ARGS: dict[str, Any] = {
    "owner": DAG_OWNER,
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}
