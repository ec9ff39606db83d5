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


# Every model's MLflow experiment is a model-training one: MLflow 3's UI lists it under "Machine
# learning" and opens it on its runs, not in the GenAI (traces) view, and never asks for its kind.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}

# Exit codes of the training CLI that no retry fixes: the orchestration fails the task at once on them.
EXIT_USAGE = 2
"""A flag the CLI does not know or a bad value (argparse's own exit code)."""
EXIT_TOO_LITTLE_DATA = 3
"""The sets hold fewer groups than the model's ``DataFloor``."""
# What a person must change after each: every retry would fail the same way, so none is made.
NOT_RETRYABLE_EXITS: dict[int, str] = {
    EXIT_USAGE: "a usage error: fix the hyperparameters or flags",
    EXIT_TOO_LITTLE_DATA: "too little data: widen the window (more days)",
}


class TooLittleDataError(ValueError):
    """A split holds fewer groups than the model's floor: widen the window, a retry cannot help."""


@dataclass(frozen=True)
class DataFloor:
    """The fewest groups per split a model is trained on (ranking: decisions; duration: completed assignments).

    One floor for both checks: the training-set gate refuses sets below it (or below the run's own,
    higher ``min_groups``), and the trainer refuses them too, so a set the gate passed never fails
    inside a training for want of data.
    """

    train: int
    evaluate: int
    """Validation and test: early stopping, calibration and the reported metrics need this many."""

    def for_split(self, split: str) -> int:
        return self.train if split == "train" else self.evaluate

    def check(self, model: str, counts: dict[str, int]) -> None:
        """Raise ``TooLittleDataError`` naming every split below the floor."""
        short = {split: n for split, n in counts.items() if n < self.for_split(split)}
        if short:
            listed = ", ".join(f"{split} {n} (needs {self.for_split(split)})" for split, n in short.items())
            raise TooLittleDataError(f"too little data for {model}: {listed}; widen the window (more days)")


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
    """The ``maestro_ml.training`` module with ``add_arguments(parser)``, ``count_groups(frame)`` and ``run(...)``."""
    description: str
    """One line for ``--help`` and the DAG docs."""
    floor: DataFloor
    """The fewest groups per split the model trains on (shared by the training-set gate and the trainer)."""

    @property
    def experiment_name(self) -> str:
        return f"maestro-{self.name}"

    @property
    def subcommand(self) -> str:
        return self.name


TASK_ASSIGNMENT = ModelSpec(
    name="task_assignment",
    registered_name="maestro-task-assignment",
    feature_service="task_assignment_v2",
    training_set="ranking",
    primary_metric=Metric("valid_ensemble_ndcg_at_5", "maximize"),
    guard_metrics=(Metric("valid_ensemble_mrr", "maximize"),),
    trainer="maestro_ml.training.train_ranker",
    description="task-assignment ranker: LightGBM LambdaMART + PyTorch listwise scorer, weighted ensemble",
    floor=DataFloor(train=10, evaluate=5),
)

TASK_DURATION = ModelSpec(
    name="task_duration",
    registered_name="maestro-task-duration",
    feature_service="task_duration_v2",
    training_set="duration",
    primary_metric=Metric("valid_model_mae", "minimize"),
    guard_metrics=(Metric("valid_model_coverage90", "maximize"),),
    trainer="maestro_ml.training.train_duration",
    description="task-duration model: PyTorch quantile MLP with conformal 80% and 90% intervals",
    floor=DataFloor(train=10, evaluate=5),
)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (TASK_ASSIGNMENT, TASK_DURATION)}


def model_spec(name: str) -> ModelSpec:
    """The spec of ``name``; a clear error listing the known models otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}") from None
