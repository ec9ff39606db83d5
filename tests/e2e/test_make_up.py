"""`make up` as a user runs it: `scripts/up.sh` on a fresh MAESTRO_HOME, driven through the REST API.

One stack for the module (embedded PostgreSQL metadata DB, LocalExecutor, MLflow server; two seeded
days so the catch-up is short), on free ports. The tests run in order: the catch-up, a burst of
triggers, the README's examples (``maestro_ml.platform.examples``, the requests ``make up``
prints), a rollback through the official client (``maestro_ml.platform.rollback``, the README's
command), and last a Ctrl-C while a backfill runs. DAGs start paused here, except those a test
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
    mlflow_url: str = ""
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
    stack = Stack(home, f"http://localhost:{api_port}", process, log, mlflow_url=f"http://127.0.0.1:{mlflow_port}")
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


ROLLBACK_MODEL = "task_duration"
ROLLBACK_REASON = "v2 underestimates long tasks since the last release"
# The README's rollback command ("Promotion and rollback"), run as written from the repository root; the
# stack's Airflow URL comes from AIRFLOW__API__BASE_URL, as in a `make up` shell.
README_ROLLBACK = ("PYTHONPATH=plugins .venv/bin/python -m maestro_ml.platform.rollback --model task_duration "
                   f'--reason "{ROLLBACK_REASON}"')


@dataclass(frozen=True)
class RollbackRegistry:
    settings: Any  # maestro_ml.settings.Settings pointed at the stack's MAESTRO_HOME, lake and MLflow server
    older: str
    newer: str


@pytest.fixture(scope="module")
def rollback_registry(stack: Stack) -> RollbackRegistry:
    """Two real, tiny pyfunc versions of the duration model in the stack's MLflow registry: ``champion`` on
    the newer, ``previous_champion`` on the older, and ``promote_models`` unpaused.

    Training both models inside the stack would take the two cores for many minutes. A rollback never loads,
    scores or evaluates a model (``build_holdout`` and ``evaluate_candidate`` pass it through; only the
    aliases move), so registered versions are the whole state it acts on.
    """
    import dataclasses
    import tempfile

    import mlflow
    from mlflow import MlflowClient

    from maestro_ml.contracts.models import model_spec
    from maestro_ml.registry.aliases import CHAMPION, PREVIOUS_CHAMPION
    from maestro_ml.settings import join_uri, load_settings

    class ConstantHours(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
            return [1.0] * len(model_input)

    settings = dataclasses.replace(load_settings(), home=str(stack.home), lake_uri=join_uri(str(stack.home), "lake"),
                                   mlflow_tracking_uri=stack.mlflow_url)
    client = MlflowClient(tracking_uri=stack.mlflow_url)
    name = model_spec(ROLLBACK_MODEL).registered_name
    experiment = client.create_experiment("e2e-rollback")
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name)
    versions = []
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.pyfunc.save_model(f"{tmp}/model", python_model=ConstantHours(), pip_requirements=["mlflow"])
        for _ in range(2):
            run = client.create_run(experiment)
            client.log_artifacts(run.info.run_id, f"{tmp}/model", "model")
            client.set_terminated(run.info.run_id)
            versions.append(str(client.create_model_version(
                name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id).version))
    older, newer = versions
    client.set_registered_model_alias(name, PREVIOUS_CHAMPION, older)
    client.set_registered_model_alias(name, CHAMPION, newer)
    stack.unpause("promote_models")
    return RollbackRegistry(settings, older, newer)


def test_the_trigger_form_asks_for_a_reason_for_a_rollback(stack: Stack) -> None:
    import airflow_client.client as airflow_client

    stack.wait("promote_models to be parsed",
               lambda: stack.request("GET", "/api/v2/dags/promote_models")[0] == 200, 120)
    with stack.client() as client:
        params = airflow_client.DAGApi(client).get_dag_details("promote_models").params or {}
    # What the UI's trigger form renders: each Param's JSON schema, its title the field's label.
    assert "rollback" in params["action"]["schema"]["enum"], params["action"]
    title = str(params["reason"]["schema"].get("title", ""))
    assert "required" in title.lower() and "rollback" in title.lower(), params["reason"]
    assert params["reason"]["value"] is None, "the reason must be typed in, never defaulted"


def test_a_rollback_without_a_reason_fails_at_check_params_without_retries(
        stack: Stack, rollback_registry: RollbackRegistry) -> None:
    import airflow_client.client as airflow_client

    from maestro_ml.platform.rollback import DAG_ID, trigger_rollback, wait_for_run
    from maestro_ml.registry.aliases import alias_state
    from maestro_ml.registry.audit import history

    with stack.client() as client:
        run_id = trigger_rollback(client, ROLLBACK_MODEL, None)
        state, failed = wait_for_run(client, run_id, timeout=300, poll=2)
        check = airflow_client.TaskInstanceApi(client).get_task_instance(DAG_ID, run_id, "check_params")
    assert (state, failed) == ("failed", ("check_params",))
    assert check.try_number == 1 and check.max_tries >= 1, "failed on its first try although retries were allowed"
    aliases = alias_state(ROLLBACK_MODEL, rollback_registry.settings)
    assert (aliases.champion, aliases.previous_champion) == (rollback_registry.newer, rollback_registry.older)
    assert "rollback" not in set(history(ROLLBACK_MODEL, rollback_registry.settings)["action"])


def test_the_readme_rollback_command_rolls_the_champion_back_and_records_who_and_why(
        stack: Stack, rollback_registry: RollbackRegistry) -> None:
    import re

    from mlflow import MlflowClient

    from maestro_ml.contracts.models import model_spec
    from maestro_ml.registry.aliases import alias_state
    from maestro_ml.registry.audit import history

    readme = (REPO / "README.md").read_text()
    if "maestro_ml.platform.rollback" in readme:  # the README shows the command this test runs, verbatim
        assert README_ROLLBACK in readme, "README's rollback command differs from the one tested here"
    # A user's shell in the repository, as the fixture's, with the URL `make up`'s environment gives.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "MAESTRO_", "MLFLOW_", "FEAST_")) and k != "PYTHONPATH"}
    env["AIRFLOW__API__BASE_URL"] = stack.base_url
    done = subprocess.run(["bash", "-c", README_ROLLBACK], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    match = re.search(r"^triggered promote_models (\S+):", done.stdout, re.MULTILINE)
    assert match, output
    run_id = match.group(1)
    assert f"promote_models {run_id}: success" in done.stdout, output

    settings, older, newer = rollback_registry.settings, rollback_registry.older, rollback_registry.newer
    aliases = alias_state(ROLLBACK_MODEL, settings)
    assert (aliases.champion, aliases.previous_champion) == (older, newer)
    records = history(ROLLBACK_MODEL, settings)
    rollbacks = records[records["action"] == "rollback"].to_dict("records")
    assert len(rollbacks) == 1, records
    record = rollbacks[0]
    assert (record["version"], record["champion_before"], record["champion_after"]) == (older, newer, older)
    assert record["reason"] == ROLLBACK_REASON
    assert record["who"] == "admin", record  # the user the command logged in as triggered the run
    assert record["dag_run"] == f"promote_models/{run_id}"
    tags = MlflowClient(tracking_uri=stack.mlflow_url).get_model_version(
        model_spec(ROLLBACK_MODEL).registered_name, older).tags
    assert (tags["promotion"], tags["promotion_reason"]) == ("rolled_back_to", ROLLBACK_REASON)


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
