"""``python -m maestro_ml.training <model> --train-uri ... --valid-uri ...``: one MLflow run per training.

The same command is the container command of the training image (KubernetesPodOperator) and the
local process of the default compute. It reads the sets (local path or ``s3://``), trains,
evaluates on validation (and test when given), logs everything to MLflow and prints one JSON
line: ``{"run_id", "experiment_id", "model", "metrics", ...}``. Airflow finds the run by its tags,
so nothing travels through XCom sidecars. This package never imports Airflow.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from maestro_ml.training import data

log = logging.getLogger("maestro_ml.training")
MODELS = ("task_assignment", "task_duration")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m maestro_ml.training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=MODELS)
    parser.add_argument("--train-uri", required=True, help="training set (Parquet file or directory)")
    parser.add_argument("--valid-uri", required=True, help="validation set: early stopping, ensemble weight, calibration")
    parser.add_argument("--test-uri", default=None, help="held-out later weeks, evaluated once at the end")
    parser.add_argument("--truth-uri", default=None, help="simulator truth directory (scores against the optimum)")
    parser.add_argument("--experiment", default=None, help="MLflow experiment (default: maestro-<model>)")
    parser.add_argument("--run-tags", default="", help="k=v,k=v or a JSON object: dag_id, run_id, data interval")
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument("--max-rows", type=int, default=None, help="cap on training rows (whole groups kept)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--checkpoint-dir", default=None, help="where a retried pod resumes from")
    # PyTorch
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=512, help="rows (duration) or groups (ranker) per batch")
    # LightGBM
    parser.add_argument("--lgb-num-leaves", type=int, default=31)
    parser.add_argument("--lgb-learning-rate", type=float, default=0.08)
    parser.add_argument("--lgb-num-boost-round", type=int, default=300)
    parser.add_argument("--lgb-early-stopping-rounds", type=int, default=30)
    parser.add_argument("--lgb-min-data-in-leaf", type=int, default=50)
    parser.add_argument("--lgb-max-bin", type=int, default=63)
    parser.add_argument("--ranker-models", default="lightgbm,torch", choices=["lightgbm,torch", "lightgbm"],
                        help="task_assignment: the ensemble, or LightGBM alone")
    parser.add_argument("--threads", type=int, default=0, help="LightGBM and torch CPU threads (0: all cores)")
    return parser.parse_args(argv)


def parse_tags(text: str) -> dict[str, str]:
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        return {str(k): str(v) for k, v in json.loads(text).items()}
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    bad = [p for p in pairs if len(p) != 2]
    if bad:
        raise SystemExit(f"--run-tags: expected k=v pairs, got {text!r}")
    return {k.strip(): v.strip() for k, v in pairs}


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


def _metrics(prefix: str, report: dict[str, Any]) -> dict[str, float]:
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


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    import mlflow
    import torch

    from maestro_ml.training.loop import seed_everything

    seed_everything(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tracking_uri:
        mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(args.experiment or f"maestro-{args.model}")
    started = time.perf_counter()
    train = data.read_frame(args.train_uri, args.max_rows)
    valid = data.read_frame(args.valid_uri)
    test = data.read_frame(args.test_uri) if args.test_uri else None
    tags = {"model": args.model, "git_sha": git_sha(), **parse_tags(args.run_tags)}
    with mlflow.start_run(tags=tags) as run, tempfile.TemporaryDirectory(prefix="maestro-train-") as workdir:
        digests = {}
        for name, frame, uri in (("train", train, args.train_uri), ("valid", valid, args.valid_uri),
                                 ("test", test, args.test_uri)):
            if frame is not None:
                digests[name] = data.digest(frame)
                mlflow.log_input(lineage_dataset(frame, uri, f"{args.model}-{name}", digests[name]), context=name)
        params = {k: v for k, v in vars(args).items() if k not in ("run_tags", "tracking_uri")}
        mlflow.log_params({**params, "train_rows": len(train), "valid_rows": len(valid),
                           "train_digest": digests["train"]})
        if args.model == "task_assignment":
            from maestro_ml.training.train_ranker import run_ranker

            result = run_ranker(args, train, valid, test, Path(workdir), digests["train"])
        else:
            from maestro_ml.training.train_duration import run_duration

            result = run_duration(args, train, valid, test, Path(workdir), digests["train"])
        mlflow.log_metric("training_seconds", time.perf_counter() - started)
        payload = {
            "run_id": run.info.run_id,
            "experiment_id": run.info.experiment_id,
            "model": args.model,
            "artifact_uri": run.info.artifact_uri,
            "seconds": round(time.perf_counter() - started, 2),
            **result,
        }
    print(json.dumps(payload, default=float), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())


