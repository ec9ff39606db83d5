"""The task graph both training DAGs share; like ``maestro_ml.assets``, only DAG files import this.

build_training_sets -> validate_training_sets -> training_arguments -> train_model (the compute
factory: a GPU pod or a local process, same command) -> evaluate_model (the run, found in MLflow
by its tags) -> register_challenger (new version, alias ``challenger``, model Asset updated).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, Param, task

from maestro_ml.compute import training_task
from maestro_ml.dag_support import DATE_PATTERN, fail_without_retry_on_bad_data


def training_params() -> dict[str, Param]:
    return {
        "end": Param(None, type=["null", "string"], pattern=DATE_PATTERN,
                     description="End of the data window (UTC, exclusive); default: the run's data interval end"),
        "train_days": Param(7, type="number", minimum=0.25, maximum=180, description="Days of training decisions"),
        "valid_days": Param(2, type="number", minimum=0.25, maximum=60, description="Days of validation after them"),
        "test_days": Param(2, type="number", minimum=0.25, maximum=60, description="Days of test at the end"),
        "max_rows": Param(None, type=["null", "integer"], minimum=100, description="Cap on training rows"),
        "epochs": Param(30, type="integer", minimum=1, maximum=500, description="PyTorch epochs (early stopping)"),
        "min_groups": Param(20, type="integer", minimum=1, description="Fewest decisions a split may hold"),
        "hyperparameters": Param({}, type="object",
                                 description='CLI overrides, e.g. {"lgb-num-leaves": 63, "learning-rate": 0.001}'),
    }


@task(multiple_outputs=False)
def build_training_sets(model: str, params: dict | None = None, data_interval_end=None, run_id=None) -> dict:
    from maestro_ml.settings import get_settings
    from maestro_ml.training_pipeline import build_sets, resolve_window

    params = params or {}
    window = resolve_window(
        end=params.get("end") or data_interval_end,
        train_days=params.get("train_days", 7),
        valid_days=params.get("valid_days", 2),
        test_days=params.get("test_days", 2),
    )
    # An empty window stays empty: fail at once instead of retrying (and holding up the next runs).
    return fail_without_retry_on_bad_data(
        lambda: build_sets(model, window, run_id or "manual", max_rows=params.get("max_rows"), settings=get_settings())
    )


@task(multiple_outputs=False)
def validate_training_sets(sets: dict, params: dict | None = None) -> dict:
    from maestro_ml.training_pipeline import validate_sets

    min_groups = int((params or {}).get("min_groups", 20))
    return fail_without_retry_on_bad_data(lambda: validate_sets(sets, min_groups=min_groups))


@task(multiple_outputs=False)
def training_arguments(sets: dict, params: dict | None = None, dag=None, run_id=None, data_interval_start=None,
                       data_interval_end=None) -> list[str]:
    from maestro_ml import storage
    from maestro_ml.gpu_pool import training_arguments as base_arguments
    from maestro_ml.settings import get_settings
    from maestro_ml.training_pipeline import ensure_experiment, experiment_name

    params = params or {}
    ensure_experiment(sets["model"])
    tags = {"dag_id": dag.dag_id, "run_id": run_id, "data_interval_start": str(data_interval_start),
            "data_interval_end": str(data_interval_end), "window_end": sets["window"]["end"]}
    args = base_arguments(train_uri=sets["uris"]["train"], valid_uri=sets["uris"]["valid"],
                          experiment=experiment_name(sets["model"]), run_tags=tags)
    args += ["--test-uri", sets["uris"]["test"], "--epochs", str(params.get("epochs", 30))]
    truth = get_settings().truth_uri
    if storage.exists(f"{truth}/candidates"):  # only simulated data has a truth to score against
        args += ["--truth-uri", truth]
    for name, value in sorted((params.get("hyperparameters") or {}).items()):
        args += [f"--{name.lstrip('-')}", str(value)]
    return args


@task(multiple_outputs=False)
def evaluate_model(model: str, dag=None, run_id=None) -> dict:
    from maestro_ml.training_pipeline import find_run

    run = find_run(model, dag.dag_id, run_id)
    metrics = run["metrics"]
    wanted = "valid_ensemble_ndcg_at_5" if model == "task_assignment" else "valid_model_mae"
    if wanted not in metrics:
        raise ValueError(f"run {run['run_id']} has no {wanted!r} metric: the training did not evaluate")
    return {"run_id": run["run_id"], "experiment_id": run["experiment_id"], wanted: metrics[wanted]}


def wire(model: str, model_asset: Asset) -> Any:
    """Build the graph inside the calling ``@dag`` function."""

    @task(multiple_outputs=False, outlets=[model_asset])
    def register_challenger(evaluated: dict) -> dict:
        from maestro_ml.training_pipeline import register_challenger as register

        return register(model, evaluated["run_id"])

    # TaskFlow calls return XComArgs at DAG-build time, which the task signatures do not describe.
    sets: Any = validate_training_sets(build_training_sets(model))  # type: ignore[arg-type]
    train = training_task("train_model", model, training_arguments(sets))
    evaluated: Any = evaluate_model(model)
    train >> evaluated
    return register_challenger(evaluated)
