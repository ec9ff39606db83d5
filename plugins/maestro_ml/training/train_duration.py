"""Training, evaluation and MLflow logging of the task-duration model (called inside the CLI's MLflow run)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maestro_ml.evaluation.duration import (
    duration_report,
    global_median_slip,
    median_baselines,
    slip_baseline,
    truth_mae,
)
from maestro_ml.evaluation.ranking import TRUTH_KEYS
from maestro_ml.training import data
from maestro_ml.training.duration import Calibration, QuantileMLP, pinball_loss, predict_log_quantiles
from maestro_ml.training.loop import LoopConfig, LoopResult, fit, outputs
from maestro_ml.training.loop import add_arguments as add_loop_arguments
from maestro_ml.training.serving import DurationModel, DurationPyfunc, log_prior
from maestro_ml.training.tracking import log_bundle_pyfunc, log_curves, report_metrics

TARGET = "outcome_duration_hours"

MODEL_CARD = """# Task-duration model

**Intended use.** Predict how many hours a task will take from assignment to completion for a given
assignee, with an 80% and a 90% interval, to plan timelines. Not a measure of anyone's performance.

**Data window.** Train: {train_window}. Validation (early stopping and interval calibration): {valid_window}.
Rows: {train_rows:,} train / {valid_rows:,} validation (completed assignments only).

**Model.** MLP on standardized features with 5 quantile heads on log(duration / prior), the prior being {prior}
(a task without an estimate: log(duration) minus {missing_offset:.2f}, the training median for such tasks)
(pinball loss); the point prediction is the median; intervals are conformally calibrated on validation (margins
{margins}).

**Metrics (validation).**

{metrics_table}

**Limitations.** Trained on completed assignments only: tasks still open or reassigned are not in the
target, so very long tasks are under-represented in recent windows. Coverage holds on data like the
validation weeks; a shift in how work is done needs recalibration.
"""


__all__ = ["add_arguments", "run"]

PRIORS = ("estimate_x_slip", "estimate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The PyTorch loop's flags, and what the network learns departures from."""
    add_loop_arguments(parser)
    parser.add_argument("--prior", choices=PRIORS, default=PRIORS[0],
                        help="what the quantile heads learn log departures from: the estimate times the assignee's "
                             "recent slip (the slip baseline), or the estimate alone")


def fallback_slip(args: argparse.Namespace, train: pd.DataFrame) -> float | None:
    """The slip of an assignee without history (the training median), or None when the prior is the estimate alone."""
    return global_median_slip(train) if args.prior == "estimate_x_slip" else None


def _window(frame: pd.DataFrame | None) -> str:
    if frame is None or frame.empty:
        return "none"
    times = pd.to_datetime(frame[data.TIME_COLUMN], utc=True)
    return f"{times.min():%Y-%m-%d %H:%M} .. {times.max():%Y-%m-%d %H:%M} UTC"


def _completed(frame: pd.DataFrame) -> pd.DataFrame:
    target = frame[TARGET]
    return frame[target.notna() & (target > 0)].reset_index(drop=True)


def count_groups(frame: pd.DataFrame) -> int:
    """The groups the data floor counts: completed assignments (rows with a positive duration)."""
    return len(_completed(frame))


def missing_estimate_offset(train: pd.DataFrame) -> float:
    """The median log duration of the training tasks without an estimate (of all of them if every task has one)."""
    durations = np.log(train[TARGET].to_numpy(dtype=np.float64))
    estimate = (pd.to_numeric(train["estimated_hours"], errors="coerce").to_numpy(dtype=np.float64)
                if "estimated_hours" in train else np.full(len(train), np.nan))
    without = ~(np.isfinite(estimate) & (estimate > 0))
    pool = durations[without] if without.any() else durations
    return float(np.median(pool)) if len(pool) else 0.0


