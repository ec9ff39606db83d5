"""`make up` as a user runs it: `scripts/up.sh` on a fresh MAESTRO_HOME, driven through the REST API.

One stack for the module (embedded PostgreSQL metadata DB, LocalExecutor, MLflow server; two seeded
days so the catch-up is short), on free ports. The tests run in order: the catch-up, a burst of
triggers, the README's examples (``maestro_ml.platform.examples``, the requests ``make up``
prints), and last a Ctrl-C while a backfill runs. DAGs start paused here, except those a test
unpauses: the weekly trainings would otherwise fire at start-up and take the machine's two cores.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SEED_DAYS = 2
STARTUP_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    home: Path
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path
    token: str = ""

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.base_url}{path}", data=data, method=method,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def client(self) -> Any:
        import airflow_client.client as airflow_client

        return airflow_client.ApiClient(airflow_client.Configuration(host=self.base_url, access_token=self.token))

    def wait(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"up.sh exited; see {self.log}"
            try:
                result = check()
            except (OSError, urllib.error.URLError):
                result = None
            if result:
                return result
            time.sleep(2)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; see {self.log} and {self.home}/logs")

    def run_state(self, dag_id: str, run_id: str) -> str:
        status, run = self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        assert status == 200, run
        return str(run["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        return self.wait(f"{dag_id} {run_id} to finish",
                         lambda: (s := self.run_state(dag_id, run_id)) in ("success", "failed") and s, timeout)

    def unpause(self, dag_id: str) -> None:
        self.wait(f"{dag_id} to be parsed", lambda: self.request("GET", f"/api/v2/dags/{dag_id}")[0] == 200, 120)
        status, body = self.request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
        assert status == 200, body


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("make-up") / "maestro"
    api_port, mlflow_port = _free_port(), _free_port()
    # A user's shell, not the test session's: no Airflow, MLflow or Maestro settings leak in.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "MAESTRO_", "MLFLOW_", "FEAST_")) and k != "PYTHONPATH"}
    env.update(MAESTRO_HOME=str(home), MAESTRO_SEED_DAYS=str(SEED_DAYS), AIRFLOW__API__PORT=str(api_port),
               MLFLOW_PORT=str(mlflow_port), AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="True",
               MAESTRO_STOP_TASK_GRACE="30")
    log = home.parent / "up.log"
    with open(log, "wb") as out:
        # As from a terminal: a suite started in the background (nohup, `&`) ignores SIGINT, and a
        # shell cannot trap a signal it was started ignoring, so Ctrl-C would never reach up.sh's stop.
        process = subprocess.Popen([str(REPO / "scripts" / "up.sh")], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stack = Stack(home, f"http://localhost:{api_port}", process, log)
    try:
        def token() -> str | None:
            request = urllib.request.Request(
                f"{stack.base_url}/auth/token", data=json.dumps({"username": "admin", "password": "admin"}).encode(),
                headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                return str(json.loads(response.read())["access_token"])

        stack.token = stack.wait("the api-server", token, STARTUP_TIMEOUT_S)
        yield stack
    finally:
        # Ctrl-C, then SIGTERM (the same ordered stop): the services run in sessions of their own, so
        # killing up.sh alone would leave them running for the rest of the suite.
        for stop in (signal.SIGINT, signal.SIGTERM):
            if process.poll() is None:
                process.send_signal(stop)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=150)
        if process.poll() is None:
            process.kill()


def _runs(stack: Stack, dag_id: str) -> list[dict[str, Any]]:
    status, body = stack.request("GET", f"/api/v2/dags/{dag_id}/dagRuns?order_by=run_after")
    assert status == 200, body
    return list(body["dag_runs"])


def test_the_first_scheduled_ingest_run_catches_up_on_every_seeded_hour(stack: Stack) -> None:
    from maestro_ml.lake import committed_hours

    stack.unpause("ingest_events")
    runs = stack.wait("the catch-up run", lambda: [r for r in _runs(stack, "ingest_events")
                                                   if r["state"] in ("success", "failed")], 300)
    assert runs[0]["state"] == "success", runs[0]
    hours = committed_hours(f"file://{stack.home}/lake")
    assert len(hours) >= SEED_DAYS * 24 - 1, f"{len(hours)} hours committed"


def test_a_burst_of_20_triggers_is_answered_without_an_error(stack: Stack) -> None:
    import airflow_client.client as airflow_client

    # simulate_activity stays paused: the runs queue, only the metadata DB writes are under test.
    with stack.client() as client:
        api = airflow_client.DagRunApi(client)

        def trigger(i: int) -> str:
            body = airflow_client.TriggerDAGRunPostBody(dag_run_id=f"burst-{i}", logical_date=None,
                                                        conf={"preset": "tiny", "days": 1})
            return str(api.trigger_dag_run("simulate_activity", body).dag_run_id)

        stack.wait("simulate_activity to be parsed",
                   lambda: stack.request("GET", "/api/v2/dags/simulate_activity")[0] == 200, 120)
        with ThreadPoolExecutor(max_workers=20) as pool:
            created = list(pool.map(trigger, range(20)))  # any 4xx/5xx raises ApiException
    assert sorted(created) == sorted(f"burst-{i}" for i in range(20))


def test_the_readme_examples_are_accepted_and_the_ingest_ones_succeed(stack: Stack) -> None:
    from maestro_ml.platform.examples import examples
    from maestro_ml.settings import parse_utc_hour

    env = dict(line.split("=", 1) for line in (stack.home / "platform.env").read_text().split())
    items = examples(parse_utc_hour(env["MAESTRO_START_DATE"]), int(env["MAESTRO_SEED_DAYS"]))
    printed = (stack.home / "examples.sh").read_text()
    created = []
    for item in items:
        assert json.dumps(item.body) in printed, f"make up did not print {item.title!r}"
        status, run = stack.request("POST", f"/api/v2/dags/{item.dag_id}/dagRuns", item.body)
        assert status == 200, f"{item.title}: {status} {run}"
        assert run["conf"] == item.conf
        created.append((item, run["dag_run_id"]))
    # The trainings and materialization stay paused (minutes of CPU); their Params were validated
    # when the run was created. The two ingest runs are the re-ingest and the backfill, in order.
    for item, run_id in created:
        if item.dag_id == "ingest_events":
            assert stack.wait_for_run(item.dag_id, run_id, 300) == "success", item.title


def test_ctrl_c_during_a_backfill_leaves_no_task_running(stack: Stack) -> None:
    env = dict(line.split("=", 1) for line in (stack.home / "platform.env").read_text().split())
    start = env["MAESTRO_START_DATE"][:13]
    status, run = stack.request("POST", "/api/v2/dags/ingest_events/dagRuns",
                                {"logical_date": None, "conf": {"start": start, "end": _plus_hours(start, 36)}})
    assert status == 200, run
    run_id = run["dag_run_id"]

    def ingesting() -> bool:
        code, body = stack.request("GET", f"/api/v2/dags/ingest_events/dagRuns/{run_id}/taskInstances")
        return code == 200 and any(t["task_id"] == "ingest_hours" and t["state"] == "running"
                                   for t in body["task_instances"])

    stack.wait("the backfill's ingest_hours to start", ingesting, 180)
    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=180) == 0
    assert not (stack.home / "pgdata" / "postmaster.pid").exists(), "the metadata DB was not stopped"
    left, states = _after_stop(stack.home, run_id)
    assert left == [], f"task instances left behind: {left}"
    # The scheduler stopped first and let the running task finish, reporting to the api-server.
    assert states["ingest_hours"] in ("success", "failed", "up_for_retry"), states


def _after_stop(home: Path, run_id: str) -> tuple[list[Any], dict[str, str]]:
    """Task instances still running or queued, and the states of ``run_id``'s tasks, from the stopped metadata DB."""
    import sqlalchemy as sa

    from maestro_ml.platform import metadata_db

    engine = sa.create_engine(metadata_db.start(home / "pgdata"))
    try:
        with engine.connect() as db:
            left = list(db.execute(sa.text(
                "select dag_id, task_id, state from task_instance where state in ('running', 'queued')")))
            states = dict(db.execute(sa.text("select task_id, state from task_instance where run_id = :run_id"),
                                     {"run_id": run_id}).all())
    finally:
        engine.dispose()
        metadata_db.stop(home / "pgdata")
    return left, {str(k): str(v) for k, v in states.items()}


def _plus_hours(hour: str, hours: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.strptime(hour, "%Y-%m-%dT%H") + timedelta(hours=hours)).strftime("%Y-%m-%dT%H")
