"""The loop on distributed Airflow (issue 15), driven only through the REST API with the official client.

One stack for the module (``tests/e2e/distributed_stack.py``): the CeleryExecutor with two workers
that share nothing on disk, Redis as the broker and the Feast online store, PostgreSQL for the
Airflow metadata, MLflow and the Feast registry, and S3 (moto's server) for landing, lake,
quarantine, features, reports and MLflow's artifacts. As an operator's script would, the tests
trigger ``ingest_events`` for two landed hours with the ``partition`` Param, wait for the
asset-triggered ``build_features`` and ``materialize_features``, and then check what landed where:
the manifests in S3, the online features in Redis read back through Feast, and which worker ran
what. Last, the API's authentication and authorization.

Not covered yet (issue 15 stays open on them): the trainings, promotion, scoring and rollback on
this stack.
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
from tests.e2e.distributed_stack import WORKERS, DistributedStack

pytestmark = pytest.mark.slow

# The simulated organisation's first two hours: the first creates the users and projects, the
# second the first tasks and assignments. The second is a day's last hour, so committing it closes
# that day and sets off the feature build.
FIRST_HOUR = datetime(2026, 11, 19, 22, tzinfo=UTC)
HOURS = [FIRST_HOUR, FIRST_HOUR + timedelta(hours=1)]
RUN_TIMEOUT_S = 420


def _partition(hour: datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H")


def land_two_hours(stack: DistributedStack) -> None:
    """Simulate a day from ``FIRST_HOUR`` straight into S3 and keep only its first two hours of landing files."""
    from maestro_ml import storage
    from maestro_ml.simulation import DirtRates, config_for_preset, simulate

    os.environ.update(stack.s3_env())
    env = stack.maestro_env()
    # Clean data: a late project_created among a handful of rows would trip the state gate's 5% orphan rule.
    config = config_for_preset("demo", start=FIRST_HOUR, days=1, seed=7, dirt=DirtRates.off())
    simulate(config, landing_uri=env["MAESTRO_LANDING_URI"], truth_uri=env["MAESTRO_TRUTH_URI"])
    keep = {f"dt={h:%Y-%m-%d}/hour={h:%H}/" for h in HOURS}
    for uri in storage.glob(f"{env['MAESTRO_LANDING_URI']}/events/dt=*/hour=*/*.jsonl.gz"):
        if not any(k in uri for k in keep):
            storage.remove(uri)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistributedStack]:
    missing = [m for m in ("moto", "airflow.providers.celery", "airflow_client") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"the distributed stack needs {missing} (requirements-dev.txt)")
    saved = dict(os.environ)
    stack = DistributedStack(tmp_path_factory.mktemp("distributed"))
    # No scheduled run may start while the test drives the DAGs: the schedule begins in two days.
    start_date = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:00:00Z")
    try:
        stack.start(start_date, land=land_two_hours)
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


def _wait_for_run(stack: DistributedStack, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT_S) -> str:
    import airflow_client.client as airflow_client

    def finished() -> str | None:
        with stack.client() as client:
            state = _state(airflow_client.DagRunApi(client).get_dag_run(dag_id, run_id).state)
        return state if state in ("success", "failed") else None

    return str(stack.wait(f"{dag_id} {run_id}", finished, timeout, poll=3))


def _runs(stack: DistributedStack, dag_id: str) -> list[Any]:
    import airflow_client.client as airflow_client

    with stack.client() as client:
        return list(airflow_client.DagRunApi(client).get_dag_runs(dag_id).dag_runs)


@pytest.fixture(scope="module")
def ingest_runs(stack: DistributedStack) -> dict[str, str]:
    """Both hours triggered through the REST API, one ``partition`` each; the run ids by hour, once finished."""
    import airflow_client.client as airflow_client

    run_ids = {}
    with stack.client() as client:
        for hour in HOURS:
            body = airflow_client.TriggerDAGRunPostBody(logical_date=None, conf={"partition": _partition(hour)})
            run_ids[_partition(hour)] = str(airflow_client.DagRunApi(client).trigger_dag_run("ingest_events", body)
                                            .dag_run_id)
    for run_id in run_ids.values():
        _wait_for_run(stack, "ingest_events", run_id)
    return run_ids


def test_ingest_events_commits_each_triggered_hour_to_the_lake_in_s3(
    stack: DistributedStack, ingest_runs: dict[str, str], stack_settings: Any
) -> None:
    import airflow_client.client as airflow_client

    from maestro_ml.lake import read_manifest

    with stack.client() as client:
        states = {p: _state(airflow_client.DagRunApi(client).get_dag_run("ingest_events", r).state)
                  for p, r in ingest_runs.items()}
    assert states == dict.fromkeys(ingest_runs, "success"), f"logs in {stack.root / 'logs'} and the workers' homes"
    assert stack_settings.lake_uri.startswith("s3://")
    for hour in HOURS:
        manifest = read_manifest(stack_settings.lake_uri, hour)
        assert manifest is not None, f"no manifest for {hour} under {stack_settings.lake_uri}"
        assert manifest["rows_valid"] > 0 and manifest["rows_quarantined"] == 0
        assert all(entry["path"].startswith("s3://") for entry in manifest["outputs"]["data"])


def test_the_closed_day_sets_off_build_and_materialize_features(stack: DistributedStack, ingest_runs: dict) -> None:
    for dag_id in ("build_features", "materialize_features"):
        runs = stack.wait(f"an asset-triggered {dag_id} run", lambda d=dag_id: _runs(stack, d), RUN_TIMEOUT_S, poll=3)
        assert _state(runs[0].run_type) == "asset_triggered", runs[0]
        assert _wait_for_run(stack, dag_id, str(runs[0].dag_run_id)) == "success"


def test_online_features_read_back_from_redis_through_feast(
    stack: DistributedStack, ingest_runs: dict, stack_settings: Any
) -> None:
    from maestro_ml.feast_ext.store import get_store
    from maestro_ml.lake import read_state

    test_the_closed_day_sets_off_build_and_materialize_features(stack, ingest_runs)
    users = read_state(stack_settings.lake_uri, "users")
    assert users is not None and users.num_rows > 0
    user_ids = users.column("user_id").to_pylist()[:20]
    store = get_store(stack_settings)
    assert type(store._get_provider().online_store).__name__ == "MaestroRedisOnlineStore"
    online = store.get_online_features(
        features=["user_profile_features:team_id", "user_profile_features:is_active"],
        entity_rows=[{"user_id": u} for u in user_ids],
    ).to_dict()
    teams = dict(zip(users.column("user_id").to_pylist(), users.column("team_id").to_pylist(), strict=True))
    assert online["team_id"] == [teams[u] for u in user_ids]
    assert set(online["is_active"]) == {1}


def test_tasks_ran_on_both_workers(stack: DistributedStack, ingest_runs: dict) -> None:
    import airflow_client.client as airflow_client

    test_the_closed_day_sets_off_build_and_materialize_features(stack, ingest_runs)
    hosts: dict[str, set[str]] = {}
    with stack.client() as client:
        instances = airflow_client.TaskInstanceApi(client).get_task_instances("~", "~", limit=100).task_instances
    for ti in instances:
        hosts.setdefault(str(ti.hostname), set()).add(f"{ti.dag_id}.{ti.task_id}")
    assert set(WORKERS) <= set(hosts), f"tasks by host: {hosts}"


def test_no_task_hands_another_a_path_on_its_own_worker(stack: DistributedStack, ingest_runs: dict) -> None:
    """Every XCom of the loop names shared stores only: none holds a path under a worker's local directories.

    (Both workers share this machine's disk, so a task reading another worker's local file would
    still succeed here; the XComs are where such a hand-over shows.)"""
    import airflow_client.client as airflow_client

    test_the_closed_day_sets_off_build_and_materialize_features(stack, ingest_runs)
    local = str(stack.root)
    leaks = []
    with stack.client() as client:
        api = airflow_client.XComApi(client)
        entries = api.get_xcom_entries("~", "~", "~", limit=500).xcom_entries
        assert entries, "no XCom at all: nothing was checked"
        for entry in entries:
            value = api.get_xcom_entry(entry.dag_id, entry.task_id, entry.run_id, entry.key,
                                       map_index=entry.map_index, stringify=True)
            if local in json.dumps(value.to_dict(), default=str):
                leaks.append(f"{entry.dag_id}.{entry.task_id}[{entry.map_index}] {entry.key}")
    assert leaks == [], f"XComs naming a worker's local files: {leaks}"


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
                   {"logical_date": None, "conf": {"partition": _partition(HOURS[0])}}) == 403
    assert _status(stack, "PATCH", "/api/v2/dags/ingest_events", token, {"is_paused": True}) == 403