def _train_network(args: argparse.Namespace, train: pd.DataFrame, valid: pd.DataFrame, standardizer: data.Standardizer,
                   train_digest: str, missing: float, slip: float | None) -> tuple[QuantileMLP, LoopResult]:
    """The quantile MLP with early stopping on validation MAE of the median."""
    import torch

    x_train, x_valid = standardizer.transform(train), standardizer.transform(valid)
    # The target is the log slip, log(duration / estimate): the estimate carries most of the scale, so
    # the network learns what moves a task away from its estimate instead of the estimate itself.
    y_train = (np.log(train[TARGET].to_numpy(dtype=np.float64)) - log_prior(train, missing, slip)).astype(np.float32)
    y_valid = valid[TARGET].to_numpy(dtype=np.float64)
    log_est_valid = log_prior(valid, missing, slip).astype(np.float32)
    net = QuantileMLP(len(standardizer.columns), hidden=args.hidden, dropout=args.dropout)

    def batches(rng: np.random.Generator) -> list[tuple[torch.Tensor, ...]]:
        order = rng.permutation(len(x_train))
        size = max(1, args.batch_size)
        return [(torch.from_numpy(x_train[i]), torch.from_numpy(y_train[i]))
                for i in (order[s : s + size] for s in range(0, len(order), size))]

    def loss_fn(model: Any, batch: tuple[Any, ...]) -> Any:
        x, y = batch
        return pinball_loss(model(x), y)

    def validate(model: Any) -> float:
        median = np.exp(outputs(model, x_valid)[:, 2] + log_est_valid)
        return -float(np.mean(np.abs(median - y_valid)))  # higher is better: negative MAE

    loop = fit(net, batches, loss_fn, validate,
               LoopConfig(epochs=args.epochs, patience=args.patience, learning_rate=args.learning_rate,
                          batch_size=args.batch_size, device=args.device, checkpoint_dir=args.checkpoint_dir,
                          seed=args.seed),
               data_digest=train_digest)
    log_curves({"valid_mae_by_epoch": [-row["valid_score"] for row in loop.history],
                "train_pinball_loss": [row["train_loss"] for row in loop.history]},
               steps=[int(row["epoch"]) for row in loop.history])
    return net, loop


Predictions = dict[str, tuple[np.ndarray, np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]]


# A split's rows assigned closer than this quantile of the training durations to the end of the data had no
# time to finish a long task: their observed durations are biased short (right-censoring).
OBSERVABLE_QUANTILE = 0.95
MIN_OBSERVABLE_ROWS = 20


def observable_rows(frame: pd.DataFrame, train: pd.DataFrame, data_end: pd.Timestamp) -> np.ndarray:
    """Rows whose assignment lies at least the training durations' 95th percentile before ``data_end``."""
    if frame.empty or train.empty or data.TIME_COLUMN not in frame:
        return np.zeros(len(frame), dtype=bool)
    horizon = pd.Timedelta(hours=float(np.quantile(train[TARGET].to_numpy(dtype=np.float64), OBSERVABLE_QUANTILE)))
    assigned = pd.to_datetime(frame[data.TIME_COLUMN], utc=True)
    return (assigned <= data_end - horizon).to_numpy()


def _data_end(frames: list[pd.DataFrame]) -> pd.Timestamp:
    """The latest completion any split shows: where the observed data ends."""
    ends = [pd.to_datetime(f[data.TIME_COLUMN], utc=True) + pd.to_timedelta(f[TARGET], unit="h")
            for f in frames if not f.empty and data.TIME_COLUMN in f]
    return max(e.max() for e in ends) if ends else pd.Timestamp.now(tz="UTC")


def _evaluate(model: DurationModel, splits: dict[str, pd.DataFrame], train: pd.DataFrame,
              truth: pd.DataFrame | None) -> tuple[dict[str, Any], Predictions]:
    """Model and slip baseline (and truth, when known) per split; the predictions for the plots.

    ``model_observable`` repeats the model's report on the rows whose long outcomes had time to be seen
    (``observable_rows``), when there are at least ``MIN_OBSERVABLE_ROWS``: the last split's labels are
    right-censored, and its coverage on all rows understates the intervals.
    """
    fallback = global_median_slip(train)
    data_end = _data_end([train, *splits.values()])
    reports: dict[str, Any] = {}
    predictions: Predictions = {}
    for split, frame in splits.items():
        medians = median_baselines(train, frame)
        q = model.log_quantiles(frame)
        intervals = model.calibration.intervals(q)
        y = frame[TARGET].to_numpy(dtype=np.float64)
        pred = np.exp(q[:, 2])
        report = {
            "model": duration_report(y, pred, *intervals[80], *intervals[90]),
            "baseline_slip": duration_report(y, slip_baseline(frame, fallback, float(medians["global_median"][0])
                                                              if len(frame) else float("nan"))),
            **{f"baseline_{name}": duration_report(y, guess) for name, guess in medians.items()},
        }
        observable = observable_rows(frame, train, data_end)
        if observable.sum() >= MIN_OBSERVABLE_ROWS:
            report["model_observable"] = duration_report(
                y[observable], pred[observable], *(b[observable] for b in intervals[80]),
                *(b[observable] for b in intervals[90]))
        if truth is not None:
            report["truth"] = {"mae": truth_mae(frame, truth)}
        reports[split] = report
        predictions[split] = (y, pred, intervals)
    return reports, predictions


