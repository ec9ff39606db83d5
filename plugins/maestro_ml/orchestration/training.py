"""The ``@task`` functions both training DAGs wire; each DAG file shows its own graph.

Every task takes the model's name (``maestro_ml.contracts.models``) and imports what it needs when it
runs, so DAG parsing stays light. The training itself is ``train_model``, from
``maestro_ml.orchestration.operators.training_task`` (a GPU pod or a local process, same command).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import PokeReturnValue, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from maestro_ml.orchestration.assets import RETRAINING_REQUESTED
from maestro_ml.orchestration.tasks import fail_without_retry_on_bad_data

# A week's training waits at most this long for its data before failing (an ingest or feature
# outage needs a person, not an endless sensor).
FEATURES_WAIT_TIMEOUT_S = 12 * 3600


def retraining_request(model: str, triggering_asset_events: Any) -> dict | None:
    """The newest ``retraining_requested`` event for ``model`` among the run's triggering events, or None."""
    found = None
    for key, events in (triggering_asset_events or {}).items():
        if getattr(key, "name", key) != RETRAINING_REQUESTED.name:
            continue
        for event in events or []:
            extra = dict(getattr(event, "extra", None) or {})
            if extra.get("model") == model:
                found = {**extra, "requested_at": str(getattr(event, "timestamp", ""))}
    return found


@task(multiple_outputs=False)
def check_params(model: str, params: dict | None = None, data_interval_end=None,
                 triggering_asset_events=None) -> dict:
    """The time-split window and the hyperparameter overrides as CLI flags, checked before anything is built.

    A window that cannot be split or an unknown or ill-typed hyperparameter is a usage error: the task
    fails at once, without retries, saying what to change (for flags: the model's valid flags). A run set
    off by ``retraining_requested`` trains only when a request names this model (otherwise it is skipped),
    on the window ending at the last midnight, and carries the request's rule as the MLflow run's reason.
    """
    from datetime import UTC, datetime

    import pandas as pd

    from maestro_ml.features.steps import training_window
    from maestro_ml.training.cli import HyperparameterError, override_arguments

    params = params or {}
    retraining = None
    end = params.get("end") or data_interval_end
    if triggering_asset_events:
        retraining = retraining_request(model, triggering_asset_events)
        if retraining is None:
            raise AirflowSkipException(f"retraining was requested for another model, not {model}")
        # The newest complete day: the request came from data up to now.
        end = pd.Timestamp(data_interval_end or datetime.now(UTC)).floor("D").to_pydatetime()
    try:
        window = training_window(
            end=end,
            train_days=params.get("train_days", 7),
            valid_days=params.get("valid_days", 2),
            test_days=params.get("test_days", 2),
        )
        if datetime.fromisoformat(window["end"]) > datetime.now(UTC):
            raise ValueError(f"the window ends at {window['end']}, in the future: its data does not exist yet; "
                             "give an `end` that has passed")
        overrides = override_arguments(model, {"epochs": params.get("epochs", 30),
                                               **(params.get("hyperparameters") or {})})
    except (HyperparameterError, ValueError) as exc:
        raise AirflowFailException(f"bad Params for {model}: {exc}") from exc
    return {"window": window, "overrides": overrides, "retraining": retraining}


@task.sensor(poke_interval=60, timeout=FEATURES_WAIT_TIMEOUT_S, mode="reschedule")
def wait_for_features(checked: dict) -> PokeReturnValue:
    """Done once the lake is committed through the window's end and its days' features are built from it.

    A weekly run that fires during a catch-up (``make up``'s first minutes) or before the week's
    last hour has landed waits here, without holding a worker slot, instead of training on part of
    the window or failing.
    """
    import logging

    from maestro_ml.features.steps import features_missing

    missing = features_missing(checked["window"])
    if missing:
        logging.getLogger(__name__).info("waiting: %s", missing)
    return PokeReturnValue(is_done=missing is None)


@task(multiple_outputs=False)
def build_training_sets(model: str, checked: dict, params: dict | None = None, run_id=None) -> dict:
    from maestro_ml.features.steps import build_sets

    max_rows = (params or {}).get("max_rows")
    add_chosen = bool((params or {}).get("add_chosen", False))
    # An empty window stays empty: fail at once instead of retrying (and holding up the next runs).
    return fail_without_retry_on_bad_data(
        lambda: build_sets(model, checked["window"], run_id or "manual", max_rows=max_rows, add_chosen=add_chosen)
    )


@task(multiple_outputs=False)
def validate_training_sets(sets: dict, params: dict | None = None) -> dict:
    from maestro_ml.features.steps import validate_sets

    min_groups = int((params or {}).get("min_groups", 20))
    return fail_without_retry_on_bad_data(lambda: validate_sets(sets, min_groups=min_groups))


@task(multiple_outputs=False)
def build_training_arguments(sets: dict, checked: dict, dag=None, run_id=None, data_interval_start=None,
                             data_interval_end=None) -> list[str]:
    """The per-run options of ``python -m maestro_ml.training <model>``: the sets, the experiment, the run's tags."""
    from maestro_ml import storage
    from maestro_ml.contracts.models import model_spec
    from maestro_ml.platform.training_job import training_arguments
    from maestro_ml.registry import ensure_experiment, experiment_name
    from maestro_ml.settings import get_settings

    ensure_experiment(sets["model"])
    tags = {"dag_id": dag.dag_id, "run_id": run_id, "data_interval_start": str(data_interval_start),
            "data_interval_end": str(data_interval_end), "window_end": sets["window"]["end"],
            "feature_service": model_spec(sets["model"]).feature_service}
    if checked.get("retraining"):
        request = checked["retraining"]
        tags["retraining_reason"] = str(request.get("reason") or request.get("rule"))[:500]
        tags["retraining_requested_at"] = request["requested_at"]
    args = training_arguments(train_uri=sets["uris"]["train"], valid_uri=sets["uris"]["valid"],
                              experiment=experiment_name(sets["model"]), run_tags=tags)
    args += ["--test-uri", sets["uris"]["test"]]
    truth = get_settings().truth_uri
    if storage.exists(f"{truth}/candidates"):  # only simulated data has a truth to score against
        args += ["--truth-uri", truth]
    return [*args, *checked["overrides"]]


@task(multiple_outputs=False)
def find_training_run(model: str, dag=None, run_id=None) -> dict:
    """The MLflow run ``train_model`` logged, found by its dag_id / run_id tags, with the spec's metrics."""
    from maestro_ml.registry import find_training_run as find

    return find(model, dag.dag_id, run_id)


@task(multiple_outputs=False)
def register_challenger(model: str, run: dict[str, Any]) -> dict:
    """A new registered version of the run's model with the alias ``challenger``.

    Each DAG sets its model Asset as this task's outlet (``register_challenger.override(outlets=[...])``).
    """
    from maestro_ml.registry import register_challenger as register

    return register(model, run["run_id"])
