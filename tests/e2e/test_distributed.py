"""The loop on distributed Airflow (issue 15), driven only through the REST API with the official client.

One stack for the module (``tests/e2e/distributed_stack.py``): the CeleryExecutor with two workers
that share nothing on disk, Redis as the broker and the Feast online store, PostgreSQL for the
Airflow metadata, MLflow and the Feast registry, and S3 (moto's server) for landing, lake,
quarantine, features, reports and MLflow's artifacts.

As an operator's script would, the tests trigger ``ingest_events`` for the first two landed hours
with the ``partition`` Param and for the next two days with ``start``/``end``; wait for the
asset-triggered ``build_features`` and ``materialize_features``; trigger both trainings with Params;
let the asset-triggered promotions decide, train a second ranker and force it in with a reason;
wait for the scoring the champion change sets off; and roll the ranker back with a reason. They
check what landed where (manifests and scores in S3, online features read back from Redis through
Feast, artifacts in S3, the registry aliases and the audit trail), that tasks ran on both workers
and that no task handed another a path on its own worker; last, the API's authentication and
authorization. The tests run in file order: each builds on the one before.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.distributed_stack import USERS, WORKERS, DistributedStack

pytestmark = pytest.mark.slow

# The simulated organisation's first two hours: the first creates the users and projects, the second
# the first tasks and assignments, and it is a day's last hour, so committing it closes that day.
FIRST_HOUR = datetime(2026, 11, 19, 22, tzinfo=UTC)
PARTITIONS = [FIRST_HOUR, FIRST_HOUR + timedelta(hours=1)]
# Two more days through one range run: the trainings' window, then the promotion's holdout day.
RANGE = ("2026-11-20T00", "2026-11-22T00")
TRAINING = {"end": "2026-11-21", "train_days": 0.75, "valid_days": 0.25, "test_days": 0.25, "epochs": 2,
            "min_groups": 5}
TRAININGS = {"task_assignment": "train_task_assignment", "task_duration": "train_task_duration"}
RUN_TIMEOUT_S = 420


def _partition(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H")


def land_events(stack: DistributedStack) -> None:
    """Simulate straight into S3 the hours the tests ingest: the first two, then two days."""
    from maestro_ml import storage
    from maestro_ml.simulation import DirtRates, config_for_preset, simulate

    os.environ.update(stack.s3_env())
    env = stack.maestro_env()
    # Clean data: a late project_created among a handful of rows would trip the state gate's 5% orphan rule.
    config = config_for_preset("demo", start=FIRST_HOUR, days=3, seed=7, dirt=DirtRates.off())
    simulate(config, landing_uri=env["MAESTRO_LANDING_URI"], truth_uri=env["MAESTRO_TRUTH_URI"])
    for uri in storage.glob(f"{env['MAESTRO_LANDING_URI']}/events/dt=*/hour=*/*.jsonl.gz"):
        if "/dt=2026-11-22/" in uri:
            storage.remove(uri)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistributedStack]:
    missing = [m for m in ("moto", "airflow.providers.celery", "airflow_client") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the distributed stack needs {missing} (requirements-dev.txt)")
    saved = dict(os.environ)
    stack = DistributedStack(tmp_path_factory.mktemp("distributed"))
    # No scheduled ingest run may start while the test drives the DAG: its schedule begins in two days.
    start_date = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:00:00Z")
    try:
        stack.start(start_date, land=land_events)
        yield stack
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(stack.root, ignore_errors=True)


@pytest.fixture
def stack_settings(stack: DistributedStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """This process's settings pointed at the stack's stores (as a worker's are)."""
    from maestro_ml.settings import get_settings

    for name, value in {**stack.maestro_env(), "MAESTRO_HOME": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _state(value: Any) -> str:
    return str(getattr(value, "value", value))


def _trigger(stack: DistributedStack, dag_id: str, conf: dict[str, Any]) -> str:
    import airflow_client.client as airflow_client

    with stack.client() as client:
        body = airflow_client.TriggerDAGRunPostBody(logical_date=None, conf=conf)
        return str(airflow_client.DagRunApi(client).trigger_dag_run(dag_id, body).dag_run_id)


def _runs(stack: DistributedStack, dag_id: str) -> list[Any]:
    import airflow_client.client as airflow_client

    with stack.client() as client:
        return list(airflow_client.DagRunApi(client).get_dag_runs(dag_id, limit=100).dag_runs)


def _wait_for_run(stack: DistributedStack, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT_S) -> str:
    import airflow_client.client as airflow_client

    def finished() -> str | None:
        with stack.client() as client:
            state = _state(airflow_client.DagRunApi(client).get_dag_run(dag_id, run_id).state)
        return state if state in ("success", "failed") else None

    return str(stack.wait(f"{dag_id} {run_id}", finished, timeout, poll=3))


def _settled(stack: DistributedStack, dag_id: str, after: datetime) -> list[Any] | None:
    """``dag_id``'s runs once one was queued after ``after`` and none is still going; else None."""
    runs = _runs(stack, dag_id)
    if not any(r.queued_at and r.queued_at >= after for r in runs):
        return None
    return None if any(_state(r.state) in ("queued", "running") for r in runs) else runs


def _task_states(stack: DistributedStack, dag_id: str, run_id: str) -> dict[str, str]:
    import airflow_client.client as airflow_client

    with stack.client() as client:
        instances = airflow_client.TaskInstanceApi(client).get_task_instances(dag_id, run_id).task_instances
    return {ti.task_id: _state(ti.state) for ti in instances}


def _fail_scheduled_runs(stack: DistributedStack, dag_id: str) -> None:
    """An operator's clean-up: the weekly run that fired on the first parse waits up to 12 hours for a window
    of data this stack never gets, and would hold the DAG's one active run."""
    import airflow_client.client as airflow_client

    with stack.client() as client:
        api = airflow_client.DagRunApi(client)
        for run in api.get_dag_runs(dag_id).dag_runs:
            if _state(run.run_type) == "scheduled" and _state(run.state) in ("queued", "running"):
                api.patch_dag_run(dag_id, run.dag_run_id,
                                  airflow_client.DAGRunPatchBody(state=airflow_client.DagRunMutableStates.FAILED))


def _aliases(stack: DistributedStack, model: str) -> Any:
    """The registry's aliases of ``model`` on the stack's MLflow server."""
    import dataclasses

    from maestro_ml.registry.aliases import alias_state
    from maestro_ml.settings import load_settings

    return alias_state(model, dataclasses.replace(load_settings(), mlflow_tracking_uri=stack.mlflow_url))


# ------------------------------------------------------------------ the loop, step by step


@pytest.fixture(scope="module")
def ingest_runs(stack: DistributedStack) -> dict[str, Any]:
    """The first two hours one ``partition`` each, then the range: run ids by what they took, once finished."""
    run_ids = {_partition(h): _trigger(stack, "ingest_events", {"partition": _partition(h)}) for h in PARTITIONS}
    run_ids["range"] = _trigger(stack, "ingest_events", {"start": RANGE[0], "end": RANGE[1]})
    states = {what: _wait_for_run(stack, "ingest_events", run_id) for what, run_id in run_ids.items()}
    return {"run_ids": run_ids, "states": states, "done_at": datetime.now(UTC)}


@pytest.fixture(scope="module")
def features_ready(stack: DistributedStack, ingest_runs: dict[str, Any]) -> dict[str, list[Any]]:
    """Every asset-triggered feature build and materialization the ingest runs set off, finished."""
    range_run = ingest_runs["run_ids"]["range"]
    range_started = next(r for r in _runs(stack, "ingest_events") if r.dag_run_id == range_run).start_date
    built = stack.wait("the feature builds", lambda: _settled(stack, "build_features", range_started), RUN_TIMEOUT_S)
    newest_build = max(r.queued_at for r in built)
    materialized = stack.wait("the materializations", lambda: _settled(stack, "materialize_features", newest_build),
                              RUN_TIMEOUT_S)
    return {"build_features": built, "materialize_features": materialized}


@pytest.fixture(scope="module")
def challengers(stack: DistributedStack, ingest_runs: dict) -> dict[str, str]:
    """Both trainings triggered with Params, run to the end; the version each registered. They are triggered
    as soon as the data is committed: their ``wait_for_features`` sensor holds them until the features are."""
    for dag_id in TRAININGS.values():
        _fail_scheduled_runs(stack, dag_id)
    runs = {model: _trigger(stack, dag_id, TRAINING) for model, dag_id in TRAININGS.items()}
    for model, run_id in runs.items():
        assert _wait_for_run(stack, TRAININGS[model], run_id) == "success", _task_states(stack, TRAININGS[model],
                                                                                           run_id)
    return {model: str(_aliases(stack, model).challenger) for model in TRAININGS}


@pytest.fixture(scope="module")
def ranker_versions(stack: DistributedStack, challengers: dict[str, str]) -> tuple[str, str]:
    """The first ranker as champion (the gates' own decision, or forced in with a reason), then a second
    ranker forced in: the champion and previous_champion a rollback needs."""
    first = challengers["task_assignment"]
    registered = datetime.now(UTC) - timedelta(minutes=5)
    stack.wait("the promotions the new challengers set off", lambda: _settled(stack, "promote_models", registered),
               RUN_TIMEOUT_S)
    if _aliases(stack, "task_assignment").champion != first:
        run = _trigger(stack, "promote_models", {"model": "task_assignment", "action": "promote", "version": first,
                                                 "force": True, "reason": "e2e: the first ranker"})
        assert _wait_for_run(stack, "promote_models", run) == "success"
    run = _trigger(stack, "train_task_assignment", {**TRAINING, "hyperparameters": {"lgb-num-leaves": 15}})
    assert _wait_for_run(stack, "train_task_assignment", run) == "success"
    second = str(_aliases(stack, "task_assignment").challenger)
    run = _trigger(stack, "promote_models", {"model": "task_assignment", "action": "promote", "version": second,
                                             "force": True, "reason": "e2e: a second ranker, forced in"})
    assert _wait_for_run(stack, "promote_models", run) == "success", _task_states(stack, "promote_models", run)
    return first, second


# ------------------------------------------------------------------ what the loop left behind


def test_ingest_events_commits_each_triggered_hour_to_the_lake_in_s3(
    ingest_runs: dict[str, Any], stack_settings: Any
) -> None:
    from maestro_ml.lake import committed_hours, read_manifest

    assert ingest_runs["states"] == dict.fromkeys(ingest_runs["run_ids"], "success")
    assert stack_settings.lake_uri.startswith("s3://")
    hours = committed_hours(stack_settings.lake_uri)
    assert hours[:2] == PARTITIONS and len(hours) == 2 + 48
    for hour in PARTITIONS:
        manifest = read_manifest(stack_settings.lake_uri, hour)
        assert manifest is not None and manifest["rows_valid"] > 0 and manifest["rows_quarantined"] == 0
        assert all(entry["path"].startswith("s3://") for entry in manifest["outputs"]["data"])


def test_the_closed_days_set_off_build_and_materialize_features(features_ready: dict[str, list[Any]]) -> None:
    for dag_id, runs in features_ready.items():
        assert runs and all(_state(r.run_type) == "asset_triggered" for r in runs), dag_id
        assert {_state(r.state) for r in runs} == {"success"}, [(r.dag_run_id, _state(r.state)) for r in runs]


def test_online_features_read_back_from_redis_through_feast(features_ready: dict, stack_settings: Any) -> None:
    from maestro_ml.feast_ext.store import get_store
    from maestro_ml.lake import read_state

    users = read_state(stack_settings.lake_uri, "users")
    assert users is not None and users.num_rows > 0
    user_ids = users.column("user_id").to_pylist()[:20]
    store = get_store(stack_settings)
    assert type(store._get_provider().online_store).__name__ == "MaestroRedisOnlineStore"
    online = store.get_online_features(
        features=["user_profile_features:team_id", "user_profile_features:is_active"],
        entity_rows=[{"user_id": u} for u in user_ids],
    ).to_dict()
    state = users.to_pandas().set_index("user_id")
    assert online["team_id"] == state.loc[user_ids, "team_id"].tolist()
    assert online["is_active"] == state.loc[user_ids, "left_at"].isna().astype(int).tolist()


def test_both_trainings_register_a_challenger_with_its_artifacts_in_s3(
    stack: DistributedStack, challengers: dict[str, str]
) -> None:
    import boto3

    assert all(v.isdigit() for v in challengers.values()), challengers
    s3 = boto3.client("s3", endpoint_url=stack.s3_endpoint, aws_access_key_id="e2e", aws_secret_access_key="e2e-secret",
                      region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=stack.bucket, Prefix="mlflow/").get("Contents", [])]
    assert any(k.endswith("MLmodel") for k in keys), keys[:20]


def test_a_forced_promotion_moves_the_champion_and_the_audit_trail_keeps_why(
    stack: DistributedStack, ranker_versions: tuple[str, str], stack_settings: Any
) -> None:
    from maestro_ml.registry.audit import history

    first, second = ranker_versions
    aliases = _aliases(stack, "task_assignment")
    assert (aliases.champion, aliases.previous_champion) == (second, first)
    records = history("task_assignment", stack_settings)
    forced = records[(records["action"] == "promote") & (records["version"] == second)]
    assert not forced.empty and forced.iloc[-1]["reason"] == "e2e: a second ranker, forced in"
    # The duration challenger's asset-triggered promotion decided too (promoted or rejected, with its gates).
    decided = history("task_duration", stack_settings)
    assert (decided["version"] == _aliases(stack, "task_duration").challenger).any(), decided


def test_the_champion_change_sets_off_scoring_into_s3(
    stack: DistributedStack, ranker_versions: tuple[str, str], stack_settings: Any
) -> None:
    from maestro_ml import storage

    promoted = max(r.end_date for r in _runs(stack, "promote_models") if r.end_date)
    runs = stack.wait("a scoring run after the promotion",
                      lambda: _settled(stack, "score_open_tasks", promoted - timedelta(seconds=30)), RUN_TIMEOUT_S)
    scored = [r for r in runs if _state(r.state) == "success"
              and _task_states(stack, "score_open_tasks", r.dag_run_id).get("score_tasks") == "success"]
    assert scored, [(r.dag_run_id, _state(r.state)) for r in runs]
    assert storage.glob(f"{stack_settings.scores_uri}/**/*.parquet"), stack_settings.scores_uri


def test_a_rollback_with_a_reason_restores_the_previous_champion(
    stack: DistributedStack, ranker_versions: tuple[str, str], stack_settings: Any
) -> None:
    from maestro_ml.platform.rollback import rollback
    from maestro_ml.registry.audit import history

    first, second = ranker_versions
    result = rollback("task_assignment", "e2e: roll the forced ranker back", stack.base_url, "operator",
                      USERS["operator"][1], timeout=RUN_TIMEOUT_S, poll=3, echo=None)
    assert result.state == "success", result
    aliases = _aliases(stack, "task_assignment")
    assert (aliases.champion, aliases.previous_champion) == (first, second)
    last = history("task_assignment", stack_settings).iloc[-1]
    assert (last["action"], last["version"], last["reason"], last["who"]) == (
        "rollback", first, "e2e: roll the forced ranker back", "operator")


def test_tasks_ran_on_both_workers(stack: DistributedStack, ranker_versions: tuple[str, str]) -> None:
    import airflow_client.client as airflow_client

    hosts: dict[str, set[str]] = {}
    with stack.client() as client:
        instances = airflow_client.TaskInstanceApi(client).get_task_instances("~", "~", limit=1000).task_instances
    for ti in instances:
        hosts.setdefault(str(ti.hostname), set()).add(f"{ti.dag_id}.{ti.task_id}")
    assert set(WORKERS) <= set(hosts), f"tasks by host: {hosts}"


def test_no_task_hands_another_a_path_on_its_own_worker(stack: DistributedStack, ranker_versions: tuple) -> None:
    """Every XCom of the loop names shared stores only: none holds a path under a worker's local directories.

    (Both workers share this machine's disk, so a task reading another worker's local file would
    still succeed here; the XComs are where such a hand-over shows.)"""
    import airflow_client.client as airflow_client

    local = str(stack.root)
    leaks = []
    with stack.client() as client:
        api = airflow_client.XComApi(client)
        entries = api.get_xcom_entries("~", "~", "~", limit=1000).xcom_entries
        assert entries, "no XCom at all: nothing was checked"
        for entry in entries:
            value = api.get_xcom_entry(entry.dag_id, entry.task_id, entry.run_id, entry.key,
                                       map_index=entry.map_index, stringify=True)
            if local in json.dumps(value.to_dict(), default=str):
                leaks.append(f"{entry.dag_id}.{entry.task_id}[{entry.map_index}] {entry.key}")
    assert leaks == [], f"XComs naming a worker's local files: {leaks}"


# ------------------------------------------------------------------ who may do what


def _status(stack: DistributedStack, method: str, path: str, token: str | None = None, body: Any = None) -> int:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(f"{stack.base_url}{path}", method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_an_unauthenticated_request_is_refused(stack: DistributedStack) -> None:
    assert _status(stack, "GET", "/api/v2/dags") == 401
    assert _status(stack, "POST", "/api/v2/dags/ingest_events/dagRuns", body={"logical_date": None}) == 401


def test_a_wrong_password_gets_no_token(stack: DistributedStack) -> None:
    assert _status(stack, "POST", "/auth/token", body={"username": "operator", "password": "not-it"}) == 401


def test_a_read_only_user_can_read_but_not_trigger(stack: DistributedStack) -> None:
    token = stack.token("auditor")
    assert _status(stack, "GET", "/api/v2/dags", token) == 200
    assert _status(stack, "POST", "/api/v2/dags/ingest_events/dagRuns", token,
                   {"logical_date": None, "conf": {"partition": _partition(PARTITIONS[0])}}) == 403
    assert _status(stack, "PATCH", "/api/v2/dags/ingest_events", token, {"is_paused": True}) == 403
