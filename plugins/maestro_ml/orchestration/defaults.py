"""Defaults every Maestro DAG shares, so the policy tests have one place to point at.

``DEFAULT_ARGS`` is for the hourly path (ingestion), ``BATCH_DEFAULT_ARGS`` for the work that can
wait a little (feature builds, materialization, trainings): on a shared worker (``make up``'s
LocalExecutor on 2 cores) it runs at a lower CPU priority and is queued after ingestion, so an
hourly run keeps its pace while a training runs beside it.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Any

from maestro_ml.settings import DAG_OWNER, get_settings

log = logging.getLogger(__name__)

# Ingestion's tasks go first when the executor has fewer free slots than queued tasks. Absolute, and
# above any batch task's (default weights summed downstream: a DAG of fewer than 100 tasks).
INGEST_PRIORITY_WEIGHT = 100


def lower_cpu_priority(context: Any = None) -> None:
    """Raise this task process's niceness to ``settings.batch_nice`` (never lower it); children inherit it.

    Runs as the task's ``on_execute_callback``, in the task's own process, before its work: the
    training subprocess, LightGBM's and torch's threads are created after it, so they inherit it.
    """
    target = get_settings().batch_nice
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if target > current:
        os.nice(target - current)
        log.info("batch work: CPU niceness %d -> %d (MAESTRO_BATCH_NICE)", current, target)


DEFAULT_ARGS: dict[str, Any] = {
    "owner": DAG_OWNER,
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=10),
}

INGEST_DEFAULT_ARGS: dict[str, Any] = {
    **DEFAULT_ARGS,
    "priority_weight": INGEST_PRIORITY_WEIGHT,
    "weight_rule": "absolute",
}

BATCH_DEFAULT_ARGS: dict[str, Any] = {**DEFAULT_ARGS, "on_execute_callback": lower_cpu_priority}
