"""`make up` from a fresh MAESTRO_HOME until both models are registered, then a Ctrl-C stop.

Starts ``scripts/up.sh`` (the venv must exist), then polls the REST API and the MLflow registry
and prints when each milestone was reached, in seconds since the start:

* ``ui``: ``/api/v2/monitor/health`` answers;
* ``catch_up``: the first ``ingest_events`` run succeeded (every seeded hour committed);
* ``features`` / ``materialized``: the first successful ``build_features`` / ``materialize_features``;
* ``ranker`` / ``duration``: ``maestro-task-assignment`` / ``maestro-task-duration`` have a ``challenger``;
* ``promoted``: a ``promote_models`` run succeeded (``ranker_champion`` / ``duration_champion``: the model has a
  ``champion``: the asset-triggered promotion passed its gates);
* ``scored``: a ``score_open_tasks`` run published scores (its ``publish_scores`` succeeded, not skipped).

``*_run_seconds`` is that first run's own wall time (start to end, as Airflow recorded it). Then it sends SIGINT (Ctrl-C) to ``up.sh``, times the stop, and counts task instances and DAG runs
left ``running`` in the metadata DB.

Run: ``.venv/bin/python benchmarks/make_up.py --home /tmp/up-bench`` (the ports must be free).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODELS = {"ranker": "maestro-task-assignment", "duration": "maestro-task-duration"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default="/tmp/maestro-up-bench", help="a fresh MAESTRO_HOME (wiped first)")
    parser.add_argument("--api-port", type=int, default=8080, help="Airflow api-server port")
    parser.add_argument("--mlflow-port", type=int, default=5000, help="MLflow server port")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds")
    parser.add_argument("--keep", action="store_true", help="leave the platform running at the end")
    parser.add_argument("--hourly", type=int, default=0,
                        help="then trigger this many one-hour ingest_events runs (the newest hour) and time them")
    parser.add_argument("--settle", type=float, default=0,
                        help="seconds to wait after the milestone before the one-hour runs (let other runs finish)")
    parser.add_argument("--seed-days", type=int, default=14, help="days of demo events to seed (MAESTRO_SEED_DAYS)")
    parser.add_argument("--until", default="duration",
                        choices=["catch_up", "features", "ranker", "duration", "promoted", "scored", "ranker_champion",
                                 "duration_champion"],
                        help="stop once this milestone (and those before it in time) is reached")
    return parser.parse_args()


def get(url: str, token: str | None = None) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def token_for(base: str) -> str:
    body = json.dumps({"username": "admin", "password": "admin"}).encode()
    request = urllib.request.Request(f"{base}/auth/token", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["access_token"])


def first_success(base: str, token: str, dag_id: str) -> dict | None:
    runs = get(f"{base}/api/v2/dags/{dag_id}/dagRuns?state=success&order_by=end_date&limit=1", token)["dag_runs"]
    return runs[0] if runs else None


def has_alias(mlflow: str, name: str, alias: str = "challenger") -> bool:
    try:
        get(f"{mlflow}/api/2.0/mlflow/registered-models/alias?name={name}&alias={alias}")
        return True
    except Exception:
        return False


def published(base: str, token: str) -> bool:
    """A ``score_open_tasks`` run pushed scores (a run without a champion succeeds with its tasks skipped)."""
    tasks = get(f"{base}/api/v2/dags/score_open_tasks/dagRuns/~/taskInstances?task_id=publish_scores&state=success",
                token)["task_instances"]
    return bool(tasks)


def post(url: str, token: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return dict(json.loads(response.read()))


def one_hour_run(base: str, token: str) -> dict:
    """Trigger ``ingest_events`` for the newest committed hour; its wall time and each task's, in seconds."""
    # Two hours back: committed by the catch-up, whatever the minute.
    hour = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H")
    run = post(f"{base}/api/v2/dags/ingest_events/dagRuns", token, {"logical_date": None, "conf": {"partition": hour}})
    url = f"{base}/api/v2/dags/ingest_events/dagRuns/{run['dag_run_id']}"
    while (run := get(url, token))["state"] not in ("success", "failed"):
        time.sleep(1)

    def seconds(item: dict) -> float:
        return round((datetime.fromisoformat(item["end_date"]) - datetime.fromisoformat(item["start_date"]))
                     .total_seconds(), 1)

    tasks = get(f"{url}/taskInstances", token)["task_instances"]
    return {"hour": hour, "state": run["state"], "seconds": seconds(run),
            "queued_to_end": round((datetime.fromisoformat(run["end_date"])
                                    - datetime.fromisoformat(run["queued_at"])).total_seconds(), 1),
            "tasks": {t["task_id"]: seconds(t) for t in tasks if t["end_date"] and t["start_date"]}}


