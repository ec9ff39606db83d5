"""train_task_assignment and train_task_duration through real Airflow (dag.test) on the tiny lake, local compute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maestro_ml.features import pipeline
from maestro_ml.settings import get_settings

START = datetime(2026, 11, 1, tzinfo=UTC)
CONF = {"end": "2026-11-03", "train_days": 1, "valid_days": 0.5, "test_days": 0.5, "epochs": 2, "min_groups": 5,
        "hyperparameters": {"lgb-num-boost-round": 20}}


@pytest.fixture(scope="module")
def features_built(tiny_home: Path) -> Path:
    from maestro_ml.feature_store import apply_if_changed

    pipeline.build_features(START, START + timedelta(days=3), validate=False)
    apply_if_changed()
    return tiny_home


@pytest.mark.parametrize(("dag_id", "registered"), [("train_task_assignment", "maestro-task-assignment"),
                                                   ("train_task_duration", "maestro-task-duration")])
def test_training_dag_registers_a_challenger(features_built: Path, run_dag, task_states, dag_id: str,
                                             registered: str) -> None:
    from mlflow import MlflowClient

    run = run_dag(dag_id, conf=CONF)
    states = task_states(run)
    assert set(states.values()) == {"success"}, states
    client = MlflowClient(tracking_uri=get_settings().mlflow_tracking_uri)
    version = client.get_model_version_by_alias(registered, "challenger")
    source_run = client.get_run(version.run_id)
    assert source_run.data.tags["dag_id"] == dag_id and source_run.data.tags["run_id"] == run.run_id
    assert Path(get_settings().lake_uri, "training_sets").exists()


def test_a_window_without_decisions_fails_at_once_and_trains_nothing(features_built: Path, run_dag, task_states) -> None:
    from airflow.utils.session import create_session

    # Ten days before the simulation starts: no decision, no feature row.
    run = run_dag("train_task_assignment", conf={**CONF, "end": "2026-10-20"})
    states = task_states(run)
    assert str(run.state) == "failed"
    assert states["build_training_sets"] == "failed"
    for downstream in ("validate_training_sets", "train_model", "evaluate_model", "register_challenger"):
        assert states[downstream] == "upstream_failed", states
    with create_session() as session:
        tries = {ti.task_id: ti.try_number for ti in run.get_task_instances(session=session)}
    assert tries["build_training_sets"] == 1, "an empty window must not be retried"
