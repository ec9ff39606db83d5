"""When ``promote_models`` runs and what each kind of run decides on: a model Asset promotes that model's
challenger; the daily run takes up every challenger still undecided; a manual run does what its Params say."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowSkipException

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "promote_models.py"


def _check(params: dict[str, Any], run_type: str, events: Any = None) -> list[dict[str, Any]]:
    from maestro_ml.orchestration.promotion import check_params

    dag_run = SimpleNamespace(run_type=run_type, run_id=f"{run_type}__2026-12-03", triggering_user_name=None)
    return check_params.function(params=params, triggering_asset_events=events, dag_run=dag_run)


def test_the_dag_runs_on_either_model_asset_and_daily() -> None:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.timetables.trigger import CronTriggerTimetable

    dag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False).dags["promote_models"]
    assert isinstance(dag.timetable.timetable, CronTriggerTimetable)
    assert {asset.name for asset in dag.timetable.asset_condition.objects} == {"task_assignment_model",
                                                                              "task_duration_model"}


def test_the_daily_run_promotes_each_undecided_challenger(monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_ml.promotion import steps

    monkeypatch.setattr(steps, "undecided_challengers", lambda settings=None: ["task_duration"])
    requests = _check({"model": "task_assignment", "action": "evaluate"}, "scheduled")
    assert [(r["model"], r["action"], r["manual"]) for r in requests] == [("task_duration", "promote", False)]


def test_the_daily_run_skips_when_every_challenger_is_decided(monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_ml.promotion import steps

    monkeypatch.setattr(steps, "undecided_challengers", lambda settings=None: [])
    with pytest.raises(AirflowSkipException, match="nothing to do"):
        _check({}, "scheduled")


def test_a_manual_run_does_what_its_params_say() -> None:
    requests = _check({"model": "task_duration", "action": "evaluate"}, "manual")
    assert [(r["model"], r["action"], r["manual"]) for r in requests] == [("task_duration", "evaluate", True)]
