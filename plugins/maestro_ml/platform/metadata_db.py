"""The embedded PostgreSQL behind ``make up``'s Airflow metadata DB: ``python -m maestro_ml.platform.metadata_db``.

``pgserver`` ships PostgreSQL's binaries in a wheel, so a fresh machine needs nothing installed:
``start`` initialises a cluster in ``<MAESTRO_HOME>/pgdata`` on first use, starts it listening on a
Unix socket only (no TCP port to collide with) and prints the SQLAlchemy URL of its ``airflow``
database; ``stop`` shuts it down (fast mode: open sessions are rolled back, nothing is lost).

Why not SQLite, Airflow's own embedded default: under a burst of triggers the API server answered
500 "database is locked". Its audit-log dependency writes on the event loop while another request's
transaction holds SQLite's single database-wide write lock and needs that same loop to commit, so
the wait ends only when the lock times out; a longer busy timeout turns the 500 into a hang.
PostgreSQL locks rows, and production runs Airflow on it anyway.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import subprocess
from pathlib import Path

DATABASE = "airflow"
# pgserver logs every handle it opens and closes at INFO, also from atexit, after logging has shut down.
logging.getLogger("pgserver").setLevel(logging.WARNING)


def _pg_ctl(pgdata: Path, *args: str) -> None:
    from pgserver._commands import pg_ctl  # type: ignore[attr-defined]

    user = "pgserver" if _is_root() else None  # PostgreSQL refuses to run as root; pgserver makes this user
    pg_ctl(list(args), pgdata=pgdata, user=user)


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def start(pgdata: Path) -> str:
    """Start (initialising if needed) the cluster in ``pgdata``; returns the ``airflow`` database's URL."""
    import pgserver

    server = pgserver.get_server(pgdata, cleanup_mode=None)  # keeps running after this process exits
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE};")
    return server.get_uri(DATABASE).replace("postgresql://", "postgresql+psycopg://", 1)


def stop(pgdata: Path) -> None:
    """Stop the cluster in ``pgdata`` if it runs."""
    if not (pgdata / "postmaster.pid").exists():
        return
    with contextlib.suppress(subprocess.CalledProcessError):  # not running: a stale pid file
        _pg_ctl(pgdata, "-w", "-m", "fast", "stop")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop"], help="start prints the database URL")
    parser.add_argument("pgdata", type=Path, help="the cluster's data directory, e.g. $MAESTRO_HOME/pgdata")
    args = parser.parse_args(argv)
    if args.command == "start":
        print(start(args.pgdata.resolve()))
    else:
        stop(args.pgdata.resolve())


if __name__ == "__main__":
    main()
