"""The training entrypoint on tiny data, as the pod or the local process runs it: one MLflow run per training."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from maestro_ml.features.training_sets import training_set
from maestro_ml.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 1, tzinfo=UTC)
SPLIT = START + timedelta(hours=30)
END = START + timedelta(days=2)


@pytest.fixture(scope="module")
def sets(tiny_features_home: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from maestro_ml.feast_ext.store import apply_if_changed, get_store

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAESTRO_FEAST_REGISTRY_PATH", str(tiny_features_home / "training-registry.db"))
        get_settings.cache_clear()
        apply_if_changed()
        store = get_store()
        out = tmp_path_factory.mktemp("sets")
        uris = {}
        for kind, name, lo, hi in (
            ("ranking", "ranking_train", START, SPLIT),
            ("ranking", "ranking_valid", SPLIT, END),
            ("duration", "duration_train", START, SPLIT),
            ("duration", "duration_valid", SPLIT, END),
        ):
            path = out / f"{name}.parquet"
            training_set(kind, lo, hi, store=store).to_parquet(path)
            uris[name] = str(path)
    get_settings.cache_clear()
    return {"uris": uris, "truth": str(tiny_features_home / "truth"), "mlflow": f"sqlite:///{out / 'mlflow.db'}"}


def _cli(model: str, sets: dict[str, Any], *extra: str, tracking_uri: str | None = None) -> Any:
    kind = "ranking" if model == "task_assignment" else "duration"
    cmd = [
        sys.executable, "-m", "maestro_ml.training", model,
        "--train-uri", sets["uris"][f"{kind}_train"], "--valid-uri", sets["uris"][f"{kind}_valid"],
        "--truth-uri", sets["truth"], "--tracking-uri", tracking_uri or sets["mlflow"], "--epochs", "3",
        "--run-tags", "dag_id=train_test,run_id=manual__1",
        *(["--lgb-num-boost-round", "30"] if model == "task_assignment" else []), *extra,
    ]
    env = {"PYTHONPATH": str(REPO_ROOT / "plugins"), "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO_ROOT)


def _train(model: str, sets: dict[str, Any], *extra: str) -> dict[str, Any]:
    out = _cli(model, sets, *extra)
    assert out.returncode == 0, out.stderr[-4000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, out.stdout
    return json.loads(lines[0])


def _client(sets: dict[str, Any]) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=sets["mlflow"])


def _run(sets: dict[str, Any], run_id: str) -> Any:
    return _client(sets).get_run(run_id)


def _logged_models(sets: dict[str, Any], run: Any) -> set[str]:
    """Names of the models (MLflow 3 logged models) a run produced."""
    models = _client(sets).search_logged_models(
        [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
    )
    return {m.name for m in models}


def _artifacts(sets: dict[str, Any], run_id: str) -> set[str]:
    return {a.path for a in _client(sets).list_artifacts(run_id)}


def test_ranker_training_logs_one_complete_run(sets: dict[str, Any]) -> None:
    result = _train("task_assignment", sets)
    run = _run(sets, result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.tags["dag_id"] == "train_test" and run.data.tags["run_id"] == "manual__1"
    assert run.data.tags["model"] == "task_assignment" and run.data.tags["git_sha"]
    assert run.data.params["lgb_num_leaves"] == "31" and int(run.data.params["train_rows"]) > 100
    metrics = run.data.metrics
    for name in ("valid_ensemble_ndcg_at_5", "valid_lightgbm_truth_ndcg_at_5", "valid_baseline_random_ndcg_at_5",
                 "valid_baseline_skill_overlap_mrr", "ensemble_weight_lightgbm"):
        assert name in metrics, name
    assert 0.0 <= metrics["valid_ensemble_ndcg_at_5"] <= 1.0
    assert result["metrics"]["valid_ndcg_at_5"] == pytest.approx(metrics["valid_ensemble_ndcg_at_5"])
    assert {i.dataset.name for i in run.inputs.dataset_inputs} == {"task_assignment-train", "task_assignment-valid"}
    assert {"evaluation.json", "feature_importance.csv", "feature_importance.png", "ndcg_curve.png",
            "model_card.md"} <= _artifacts(sets, result["run_id"])
    assert _logged_models(sets, run) == {"model", "lightgbm_ranker", "torch_scorer"}
    for name in ("lightgbm_train_seconds", "torch_train_seconds", "evaluation_seconds", "model_logging_seconds"):
        assert metrics[name] > 0, name
    # The curves are logged as per-step histories (in batches), one point per boosting round / epoch.
    history = _client(sets).get_metric_history(result["run_id"], "lgb_valid_ndcg_at_5")
    assert [m.step for m in history] == list(range(len(history))) and len(history) > 1
    assert len(_client(sets).get_metric_history(result["run_id"], "torch_train_loss")) >= 1

    # The logged ensemble scores a request through the generic pyfunc interface.
    import mlflow.pyfunc
    import pandas as pd

    mlflow.set_tracking_uri(sets["mlflow"])
    model = mlflow.pyfunc.load_model(f"runs:/{result['run_id']}/model")
    frame = pd.read_parquet(sets["uris"]["ranking_valid"])
    scores = model.predict(frame)
    assert len(scores) == len(frame) and pd.Series(scores).notna().all()
    # A request missing features (a pair without history, an unrecorded field) is scored, not refused by the
    # signature: every numeric input is declared a double.
    holes = frame.copy()
    integer_columns = [c for c in holes.columns if str(holes[c].dtype) == "int64" and c in model.metadata.get_input_schema().input_names()]
    assert integer_columns, "the set has integer features"
    holes[integer_columns] = holes[integer_columns].astype("float64")
    holes.loc[holes.index[:3], integer_columns] = float("nan")
    assert pd.Series(model.predict(holes)).notna().all()


def test_a_lightgbm_only_ranker_is_a_complete_run_too(sets: dict[str, Any]) -> None:
    result = _train("task_assignment", sets, "--ranker-models", "lightgbm")
    run = _run(sets, result["run_id"])
    assert run.data.params["ranker_models"] == "lightgbm"
    assert run.data.metrics["ensemble_weight_lightgbm"] == 1.0 and "torch_train_seconds" not in run.data.metrics
    # Without a scorer the ensemble is LightGBM's own ranking.
    assert run.data.metrics["valid_ensemble_ndcg_at_5"] == pytest.approx(run.data.metrics["valid_lightgbm_ndcg_at_5"])
    assert "model_card.md" in _artifacts(sets, result["run_id"])
    assert _logged_models(sets, run) == {"model", "lightgbm_ranker"}

    import mlflow.pyfunc
    import pandas as pd

    mlflow.set_tracking_uri(sets["mlflow"])
    frame = pd.read_parquet(sets["uris"]["ranking_valid"])
    scores = mlflow.pyfunc.load_model(f"runs:/{result['run_id']}/model").predict(frame)
    booster = mlflow.lightgbm.load_model(f"runs:/{result['run_id']}/lightgbm_ranker")
    features = [c for c in booster.feature_name()]
    assert scores == pytest.approx(booster.predict(frame[features].to_numpy(dtype="float64")))


@pytest.fixture(scope="module")
def duration_run(sets: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One duration training with a checkpoint folder: its result and the folder (shared to save a training)."""
    checkpoints = tmp_path_factory.mktemp("checkpoints")
    return {"result": _train("task_duration", sets, "--checkpoint-dir", str(checkpoints)), "checkpoints": checkpoints}


