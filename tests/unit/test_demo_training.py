"""What `make demo` trains on and how its summary reads the models back: pure parts, no Airflow or MLflow server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from maestro_ml.features.steps import training_window
from maestro_ml.platform.demo import _best_baseline, _quality, window_params

START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize(("days", "train", "holdout"), [(1, 0.5, 0.25), (2, 1.5, 0.25), (3, 2, 0.5), (14, 10, 2)])
def test_window_params_fit_the_simulated_window(days: int, train: float, holdout: float) -> None:
    params = window_params(START, START + timedelta(days=days))
    assert params == {"end": (START + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"), "train_days": train,
                      "valid_days": holdout, "test_days": holdout}
    # The DAG's own window resolution lands exactly on the simulated window.
    window = training_window(**params)
    assert window["train_start"] == START.isoformat()
    assert window["end"] == (START + timedelta(days=days)).isoformat()


def test_window_params_can_keep_only_the_latest_training_days() -> None:
    params = window_params(START, START + timedelta(days=14), max_train_days=5)
    assert (params["train_days"], params["valid_days"], params["test_days"]) == (5, 2, 2)
    assert training_window(**params)["train_start"] == (START + timedelta(days=5)).isoformat()
    assert window_params(START, START + timedelta(days=3), max_train_days=5)["train_days"] == 2


def test_window_params_refuse_a_window_too_short_to_split() -> None:
    with pytest.raises(ValueError, match="too short"):
        window_params(START, START + timedelta(hours=12))


def test_summary_lines_come_from_the_logged_metric_names() -> None:
    ranker = {"valid_ensemble_ndcg_at_5": 0.71, "valid_ensemble_mrr": 0.6, "test_ensemble_ndcg_at_5": 0.7,
              "valid_ensemble_truth_ndcg_at_5": 0.88, "valid_baseline_random_ndcg_at_5": 0.3,
              "valid_baseline_skill_overlap_ndcg_at_5": 0.5, "valid_baseline_random_truth_ndcg_at_5": 0.35,
              "valid_baseline_least_loaded_truth_ndcg_at_5": 0.61, "ensemble_weight_lightgbm": 0.75}
    assert _best_baseline(ranker, "valid", "_ndcg_at_5") == "skill_overlap 0.500"
    assert _best_baseline(ranker, "valid", "_truth_ndcg_at_5") == "least_loaded 0.610"
    lines = _quality("task_assignment", ranker)
    assert "valid NDCG@5 0.710" in lines[0] and "ground-truth NDCG@5 0.880" in lines[2]
    duration = {"valid_model_mae": 5.24, "valid_baseline_slip_mae": 5.44, "valid_baseline_project_median_mae": 5.31,
                "valid_baseline_global_median_mae": 6.0, "valid_truth_mae": 4.9, "valid_model_coverage80": 0.81,
                "valid_model_coverage90": 0.9, "valid_model_width90": 12.25, "valid_model_interval_score90": 20.0}
    lines = _quality("task_duration", duration)
    assert "valid MAE 5.24 h (best baseline: project_median 5.31 h, truth 4.90 h), test MAE n/a" in lines[0]
    assert "0.810 of 80%, 0.900 of 90% (validation), 90% width 12.2 h, interval score 20.0 h" in lines[1]
