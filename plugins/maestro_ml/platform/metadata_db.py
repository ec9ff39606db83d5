"""Connection arguments of the embedded (SQLite) Airflow metadata database; ``scripts/env.sh`` names them.

Airflow already puts SQLite in WAL mode, so readers never block; writers still take one lock in
turn. Python's ``sqlite3`` gives up on a held lock after 5 s with "database is locked", which the
API server answers with a 500: on 2 cores, a burst of triggers beside the scheduler's own writes
holds the lock longer than that. Waiting longer queues a request instead of dropping it.
"""

from __future__ import annotations

from typing import Any

LOCK_WAIT_SECONDS = 60

SQLITE_CONNECT_ARGS: dict[str, Any] = {"timeout": LOCK_WAIT_SECONDS}
SQLITE_CONNECT_ARGS_ASYNC: dict[str, Any] = {"timeout": LOCK_WAIT_SECONDS}
