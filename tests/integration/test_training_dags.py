"""train_task_assignment and train_task_duration through real Airflow (dag.test) on the tiny lake, local compute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maestro_ml.settings import get_settings

CONF = {"end": "2026-11-03", "train_days": 1, "valid_days": 0.5, "test_days": 0.5, "epochs": 2, "min_groups": 5}
# Each model's own flags: the duration model has no LightGBM.
HYPERPARAMETERS = {"train_task_assignment": {"lgb-num-boost-round": 20}, "train_task_duration": {}}
REGISTERED = {"train_task_assignment": "maestro-task-assignment", "train_task_duration": "maestro-task-duration"}


@pytest.fixture(scope="module")
def features_built(tiny_features_home: Path) -> Path:
    from maestro_ml.feast_ext.store import apply_if_changed

    apply_if_changed()
    return tiny_features_home


@pytest.fixture(scope="module")
def trained(features_built: Path, dagbag) -> dict:
    """Both training DAGs run once for the module: their DagRuns by dag_id."""
    return {dag_id: dagbag.get_dag(dag_id).test(run_conf={**CONF, "hyperparameters": hyperparameters})
            for dag_id, hyperparameters in HYPERPARAMETERS.items()}


@pytest.mark.parametrize(("dag_id", "registered"), REGISTERED.items())
def test_training_dag_registers_a_challenger(trained: dict, task_states, dag_id: str, registered: str) -> None:
    from mlflow import MlflowClient

    run = trained[dag_id]
    states = task_states(run)
    assert set(states.values()) == {"success"}, states
    client = MlflowClient(tracking_uri=get_settings().mlflow_tracking_uri)
    version = client.get_model_version_by_alias(registered, "challenger")
    source_run = client.get_run(version.run_id)
    assert source_run.data.tags["dag_id"] == dag_id and source_run.data.tags["run_id"] == run.run_id
    assert Path(get_settings().lake_uri, "training_sets").exists()


@pytest.mark.parametrize(("dag_id", "registered"), REGISTERED.items())
def test_the_training_run_is_named_after_its_model_and_window_end(trained: dict, dag_id: str, registered: str) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=get_settings().mlflow_tracking_uri)
    source_run = client.get_run(client.get_model_version_by_alias(registered, "challenger").run_id)
    assert source_run.info.run_name == f"{dag_id.removeprefix('train_')}-{CONF['end']}T00"
    experiment = client.get_experiment(source_run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_window_without_decisions_fails_at_once_and_trains_nothing(
    features_built: Path, run_dag, task_states, task_tries
) -> None:
    # Ten days before the simulation starts: no decision, no feature row.
    run = run_dag("train_task_assignment", conf={**CONF, "end": "2026-10-20"})
    states = task_states(run)
    assert str(run.state) == "failed"
    assert states["build_training_sets"] == "failed"
    for downstream in ("validate_training_sets", "train_model", "find_training_run", "register_challenger"):
        assert states[downstream] == "upstream_failed", states
    assert task_tries(run)["build_training_sets"] == 1, "an empty window must not be retried"


def test_both_challengers_load_by_alias_in_a_clean_process_and_predict_on_raw_feature_rows(
    trained: dict, tmp_path: Path
) -> None:
    """Nothing but MLflow and the registry: no PYTHONPATH, no maestro_ml on the path, another working directory."""
    settings = get_settings()
    probe = """
import json, sys
import mlflow, numpy as np, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
out = {}
for name, set_uri in json.loads(sys.argv[2]).items():
    model = mlflow.pyfunc.load_model(f"models:/{name}@challenger")
    example = model.input_example
    raw = pd.read_parquet(set_uri).head(40)  # a training set's rows: ids, labels and every feature
    on_example, on_raw = model.predict(example), model.predict(raw)
    out[name] = {"example_rows": len(example), "example_predictions": len(on_example), "raw_rows": len(raw),
                 "raw_predictions": len(on_raw), "finite": bool(np.isfinite(np.asarray(on_raw, dtype=float)).all()),
                 "columns": list(on_raw.columns) if hasattr(on_raw, "columns") else None}
print(json.dumps(out))
"""
    sets = {REGISTERED[dag_id]: str(next(Path(settings.lake_uri, "training_sets", dag_id.removeprefix("train_"))
                                         .rglob("test.parquet")))
            for dag_id in REGISTERED}
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe, settings.mlflow_tracking_uri, json.dumps(sets)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for name, seen in result.items():
        assert seen["example_predictions"] == seen["example_rows"] > 0, name
        assert seen["raw_predictions"] == seen["raw_rows"] > 0 and seen["finite"], name
    duration = result["maestro-task-duration"]
    assert duration["columns"] == ["p50_hours", "p80_lower_hours", "p80_upper_hours", "p90_lower_hours",
                                   "p90_upper_hours"]


def test_an_unknown_hyperparameter_fails_the_first_task_at_once_and_builds_nothing(
    features_built: Path, run_dag, task_states, task_tries
) -> None:
    run = run_dag("train_task_duration", conf={**CONF, "hyperparameters": {"lgb-num-leaves": 63}})
    states = task_states(run)
    assert str(run.state) == "failed"
    assert states["check_params"] == "failed"
    for downstream in ("build_training_sets", "validate_training_sets", "train_model", "register_challenger"):
        assert states[downstream] == "upstream_failed", states
    assert task_tries(run)["check_params"] == 1, "a bad Param must not be retried"
