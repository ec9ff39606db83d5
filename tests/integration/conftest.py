"""Real Airflow runs: DAGs parsed from dags/ and executed with ``dag.test()`` on a Postgres metadata DB."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS_DIR), safe_mode=False)
    assert bag.import_errors == {}
    return bag


@pytest.fixture
def run_dag(dagbag) -> Callable[..., Any]:
    """Run one DAG in-process through Airflow and return its DagRun."""

    def _run(dag_id: str, *, logical_date: datetime | None = None, conf: dict | None = None) -> Any:
        dag = dagbag.get_dag(dag_id)
        # dag.test() writes the run's conf into the tasks' own Params: without a reset, one run's
        # Params would be the next run's defaults, which a scheduler-made run never sees.
        saved = {task.task_id: copy.deepcopy(task.params) for task in dag.tasks}
        try:
            return dag.test(logical_date=logical_date, run_conf=conf)
        finally:
            for task in dag.tasks:
                task.params = saved[task.task_id]

    return _run


@pytest.fixture
def task_states() -> Callable[[Any], dict[str, str]]:
    """Task id -> final state of a DagRun's task instances."""

    def _states(dag_run) -> dict[str, str]:
        from airflow.utils.session import create_session

        with create_session() as session:
            return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session)}

    return _states


@pytest.fixture
def task_tries() -> Callable[[Any], dict[str, int]]:
    """Task id -> how many tries a DagRun's task instances took (1: failed at once, no retry)."""

    def _tries(dag_run) -> dict[str, int]:
        from airflow.utils.session import create_session

        with create_session() as session:
            return {ti.task_id: ti.try_number for ti in dag_run.get_task_instances(session=session)}

    return _tries


@pytest.fixture(scope="session")
def train_and_register() -> Callable[..., dict[str, Any]]:
    """Train models on the tiny features with the training CLI, as the training DAGs run it, and register each.

    Call it with MAESTRO_HOME on a tiny features home and MLFLOW_TRACKING_URI / MAESTRO_FEAST_REGISTRY_PATH set:
    ``trainings`` are ``(model, extra CLI flags)``, trained in order on the first 30 hours (validated on the rest);
    each becomes a new version (the ``challenger``). Returns the settings, the validation frames by set kind, and
    the versions and the MLflow runs by model, in training order.
    """
    import json
    import subprocess
    import sys
    from datetime import UTC, timedelta
    from datetime import datetime as dt

    from maestro_ml.contracts.models import model_spec
    from maestro_ml.feast_ext.store import apply_if_changed, get_store
    from maestro_ml.features.training_sets import training_set
    from maestro_ml.registry import register_challenger
    from maestro_ml.settings import load_settings

    start = dt(2026, 11, 1, tzinfo=UTC)
    split, end = start + timedelta(hours=30), start + timedelta(days=2)
    repo_root = DAGS_DIR.parent

    def _train(out: Path, trainings: list[tuple[str, list[str]]]) -> dict[str, Any]:
        apply_if_changed()
        store = get_store()
        kinds = sorted({model_spec(model).training_set for model, _ in trainings})
        uris, frames = {}, {}
        for kind in kinds:
            uris[kind] = str(out / f"{kind}_train.parquet")
            training_set(kind, start, split, store=store).to_parquet(uris[kind])
            frames[kind] = training_set(kind, split, end, store=store)
            uris[f"{kind}_valid"] = str(out / f"{kind}_valid.parquet")
            frames[kind].to_parquet(uris[f"{kind}_valid"])
        settings = load_settings()
        versions: dict[str, list[str]] = {}
        runs: dict[str, list[str]] = {}
        for model, extra in trainings:
            kind = model_spec(model).training_set
            cmd = [sys.executable, "-m", "maestro_ml.training", model, "--train-uri", uris[kind],
                   "--valid-uri", uris[f"{kind}_valid"], "--tracking-uri", settings.mlflow_tracking_uri,
                   "--run-tags", "dag_id=promotion_test,run_id=manual__1", *extra]
            env = {"PYTHONPATH": str(repo_root / "plugins"), "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=repo_root)
            assert done.returncode == 0, done.stderr[-3000:]
            run_id = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][0])["run_id"]
            versions.setdefault(model, []).append(register_challenger(model, run_id, settings)["version"])
            runs.setdefault(model, []).append(run_id)
        return {"settings": settings, "frames": frames, "versions": versions, "runs": runs}

    return _train
