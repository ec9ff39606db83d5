"""
# train_task_assignment

Weekly training of the task-assignment ranker (LightGBM LambdaMART + PyTorch listwise scorer, weighted ensemble), also triggered by hand with Params (window, `max_rows`, epochs,
hyperparameter overrides).

1. **build_training_sets**: point-in-time-correct train / validation / test sets from Feast
   (`maestro_ml.features.training_sets`), split by time, written to the lake.
2. **validate_training_sets**: Great Expectations (enough decisions, label balance, no null keys
   or labels, features mostly set); a failure stops the run here.
3. **train_model**: `python -m maestro_ml.training task_assignment` on the configured compute: a GPU pod
   (`MAESTRO_COMPUTE=kubernetes`) or a local process (the default). One MLflow run.
4. **evaluate_model**: the MLflow run, found by its dag_id / run_id tags, with its metrics.
5. **register_challenger**: a new registered version with the alias `challenger`; the model
   Asset is updated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag

from maestro_ml.assets import TASK_ASSIGNMENT_MODEL
from maestro_ml.dag_defaults import DEFAULT_ARGS
from maestro_ml.training_dag import training_params, wire


@dag(
    schedule="@weekly",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=8),
    default_args=DEFAULT_ARGS,
    tags=["maestro", "training"],
    doc_md=__doc__,
    params=training_params(),
)
def train_task_assignment() -> None:
    wire("task_assignment", TASK_ASSIGNMENT_MODEL)


train_task_assignment()
