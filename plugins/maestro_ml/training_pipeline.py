"""The steps of the training DAGs as plain functions: window, sets, validation, run lookup, registration.

The training itself is ``python -m maestro_ml.training`` on the configured compute; it reaches
Airflow only through MLflow, where ``find_run`` looks it up by the tags the DAG gave it.
Registered versions get the alias ``challenger`` (registry aliases, never the deprecated stages);
promotion to ``champion`` is a later gate's job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.evaluation.splits import split_bounds
from maestro_ml.settings import Settings, get_settings, join_uri, to_utc

log = logging.getLogger(__name__)

MODELS: dict[str, dict[str, str]] = {
    "task_assignment": {"kind": "ranking", "registered_name": "maestro-task-assignment"},
    "task_duration": {"kind": "duration", "registered_name": "maestro-task-duration"},
}
CHALLENGER = "challenger"
SPLITS = ("train", "valid", "test")



def resolve_window(
    *, end: datetime | str, train_days: float, valid_days: float, test_days: float
) -> dict[str, str]:
    """Time-based split ending at ``end``: train on the past, validate and test on the later days."""
    stop = to_utc(end)
    start = stop - timedelta(days=train_days + valid_days + test_days)
    bounds = split_bounds(start, stop, valid_days, test_days)
    return {
        "train_start": bounds.train_start.isoformat(),
        "valid_start": bounds.valid_start.isoformat(),
        "test_start": bounds.test_start.isoformat(),
        "end": bounds.end.isoformat(),
    }


def sets_uri(settings: Settings, model: str, run_key: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_key)
    return join_uri(settings.lake_uri, "training_sets", model, safe)


def build_sets(
    model: str, window: dict[str, str], run_key: str, *, max_rows: int | None = None, settings: Settings | None = None
) -> dict[str, Any]:
    """Build and write the train/valid/test sets of ``model`` (atomic Parquet files, one per split)."""
    from maestro_ml.features.training_sets import training_set

    settings = settings or get_settings()
    kind = MODELS[model]["kind"]
    bounds = {
        "train": (window["train_start"], window["valid_start"]),
        "valid": (window["valid_start"], window["test_start"]),
        "test": (window["test_start"], window["end"]),
    }
    out: dict[str, Any] = {"model": model, "kind": kind, "window": window, "uris": {}, "rows": {}, "groups": {}}
    for split, (lo, hi) in bounds.items():
        frame = training_set(kind, lo, hi, settings=settings, max_rows=max_rows if split == "train" else None)  # type: ignore[arg-type]
        uri = join_uri(sets_uri(settings, model, run_key), f"{split}.parquet")
        with storage.atomic_open(uri) as handle:
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), handle)
        out["uris"][split] = uri
        out["rows"][split] = len(frame)
        out["groups"][split] = int(frame["decision_id"].nunique())
        log.info("%s %s set: %d rows, %d decisions -> %s", model, split, len(frame), out["groups"][split], uri)
    return out


def validate_sets(sets: dict[str, Any], *, min_groups: int = 20, settings: Settings | None = None) -> dict[str, Any]:
    """The Great Expectations gate on every split; raises ``DataValidationError`` on a critical failure."""
    from maestro_ml.validation import raise_for_critical
    from maestro_ml.validation.gates import validate_training_sets

    settings = settings or get_settings()
    frames = {}
    for split, uri in sets["uris"].items():
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            frames[split] = pq.read_table(handle).to_pandas()
    outcome = validate_training_sets(frames, sets["kind"], min_groups=min_groups, settings=settings,
                                     run_name=f"training_sets-{sets['model']}")
    log.info("Great Expectations Data Docs for these training sets: %s", outcome.data_docs_path)
    raise_for_critical(outcome)
    return {**sets, "validation": {"data_docs_path": outcome.data_docs_path, "warnings": len(outcome.warnings)}}


def experiment_name(model: str) -> str:
    return f"maestro-{model}"


def find_run(model: str, dag_id: str, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """The finished MLflow run the training task logged for this DAG run (found by its tags)."""
    from mlflow import MlflowClient

    settings = settings or get_settings()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name(model))
    if experiment is None:
        raise LookupError(f"no MLflow experiment {experiment_name(model)!r}: did the training task run?")
    safe_run_id = run_id.replace("'", "\\'")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.dag_id = '{dag_id}' and tags.run_id = '{safe_run_id}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        raise LookupError(f"no finished MLflow run tagged dag_id={dag_id!r} run_id={run_id!r} in {experiment.name!r}")
    run = runs[0]
    return {"run_id": run.info.run_id, "experiment_id": run.info.experiment_id, "metrics": dict(run.data.metrics)}


def register_challenger(model: str, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """Register the run's ``model`` artifact as a new version and point the ``challenger`` alias at it."""
    import mlflow
    from mlflow import MlflowClient

    settings = settings or get_settings()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    name = MODELS[model]["registered_name"]
    version = mlflow.register_model(f"runs:/{run_id}/model", name)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    log.info("registered %s version %s as %s", name, version.version, CHALLENGER)
    return {"name": name, "version": str(version.version), "alias": CHALLENGER, "run_id": run_id}