def _plot_predictions(predictions: Predictions, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _model_card(train: pd.DataFrame, valid: pd.DataFrame, calibration: Calibration, valid_report: dict[str, Any],
                missing_offset: float, slip: float | None) -> str:
    table = "\n".join(
        ["| model | MAE h | MAPE | coverage 80% | coverage 90% |", "|---|---|---|---|---|"]
        + [f"| {name} | {r.get('mae', float('nan')):.2f} | {r.get('mape', float('nan')):.3f} | "
           f"{r.get('coverage80', float('nan')):.3f} | {r.get('coverage90', float('nan')):.3f} |"
           for name, r in valid_report.items()]
    )
    return MODEL_CARD.format(
        train_window=_window(train), valid_window=_window(valid), train_rows=len(train), valid_rows=len(valid),
        margins={k: round(v, 3) for k, v in calibration.margins.items()}, metrics_table=table,
        missing_offset=missing_offset,
        prior="the estimate" if slip is None else (
            f"the estimate times the assignee's recent slip ratio ({slip:.2f}, the training median, without history)"),
    )


def _log_model(model: DurationModel, sample: pd.DataFrame, workdir: Path) -> None:
    """The served model: a pyfunc over raw feature rows (standardiser, network and margins in one bundle)."""
    bundle = model.save(workdir / "duration")
    x_sample = sample[model.features]
    log_bundle_pyfunc("model", DurationPyfunc(), bundle, x_sample, model.predict(x_sample))


def run(
    args: argparse.Namespace, train: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame | None, workdir: Path,
    train_digest: str,
) -> dict[str, Any]:
    """Train, calibrate, evaluate and log the duration model inside the CLI's MLflow run."""
    import mlflow

    train, valid = _completed(train), _completed(valid)
    standardizer = data.Standardizer.fit(train, data.feature_columns(train))
    started = time.perf_counter()
    missing, slip = missing_estimate_offset(train), fallback_slip(args, train)
    net, loop = _train_network(args, train, valid, standardizer, train_digest, missing, slip)
    train_seconds = time.perf_counter() - started
    valid_log_q = predict_log_quantiles(net, standardizer.transform(valid)) + log_prior(valid, missing, slip)[:, None]
    calibration = Calibration.fit(valid_log_q, np.log(valid[TARGET].to_numpy(dtype=np.float64)))
    model = DurationModel(net, standardizer, calibration, missing, slip)

    truth = (data.read_truth(args.truth_uri, [*TRUTH_KEYS, "median_duration_hours"], [valid, test])
             if args.truth_uri else None)
    splits = {"valid": valid} | ({"test": _completed(test)} if test is not None else {})
    reports, predictions = _evaluate(model, splits, train, truth)
    metrics: dict[str, float] = {"best_epoch": loop.best_epoch, "torch_train_seconds": train_seconds,
                                 **{f"conformal_margin_{k}": v for k, v in calibration.margins.items()}}
    for split, report in reports.items():
        for name, values in report.items():
            metrics.update(report_metrics(f"{split}_{name}", values))
    mlflow.log_metrics(metrics)

    (workdir / "evaluation.json").write_text(json.dumps(reports, indent=2, default=float))
    _plot_predictions(predictions, workdir / "predicted_vs_actual.png")
    (workdir / "model_card.md").write_text(_model_card(train, valid, calibration, reports["valid"], missing, slip))
    for name in ("evaluation.json", "predicted_vs_actual.png", "model_card.md"):
        mlflow.log_artifact(str(workdir / name))
    _log_model(model, valid.head(200), workdir)
    model_report = reports["valid"]["model"]
    return {"metrics": {"valid_mae": model_report["mae"], "valid_coverage80": model_report.get("coverage80"),
                        "valid_coverage90": model_report.get("coverage90")},
            "device": loop.device, "resumed_from_epoch": loop.resumed_from_epoch}
