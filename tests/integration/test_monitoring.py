"""Monitoring the champions (``maestro_ml.monitoring.steps``, ``monitor_models``) with real champions trained on
the tiny lake, real scores served by ``score_open_tasks``' steps, real MLflow and real Airflow runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from maestro_ml.settings import get_settings

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=2)
DAY = date(2026, 11, 3)  # the tiny lake's newest committed hour ends at 03:00 on this day: it is scored then


@pytest.fixture(scope="module")
def served(tiny_features_home: Path, tmp_path_factory: pytest.TempPathFactory,
           train_and_register: Any) -> Iterator[dict[str, Any]]:
    """One ranker and one duration version, both champions, and one scoring run's served rows (on DAY)."""
    from maestro_ml.feast_ext.steps import materialize_all
    from maestro_ml.registry.aliases import alias_state, promote
    from maestro_ml.scoring.steps import champions, score

    out = tmp_path_factory.mktemp("monitoring")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
        get_settings.cache_clear()
        done = train_and_register(out, [("task_assignment", ["--epochs", "2", "--lgb-num-boost-round", "20"]),
                                        ("task_duration", ["--epochs", "3"])])
        settings = done["settings"]
        materialize_all({"start": START.isoformat(), "end": END.isoformat()})
        yield {"settings": settings, "versions": done["versions"], "promote": lambda: [
            promote(model, versions[0], alias_state(model, settings), settings)
            for model, versions in done["versions"].items() if alias_state(model, settings).champion is None],
            "score": lambda: score(champions(settings), None, top_k=5, settings=settings)}
    get_settings.cache_clear()


@pytest.fixture
def env(served: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", served["settings"].mlflow_tracking_uri)
    get_settings.cache_clear()
    yield served
    get_settings.cache_clear()


def _clear_reports(model: str) -> None:
    import shutil

    shutil.rmtree(Path(get_settings().reports_uri) / "monitoring" / model, ignore_errors=True)


def test_without_a_champion_the_run_is_skipped_with_a_message(env: dict[str, Any], run_dag: Any,
                                                              task_states: Any) -> None:
    from maestro_ml.monitoring.steps import NothingToMonitor, monitor

    with pytest.raises(NothingToMonitor, match="no champion"):
        monitor("task_assignment", DAY)
    run = run_dag("monitor_models", conf={"model": "all", "date": DAY.isoformat()})
    states = task_states(run)
    assert states["check_params"] == "success"
    assert states["monitor_model"] == "skipped" and states["request_retraining"] == "skipped"


def test_a_day_without_served_scores_is_skipped_with_the_count(env: dict[str, Any]) -> None:
    from maestro_ml.monitoring.steps import NothingToMonitor, monitor

    env["promote"]()
    with pytest.raises(NothingToMonitor, match="0 rows"):
        monitor("task_duration", DAY - timedelta(days=1))


def test_a_run_writes_the_report_the_summary_and_an_mlflow_run(env: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    from maestro_ml.monitoring.steps import MONITORING_EXPERIMENT, monitor
    from maestro_ml.registry import model_inputs
    from maestro_ml.scoring.champions import load_champion, resolve_champions

    env["promote"]()
    env["score"]()
    _clear_reports("task_assignment")
    result = monitor("task_assignment", DAY)
    html_path, json_path = Path(result["uris"]["html"]), Path(result["uris"]["json"])
    assert html_path.name == f"{DAY.isoformat()}.html" and html_path.parent.name == "task_assignment"
    summary = json.loads(json_path.read_text())
    champion = resolve_champions()["task_assignment"]
    inputs = model_inputs(load_champion(champion))
    assert summary["feature_drift"]["features"] == len(inputs), "every input of the signature is compared"
    assert summary["served_rows"] > 0 and summary["reference_rows"] > 0 and summary["current_rows"] > 0
    assert summary["prediction_drift"]["outputs"][0]["feature"] == "score"
    assert "<html" in html_path.read_text().lower()
    # The tiny lake has no outcome after the scoring hour: the realised figures are insufficient, with counts.
    assert any("too few outcomes" in skip for skip in result["skips"]), result["skips"]
    runs = MlflowClient(get_settings().mlflow_tracking_uri).search_runs(
        [MlflowClient(get_settings().mlflow_tracking_uri).get_experiment_by_name(MONITORING_EXPERIMENT)
         .experiment_id], filter_string=f"tags.day = '{DAY.isoformat()}' and tags.model = 'task_assignment'")
    assert runs and runs[0].data.tags["report_uri"] == result["uris"]["html"]


@pytest.fixture
def shifted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The day's decisions, really built, then moved far from training: a drift no threshold misses."""
    from maestro_ml.monitoring import steps

    built = steps.current_sample

    def far(*args: Any, **kwargs: Any) -> pd.DataFrame | None:
        frame = built(*args, **kwargs)
        assert frame is not None, "the tiny lake has decisions on DAY"
        for column in frame.columns:
            if pd.api.types.is_float_dtype(frame[column]) and not column.startswith("outcome_"):
                frame[column] = frame[column] * 3.0 + 50.0
        return frame

    monkeypatch.setattr(steps, "current_sample", far)


def test_drift_for_k_days_requests_a_retraining_once_and_the_cool_down_holds_the_next(env: dict[str, Any],
                                                                                      shifted: None) -> None:
    from maestro_ml.monitoring.steps import MonitoringRules, monitor

    env["promote"]()
    env["score"]()
    _clear_reports("task_assignment")
    rules = MonitoringRules(drift_min_features=3, drift_min_days=2, cooldown_days=3)
    # The day before: drifted too (its summary is the history the rule reads).
    first = monitor("task_assignment", DAY, rules)
    assert first["retraining"] is None, "one drifted day is not enough"
    drifted = json.loads(Path(first["uris"]["json"]).read_text())["feature_drift"]["drifted_count"]
    assert drifted >= 3
    yesterday = Path(first["uris"]["json"]).with_name(f"{(DAY - timedelta(days=1)).isoformat()}.json")
    Path(first["uris"]["json"]).rename(yesterday)
    second = monitor("task_assignment", DAY, rules)
    assert second["retraining"] is not None and second["retraining"]["model"] == "task_assignment"
    assert second["retraining"]["rule"] == "feature_drift"
    assert "2 consecutive day(s)" in second["retraining"]["reason"]
    # The request is on record for DAY; the next day drifts again but the cool-down holds it back.
    Path(second["uris"]["json"]).rename(yesterday)
    third = monitor("task_assignment", DAY, MonitoringRules(drift_min_features=3, drift_min_days=1, cooldown_days=3))
    assert third["retraining"] is None and "cool-down" in (third["suppressed"] or "")
    assert np.isfinite(third["seconds"]["total"])


def test_the_dag_emits_a_retraining_request_with_the_model_rule_and_figures(
        env: dict[str, Any], run_dag: Any, task_states: Any, shifted: None) -> None:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    env["promote"]()
    env["score"]()
    _clear_reports("task_assignment")
    conf = {"model": "task_assignment", "date": DAY.isoformat(), "drift_min_features": 3, "drift_min_days": 1}
    run = run_dag("monitor_models", conf=conf)
    states = task_states(run)
    assert states["monitor_model"] == "success" and states["request_retraining"] == "success", states
    with create_session() as session:
        events = [e for e in session.query(AssetEvent).all()
                  if e.source_run_id == run.run_id and e.source_dag_id == "monitor_models"]
    assert len(events) == 1
    extra = events[0].extra
    assert extra["model"] == "task_assignment" and extra["rule"] == "feature_drift" and extra["drifted_features"]
