"""The models the platform trains, one ``ModelSpec`` each: the single place a model is declared.

Everything that differs between models and is not training code lives here: the registry and
experiment names, the feature service and training-set kind the DAG builds, the metrics that
judge a run, and the training CLI's subcommand with the module that trains it. The training
DAGs, the CLI (``python -m maestro_ml.training <subcommand>``), the registry helpers and the
demo summary all read these specs, so adding a model means one spec here, one trainer module in
``maestro_ml.training`` and one DAG file.

This module is imported by the training image too: it imports nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TrainingSetKind = Literal["ranking", "duration"]
Direction = Literal["maximize", "minimize"]


@dataclass(frozen=True)
class Metric:
    """A metric the training run logs to MLflow (``valid_...``), and which way is better."""

    name: str
    direction: Direction

    def better(self, candidate: float, reference: float) -> bool:
        return candidate > reference if self.direction == "maximize" else candidate < reference


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """Short name: the CLI subcommand, the DAG suffix (``train_<name>``) and the training-set folder."""
    registered_name: str
    """The MLflow registered model; versions get the aliases ``challenger`` / ``champion``."""
    feature_service: str
    """The Feast feature service (versioned: a new version is a new service, never an edit)."""
    training_set: TrainingSetKind
    """Which point-in-time training set ``maestro_ml.features.training_sets.training_set`` builds."""
    primary_metric: Metric
    """The validation metric a run is judged by (and a challenger is compared on)."""
    guard_metrics: tuple[Metric, ...]
    """Validation metrics that must be logged too and must not get worse."""
    trainer: str
    """The ``maestro_ml.training`` module with ``add_arguments(parser)`` and ``run(...)`` for this model."""
    description: str
    """One line for ``--help`` and the DAG docs."""

    @property
    def experiment_name(self) -> str:
        return f"maestro-{self.name}"

    @property
    def subcommand(self) -> str:
        return self.name


TASK_ASSIGNMENT = ModelSpec(
    name="task_assignment",
    registered_name="maestro-task-assignment",
    feature_service="task_assignment_v1",
    training_set="ranking",
    primary_metric=Metric("valid_ensemble_ndcg_at_5", "maximize"),
    guard_metrics=(Metric("valid_ensemble_mrr", "maximize"),),
    trainer="maestro_ml.training.train_ranker",
    description="task-assignment ranker: LightGBM LambdaMART + PyTorch listwise scorer, weighted ensemble",
)

TASK_DURATION = ModelSpec(
    name="task_duration",
    registered_name="maestro-task-duration",
    feature_service="task_duration_v1",
    training_set="duration",
    primary_metric=Metric("valid_model_mae", "minimize"),
    guard_metrics=(Metric("valid_model_coverage90", "maximize"),),
    trainer="maestro_ml.training.train_duration",
    description="task-duration model: PyTorch quantile MLP with conformal 80% and 90% intervals",
)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (TASK_ASSIGNMENT, TASK_DURATION)}


def model_spec(name: str) -> ModelSpec:
    """The spec of ``name``; a clear error listing the known models otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}") from None
