"""The steps of the training DAGs as plain functions: window, sets, validation, run lookup, registration.

The training itself is ``python -m maestro_ml.training`` on the configured compute; it reaches
Airflow only through MLflow, where ``find_run`` looks it up by the tags the DAG gave it.
Registered versions get the alias ``challenger`` (registry aliases, never the deprecated stages);
promotion to ``champion`` is a later gate's job.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
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


def window_params(start: datetime | str, end: datetime | str, *, holdout_fraction: float = 0.15,
                  step_days: float = 0.25, max_train_days: float | None = None) -> dict[str, Any]:
    """The window Params (``end``, ``train_days``, ``valid_days``, ``test_days``) of a run over the data in ``[start, end)``.

    Validation and test each get ``holdout_fraction`` of the days, in whole ``step_days`` (a quarter
    day: the DAG's smallest split) and at least one step, so any simulated window from one day up
    splits the same way; training gets the rest, or only its latest ``max_train_days``.
    """
    lo, hi = to_utc(start), to_utc(end)
    days = (hi - lo).total_seconds() / 86400
    holdout = max(step_days, round(days * holdout_fraction / step_days) * step_days)
    train = days - 2 * holdout
    if train < step_days:
        raise ValueError(f"[{lo}, {hi}) is {days:g} days: too short to train, validate and test on")
    if max_train_days is not None:
        train = min(train, max_train_days)
    return {"end": hi.strftime("%Y-%m-%dT%H:%M:%SZ"), "train_days": round(train, 6), "valid_days": holdout,
            "test_days": holdout}


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


def ensure_experiment(model: str, settings: Settings | None = None) -> str:
    """The model's MLflow experiment id, creating the experiment if it is missing.

    With an embedded store (``sqlite:///`` under MAESTRO_HOME: ``make demo``, tests) MLflow would put
    the artifacts in ``./mlruns`` of whatever directory the training process runs in, outside the
    home that ``make demo`` wipes and ``make up`` reuses; they go under MAESTRO_HOME instead. A
    tracking server keeps its own artifact root.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    settings = settings or get_settings()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    name = experiment_name(model)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return str(existing.experiment_id)
    location = None
    if not settings.mlflow_tracking_uri.startswith(("http://", "https://", "databricks")):
        location = Path(settings.home, "mlflow", "artifacts", name).resolve().as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:
        # The other training DAG's run, or a retry, created it first.
        raced = client.get_experiment_by_name(name)
        if raced is None:
            raise
        return str(raced.experiment_id)


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
