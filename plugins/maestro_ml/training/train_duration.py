"""Training, evaluation and MLflow logging of the task-duration model (called inside the CLI's MLflow run)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maestro_ml.evaluation.duration import duration_report, global_median_slip, slip_baseline, truth_mae
from maestro_ml.evaluation.ranking import TRUTH_KEYS
from maestro_ml.training import data
from maestro_ml.training.cli import _metrics, log_curves, model_requirements
from maestro_ml.training.duration import Calibration, QuantileMLP, pinball_loss, predict_log_quantiles
from maestro_ml.training.loop import LoopConfig, fit, outputs

TARGET = "outcome_duration_hours"

MODEL_CARD = """# Task-duration model

**Intended use.** Predict how many hours a task will take from assignment to completion for a given
assignee, with an 80% and a 90% interval, to plan timelines. Not a measure of anyone's performance.

**Data window.** Train: {train_window}. Validation (early stopping and interval calibration): {valid_window}.
Rows: {train_rows:,} train / {valid_rows:,} validation (completed assignments only).

**Model.** MLP on standardized features with 5 quantile heads on log(duration / estimate)
(pinball loss); the point prediction is the median; intervals are conformally calibrated on validation (margins
{margins}).

**Metrics (validation).**

{metrics_table}

**Limitations.** Trained on completed assignments only: tasks still open or reassigned are not in the
target, so very long tasks are under-represented in recent windows. Coverage holds on data like the
validation weeks; a shift in how work is done needs recalibration.
"""


def _window(frame: pd.DataFrame | None) -> str:
    if frame is None or frame.empty:
        return "none"
    times = pd.to_datetime(frame[data.TIME_COLUMN], utc=True)
    return f"{times.min():%Y-%m-%d %H:%M} .. {times.max():%Y-%m-%d %H:%M} UTC"


def _log_estimate(frame: pd.DataFrame) -> np.ndarray:
    estimate = frame["estimated_hours"].to_numpy(dtype=np.float64)
    return np.log(np.where(np.isfinite(estimate) & (estimate > 0), estimate, 1.0))


def _completed(frame: pd.DataFrame) -> pd.DataFrame:
    target = frame[TARGET]
    return frame[target.notna() & (target > 0)].reset_index(drop=True)


def run_duration(
    args: argparse.Namespace, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame | None, workdir: Path,
    train_digest: str,
) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    import mlflow.pytorch
    import torch
    from mlflow.models import infer_signature

    train, valid = _completed(train), _completed(valid)
    if len(train) < 10 or len(valid) < 5:
        raise ValueError(f"too few completed assignments: {len(train)} train, {len(valid)} valid")
    features = data.feature_columns(train)
    standardizer = data.Standardizer.fit(train, features)
    x_train, x_valid = standardizer.transform(train), standardizer.transform(valid)
    # The target is the log slip, log(duration / estimate): the estimate carries most of the scale, so
    # the network learns what moves a task away from its estimate instead of the estimate itself.
    log_est_train = _log_estimate(train)
    y_train = (np.log(train[TARGET].to_numpy(dtype=np.float64)) - log_est_train).astype(np.float32)
    y_valid = valid[TARGET].to_numpy(dtype=np.float64)
    log_est_valid = _log_estimate(valid).astype(np.float32)
    model = QuantileMLP(len(features), hidden=args.hidden, dropout=args.dropout)

    def batches(rng: np.random.Generator) -> list[tuple[torch.Tensor, ...]]:
        order = rng.permutation(len(x_train))
        size = max(1, args.batch_size)
        return [(torch.from_numpy(x_train[i]), torch.from_numpy(y_train[i]))
                for i in (order[s : s + size] for s in range(0, len(order), size))]

    def loss_fn(net: Any, batch: tuple[Any, ...]) -> Any:
        x, y = batch
        return pinball_loss(net(x), y)

    def validate(net: Any) -> float:
        median = np.exp(outputs(net, x_valid)[:, 2] + log_est_valid)
        return -float(np.mean(np.abs(median - y_valid)))  # higher is better: negative MAE

    loop = fit(model, batches, loss_fn, validate,
               LoopConfig(epochs=args.epochs, patience=args.patience, learning_rate=args.learning_rate,
                          batch_size=args.batch_size, device=args.device, checkpoint_dir=args.checkpoint_dir,
                          seed=args.seed),
               data_digest=train_digest)
    log_curves({"valid_mae_by_epoch": [-row["valid_score"] for row in loop.history],
                "train_pinball_loss": [row["train_loss"] for row in loop.history]},
               steps=[int(row["epoch"]) for row in loop.history])

    calibration = Calibration.fit(predict_log_quantiles(model, x_valid) + log_est_valid[:, None], np.log(y_valid))
    fallback = global_median_slip(train)
    truth = (data.read_truth(args.truth_uri, [*TRUTH_KEYS, "median_duration_hours"], [valid, test])
             if args.truth_uri else None)
    metrics: dict[str, float] = {"best_epoch": loop.best_epoch, **{f"conformal_margin_{k}": v
                                                                  for k, v in calibration.margins.items()}}
    reports: dict[str, Any] = {}
    predictions: dict[str, tuple[np.ndarray, np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]] = {}
    splits = {"valid": valid} | ({"test": _completed(test)} if test is not None else {})
    for split, frame in splits.items():
        q = predict_log_quantiles(model, standardizer.transform(frame)) + _log_estimate(frame)[:, None]
        intervals = calibration.intervals(q)
        y = frame[TARGET].to_numpy(dtype=np.float64)
        pred = np.exp(q[:, 2])
        report = {
            "model": duration_report(y, pred, *intervals[80], *intervals[90]),
            "baseline_slip": duration_report(y, slip_baseline(frame, fallback)),
        }
        if truth is not None:
            report["truth"] = {"mae": truth_mae(frame, truth)}
        reports[split] = report
        predictions[split] = (y, pred, intervals)
        for name, values in report.items():
            metrics.update(_metrics(f"{split}_{name}", values))
    mlflow.log_metrics(metrics)
    (workdir / "evaluation.json").write_text(json.dumps(reports, indent=2, default=float))

    y, pred, intervals = predictions["valid"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    axes[0].scatter(y, pred, s=4, alpha=0.4)
    top = float(np.percentile(np.concatenate([y, pred]), 99))
    axes[0].plot([0, top], [0, top], color="black", linewidth=1)
    axes[0].set(xlim=(0, top), ylim=(0, top), xlabel="actual hours", ylabel="predicted hours (median)",
                title="predicted vs actual (validation)")
    levels = sorted(intervals)
    covered = [float(np.mean((y >= intervals[k][0]) & (y <= intervals[k][1]))) for k in levels]
    axes[1].bar([f"{k}%" for k in levels], covered, color="tab:blue")
    axes[1].plot([-0.5, len(levels) - 0.5], [0.8, 0.8], "--", color="gray")
    axes[1].plot([-0.5, len(levels) - 0.5], [0.9, 0.9], ":", color="gray")
    axes[1].set(ylim=(0, 1), ylabel="share of actuals inside", title="interval calibration (validation)")
    fig.tight_layout()
    fig.savefig(workdir / "predicted_vs_actual.png", dpi=100)
    plt.close(fig)
    valid_report = reports["valid"]
    table = "\n".join(
        ["| model | MAE h | MAPE | coverage 80% | coverage 90% |", "|---|---|---|---|---|"]
        + [f"| {name} | {r.get('mae', float('nan')):.2f} | {r.get('mape', float('nan')):.3f} | "
           f"{r.get('coverage80', float('nan')):.3f} | {r.get('coverage90', float('nan')):.3f} |"
           for name, r in valid_report.items()]
    )
    (workdir / "model_card.md").write_text(MODEL_CARD.format(
        train_window=_window(train), valid_window=_window(valid), train_rows=len(train), valid_rows=len(valid),
        margins={k: round(v, 3) for k, v in calibration.margins.items()}, metrics_table=table,
    ))
    (workdir / "calibration.json").write_text(json.dumps({"margins": calibration.margins,
                                                          "standardizer": standardizer.to_dict()}))
    for name in ("evaluation.json", "predicted_vs_actual.png", "model_card.md", "calibration.json"):
        mlflow.log_artifact(str(workdir / name))
    sample = standardizer.transform(valid.head(200))
    mlflow.pytorch.log_model(
        model, name="model", signature=infer_signature(sample, predict_log_quantiles(model, sample)),
        input_example=sample[:5],
        pip_requirements=model_requirements(),
    )
    model_report = valid_report["model"]
    return {"metrics": {"valid_mae": model_report["mae"], "valid_coverage80": model_report.get("coverage80"),
                        "valid_coverage90": model_report.get("coverage90")},
            "device": loop.device, "resumed_from_epoch": loop.resumed_from_epoch}
