"""The training DAGs run weekly or when monitoring requests a retraining, each taking only its own model's
requests, and the request's reason travels to the MLflow run's tags."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

DAGS = Path(__file__).resolve().parents[2] / "dags"
NOW = datetime(2026, 12, 3, 7, 12, tzinfo=UTC)


def _events(*models: str) -> dict[Any, list[Any]]:
    from maestro_ml.orchestration.assets import RETRAINING_REQUESTED

    return {RETRAINING_REQUESTED: [
        SimpleNamespace(extra={"model": m, "rule": "feature_drift", "reason": f"{m}: 6 features drifted 2 days"},
                        timestamp=NOW) for m in models]}


@pytest.mark.parametrize("dag_id", ["train_task_assignment", "train_task_duration"])
def test_each_training_runs_weekly_or_on_a_retraining_request(dag_id: str) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"), safe_mode=False).dags[dag_id]
    assert dag.timetable.asset_condition.name == "retraining_requested"
    assert dag.timetable.timetable.summary == "0 0 * * 0", "weekly, Sundays at midnight UTC"


def test_a_request_for_the_other_model_skips_the_run() -> None:
    from maestro_ml.orchestration.training import check_params

    with pytest.raises(AirflowSkipException, match="another model"):
        check_params.function("task_duration", params={}, data_interval_end=NOW,
                              triggering_asset_events=_events("task_assignment"))


def test_a_request_trains_up_to_the_last_midnight_and_carries_its_reason() -> None:
    from maestro_ml.orchestration.training import check_params

    checked = check_params.function("task_duration", params={}, data_interval_end=NOW,
                                    triggering_asset_events=_events("task_assignment", "task_duration"))
    assert checked["window"]["end"] == "2026-12-03T00:00:00+00:00"
    assert checked["retraining"]["model"] == "task_duration"
    assert checked["retraining"]["reason"] == "task_duration: 6 features drifted 2 days"


def test_a_weekly_run_is_not_a_retraining() -> None:
    from maestro_ml.orchestration.training import check_params

    checked = check_params.function("task_duration", params={}, data_interval_end=datetime(2026, 11, 29, tzinfo=UTC))
    assert checked["retraining"] is None and checked["window"]["end"] == "2026-11-29T00:00:00+00:00"
