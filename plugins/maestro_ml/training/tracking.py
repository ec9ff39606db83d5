"""MLflow logging helpers shared by the trainers: lineage datasets, metric names, curves, requirements, git sha."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def git_sha() -> str:
    sha = os.environ.get("MAESTRO_GIT_SHA")
    if sha:
        return sha
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def report_metrics(prefix: str, report: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of an evaluation report as MLflow metric names: ``<prefix>_ndcg_at_5``."""
    return {f"{prefix}_{k.replace('@', '_at_')}": float(v) for k, v in report.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)}


SCHEMA_SAMPLE_ROWS = 1_000


def lineage_dataset(frame: Any, uri: str, name: str, digest: str) -> Any:
    """An MLflow dataset of ``frame`` (``log_input``) with our digest and a schema inferred from a sample.

    MLflow infers a dataset's schema by checking every value of every column and computes its own
    digest: minutes for a million-row set, more than training LightGBM on it.
    """
    from functools import cached_property

    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.pandas_dataset import PandasDataset
    from mlflow.models import infer_signature

    step = max(1, len(frame) // SCHEMA_SAMPLE_ROWS)

    class SampledSchemaDataset(PandasDataset):  # type: ignore[misc]
        @cached_property
        def schema(self) -> Any:
            return infer_signature(self.df.iloc[::step]).inputs

    return SampledSchemaDataset(frame, source=resolve_dataset_source(uri), name=name, digest=digest)


def model_requirements() -> list[str]:
    """Pinned pip requirements of the logged models, from this environment (the training image).

    Passed to ``log_model`` so MLflow does not infer them by importing each model in a subprocess.
    """
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in ("mlflow", "lightgbm", "torch", "numpy", "pandas",
                                                              "pyarrow", "scikit-learn")]


def feature_signature(example: pd.DataFrame, output: Any) -> Any:
    """The served signature: every input named, numeric ones of any numeric type and optional.

    A feature is an integer in one request and a float with NaN in the next (a pair without history, a
    field the tracker does not record); MLflow refuses both int64 into a declared double and NaN into a
    declared long, so numeric inputs are ``AnyType`` and the models impute what is missing. The names still
    say which features the model reads (the promotion's signature gate checks them against the service).
    """
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    inferred = infer_signature(example, output)
    columns = []
    for spec in inferred.inputs.inputs:
        numeric = pd.api.types.is_numeric_dtype(example[spec.name]) and not pd.api.types.is_bool_dtype(example[spec.name])
        columns.append(ColSpec(AnyType(), spec.name, required=False) if numeric else spec)
    return ModelSignature(inputs=Schema(columns), outputs=inferred.outputs)


def log_bundle_pyfunc(name: str, python_model: Any, bundle: Path, example: Any, output: Any) -> None:
    """Log a served model: a pyfunc over a saved bundle, with this package as its code.

    The bundle holds state_dicts and plain arrays (no pickled modules), and the package travels as
    ``code_paths``, so the model loads by alias in a clean process without PYTHONPATH or this repo.
    """
    import mlflow

    mlflow.pyfunc.log_model(
        name=name,
        python_model=python_model,
        artifacts={"bundle": str(bundle)},
        signature=feature_signature(example, output),
        input_example=example.head(5),
        pip_requirements=model_requirements(),
        code_paths=[str(Path(__file__).resolve().parents[1])],
    )


def log_curves(curves: dict[str, list[float]], steps: list[int] | None = None) -> None:
    """Per-step metric histories in batched calls: one HTTP request per 1,000 points, not one per point."""
    import mlflow
    from mlflow.entities import Metric

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("log_curves needs an active MLflow run")
    now = int(time.time() * 1000)
    points = [Metric(key, float(value), now, steps[i] if steps else i)
              for key, values in curves.items() for i, value in enumerate(values) if np.isfinite(value)]
    client = mlflow.MlflowClient()
    for lo in range(0, len(points), 1000):
        client.log_batch(run.info.run_id, metrics=points[lo : lo + 1000], synchronous=True)
