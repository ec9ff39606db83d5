"""MLflow registry operations of the training DAGs: experiments, the run a training logged, registration.

The training itself is ``python -m maestro_ml.training`` on the configured compute; it reaches
Airflow only through MLflow, where ``find_training_run`` looks it up by the tags the DAG gave it.
Registered versions get the alias ``challenger`` (registry aliases, never the deprecated stages).
Names come from each model's ``ModelSpec``.

* ``registry.aliases``: ``champion`` / ``previous_champion`` moved by check-and-set under a lock.
* ``registry.audit``: the append-only record of every evaluate, promote, reject and rollback.
* ``python -m maestro_ml.registry history <model>``: a model's champion history and current aliases.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from maestro_ml.contracts.models import EXPERIMENT_TAGS, model_spec
from maestro_ml.settings import Settings, get_settings

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
# The feature service a version was trained on (a run tag the training DAG sets, copied onto the version):
# scoring serves the version on it.
FEATURE_SERVICE_TAG = "feature_service"


def model_inputs(pyfunc: Any) -> list[str]:
    """The feature columns a loaded pyfunc's signature names (the ranking group column aside)."""
    schema = pyfunc.metadata.get_input_schema()
    return [] if schema is None else [name for name in schema.input_names() if name != "decision_id"]


def experiment_name(model: str) -> str:
    return model_spec(model).experiment_name


def ensure_experiment(model: str, settings: Settings | None = None) -> str:
    """The model's MLflow experiment id, creating the experiment if it is missing.

    With an embedded store (``sqlite:///`` under MAESTRO_HOME: ``make demo``, tests) MLflow would put
    the artifacts in ``./mlruns`` of whatever directory the training process runs in, outside the
    home that ``make demo`` wipes and ``make up`` reuses; they go under MAESTRO_HOME instead. A
    tracking server keeps its own artifact root.
    """
    settings = settings or get_settings()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    name = experiment_name(model)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        for key, value in EXPERIMENT_TAGS.items():
            if existing.tags.get(key) != value:
                client.set_experiment_tag(existing.experiment_id, key, value)
        return str(existing.experiment_id)
    location = None
    if not settings.mlflow_tracking_uri.startswith(("http://", "https://", "databricks")):
        location = Path(settings.home, "mlflow", "artifacts", name).resolve().as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_TAGS))
    except MlflowException:
        # The other training DAG's run, or a retry, created it first.
        raced = client.get_experiment_by_name(name)
        if raced is None:
            raise
        return str(raced.experiment_id)


def find_run(model: str, dag_id: str, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """The finished MLflow run the training task logged for this DAG run (found by its tags)."""
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


def find_training_run(model: str, dag_id: str, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """The training's run with the spec's primary and guard metrics; raises when the training did not evaluate."""
    spec = model_spec(model)
    run = find_run(model, dag_id, run_id, settings)
    wanted = [spec.primary_metric, *spec.guard_metrics]
    missing = [m.name for m in wanted if m.name not in run["metrics"]]
    if missing:
        raise ValueError(f"run {run['run_id']} has no {', '.join(map(repr, missing))} metric: the training did not evaluate")
    return {"run_id": run["run_id"], "experiment_id": run["experiment_id"],
            **{m.name: run["metrics"][m.name] for m in wanted}}


def register_challenger(model: str, run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """Register the run's ``model`` artifact as a new version and point the ``challenger`` alias at it."""
    import mlflow

    settings = settings or get_settings()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    name = model_spec(model).registered_name
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    service = client.get_run(run_id).data.tags.get(FEATURE_SERVICE_TAG) or model_spec(model).feature_service
    version = mlflow.register_model(f"runs:/{run_id}/model", name, tags={FEATURE_SERVICE_TAG: service})
    client.set_registered_model_alias(name, CHALLENGER, version.version)
    log.info("registered %s version %s as %s", name, version.version, CHALLENGER)
    return {"name": name, "version": str(version.version), "alias": CHALLENGER, "run_id": run_id,
            "feature_service": service}


def declared_feature_service(model: str, version: str, settings: Settings | None = None) -> str:
    """The feature service a version was trained on (its ``feature_service`` tag; the model's default before tags)."""
    settings = settings or get_settings()
    tags = MlflowClient(tracking_uri=settings.mlflow_tracking_uri).get_model_version(
        model_spec(model).registered_name, version).tags or {}
    return tags.get(FEATURE_SERVICE_TAG) or model_spec(model).feature_service