def test_duration_training_gives_calibrated_intervals(sets: dict[str, Any], duration_run: dict[str, Any]) -> None:
    result = duration_run["result"]
    run = _run(sets, result["run_id"])
    metrics = run.data.metrics
    for name in ("valid_model_mae", "valid_model_coverage80", "valid_model_coverage90", "valid_baseline_slip_mae",
                 "valid_truth_mae"):
        assert name in metrics, name
    # Conformal calibration on validation: coverage there is at least nominal.
    assert metrics["valid_model_coverage80"] >= 0.8 and metrics["valid_model_coverage90"] >= 0.9
    assert {"evaluation.json", "predicted_vs_actual.png", "model_card.md"} <= _artifacts(sets, result["run_id"])


def test_a_retried_training_resumes_from_its_checkpoint(sets: dict[str, Any], duration_run: dict[str, Any]) -> None:
    first, checkpoints = duration_run["result"], duration_run["checkpoints"]
    assert first["resumed_from_epoch"] is None and (checkpoints / "checkpoint.pt").exists()
    again = _train("task_duration", sets, "--checkpoint-dir", str(checkpoints))
    assert again["resumed_from_epoch"] is not None
    assert again["metrics"]["valid_mae"] == pytest.approx(first["metrics"]["valid_mae"])


@pytest.mark.parametrize("model", ["task_assignment", "task_duration"])
def test_too_little_data_exits_3_before_any_mlflow_run(sets: dict[str, Any], tmp_path: Path, model: str) -> None:
    from mlflow import MlflowClient

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = _cli(model, sets, "--max-rows", "8", tracking_uri=tracking)
    assert out.returncode == 3, out.stderr[-2000:]
    assert f"too little data for {model}: train" in out.stderr and "widen the window" in out.stderr
    client = MlflowClient(tracking_uri=tracking)
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert client.search_runs(experiments) == [], "no failed MLflow run is left behind"


def test_a_run_is_named_after_its_model_in_a_model_training_experiment(
    sets: dict[str, Any], duration_run: dict[str, Any]
) -> None:
    run = _run(sets, duration_run["result"]["run_id"])
    assert run.info.run_name.startswith("task_duration-")
    # MLflow 3's UI shows it with the model-training (not the GenAI) experiments.
    assert _client(sets).get_experiment(run.info.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_training_set_gate_enforces_the_same_floor_as_the_trainer(sets: dict[str, Any], tmp_path: Path) -> None:
    """A run asking for min_groups=1 still gets the model's floor, so the gate fails where the trainer would."""
    import pandas as pd

    from maestro_ml.features.steps import validate_sets
    from maestro_ml.validation import DataValidationError

    train = pd.read_parquet(sets["uris"]["duration_train"])
    short = tmp_path / "train.parquet"
    train[train["decision_id"].isin(train["decision_id"].unique()[:8])].to_parquet(short)
    gated = {"model": "task_duration", "kind": "duration",
             "uris": {"train": str(short), "valid": sets["uris"]["duration_valid"]}}
    # The trainer's side of the same floor: test_too_little_data_exits_3_before_any_mlflow_run.
    with pytest.raises(DataValidationError, match=r"train.decision_id .* observed 8, expected {'min_value': 10}"):
        validate_sets(gated, min_groups=1)