def main() -> int:
    args = parse_args()
    home = Path(args.home)
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "MAESTRO_HOME": str(home), "AIRFLOW__API__PORT": str(args.api_port),
           "MLFLOW_PORT": str(args.mlflow_port), "MAESTRO_SEED_DAYS": str(args.seed_days)}
    for name in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW_HOME", "MLFLOW_TRACKING_URI", "AIRFLOW__API__BASE_URL", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL"):
        env.pop(name, None)
    base, mlflow = f"http://localhost:{args.api_port}", f"http://127.0.0.1:{args.mlflow_port}"
    started = time.monotonic()
    log = open(home.parent / f"{home.name}-up.log", "w")  # noqa: SIM115
    # A job started in the background (`cmd &`, nohup) ignores SIGINT, and up.sh would inherit that: Ctrl-C
    # (the SIGINT sent below) must reach it as it reaches a terminal's foreground job.
    up = subprocess.Popen([str(REPO / "scripts" / "up.sh")], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    marks: dict[str, Any] = {}
    token = None
    try:
        while args.until not in marks and time.monotonic() - started < args.timeout:
            time.sleep(5)
            if up.poll() is not None:
                print(f"up.sh exited with {up.returncode}; see {log.name}", file=sys.stderr)
                return 1
            now = round(time.monotonic() - started)
            try:
                if "ui" not in marks:
                    get(f"{base}/api/v2/monitor/health")
                    marks["ui"] = now
                token = token or token_for(base)
                for mark, dag_id in (("catch_up", "ingest_events"), ("features", "build_features"),
                                     ("materialized", "materialize_features")):
                    if mark not in marks and (run := first_success(base, token, dag_id)):
                        marks[mark] = now
                        marks[f"{mark}_run_seconds"] = round(
                            (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"]))
                            .total_seconds(), 1)
                for mark, name in MODELS.items():
                    if mark not in marks and has_alias(mlflow, name):
                        marks[mark] = now
                    if f"{mark}_champion" not in marks and has_alias(mlflow, name, "champion"):
                        marks[f"{mark}_champion"] = now
                if "promoted" not in marks and first_success(base, token, "promote_models"):
                    marks["promoted"] = now
                if "scored" not in marks and published(base, token):
                    marks["scored"] = now
            except Exception:
                continue
            print(json.dumps(marks), flush=True)
        if token and args.hourly:
            time.sleep(args.settle)
            marks["hourly_runs"] = [one_hour_run(base, token) for _ in range(args.hourly)]
    finally:
        if not args.keep:
            stop_started = time.monotonic()
            up.send_signal(signal.SIGINT)
            up.wait(timeout=300)
            marks["stop_seconds"] = round(time.monotonic() - stop_started, 1)
            sys.path.insert(0, str(REPO / "plugins"))
            import sqlalchemy as sa

            from maestro_ml.platform import metadata_db

            engine = sa.create_engine(metadata_db.start(home / "pgdata"))
            with engine.connect() as db:
                for table in ("task_instance", "dag_run"):
                    marks[f"{table}_running"] = db.execute(
                        sa.text(f"select count(*) from {table} where state = 'running'")).scalar()
            engine.dispose()
            metadata_db.stop(home / "pgdata")
    print(json.dumps(marks))
    return 0 if args.until in marks else 1


if __name__ == "__main__":
    raise SystemExit(main())
