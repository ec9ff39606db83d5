"""
# train_task_assignment

Weekly training of the task-assignment ranker (LightGBM LambdaMART + PyTorch listwise scorer,
weighted ensemble), also triggered by hand with Params (window, `max_rows`, epochs,
hyperparameter overrides).

Also runs when `monitor_models` requests a retraining of this model (the `retraining_requested` Asset; a
request for the other model skips the run): it then trains on the window ending at the last midnight and
records the request's rule and figures as the MLflow run's `retraining_reason` tag.

1. **check_params**: the time-split window from `end` and the day counts, and the `hyperparameters`
   parsed by the training CLI's own parser; a bad value (or an `end` in the future) fails here, in seconds, with the valid flags.
2. **wait_for_features**: a sensor (reschedule mode, no worker slot held) that waits until the lake is
   committed through the window's end and every day of the window has its features built from it;
   a run that fires during `make up`'s catch-up or before the week's last hour lands trains once the data is there.
3. **build_training_sets**: point-in-time-correct train / validation / test sets from the
   `task_assignment_v2` feature service (`maestro_ml.features.training_sets`), split by time, written to the lake.
4. **validate_training_sets**: Great Expectations (enough decisions, one chosen candidate each, no null keys or labels, features mostly set); a failure stops the run here.
5. **build_training_arguments**: the command-line options of the training run (set URIs, MLflow
   experiment, the run's tags, the overrides).
6. **train_model**: `python -m maestro_ml.training task_assignment` on the configured compute: a GPU pod
   (`MAESTRO_COMPUTE=kubernetes`) or a local process (the default). One MLflow run.
7. **find_training_run**: the MLflow run, found by its dag_id / run_id tags, with `valid_ensemble_ndcg_at_5`.
8. **register_challenger**: a new version of `maestro-task-assignment` with the alias `challenger`; the
   `task_assignment_model` Asset is updated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, dag
from airflow.timetables.interval import CronDataIntervalTimetable

from maestro_ml.orchestration.assets import RETRAINING_REQUESTED, TASK_ASSIGNMENT_MODEL
from maestro_ml.orchestration.defaults import BATCH_DEFAULT_ARGS
from maestro_ml.orchestration.operators import training_task
from maestro_ml.orchestration.params import training_params
from maestro_ml.orchestration.training import (
    build_training_arguments,
    build_training_sets,
    check_params,
    find_training_run,
    register_challenger,
    validate_training_sets,
    wait_for_features,
)

MODEL = "task_assignment"


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronDataIntervalTimetable("@weekly", timezone="UTC"),
                                 assets=RETRAINING_REQUESTED),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=8),
    default_args=BATCH_DEFAULT_ARGS,
    tags=["maestro", "training"],
    doc_md=__doc__,
    params=training_params(),
)
def train_task_assignment() -> None:
    checked = check_params(MODEL)
    ready = wait_for_features(checked)
    sets = build_training_sets(MODEL, checked)
    ready >> sets
    validated = validate_training_sets(sets)
    arguments = build_training_arguments(validated, checked)
    trained = training_task("train_model", MODEL, arguments)
    run = find_training_run(MODEL)
    trained >> run
    register_challenger.override(outlets=[TASK_ASSIGNMENT_MODEL])(MODEL, run)


train_task_assignment()
