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
