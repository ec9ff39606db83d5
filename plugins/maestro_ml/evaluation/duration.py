"""Metrics and baselines for the task-duration model (hours from assignment to completion).

The duration model predicts a point estimate and two central prediction intervals (80 % and
90 %). ``duration_report`` scores all of it on the rows where both the observed duration and the
prediction are finite:

* ``mae``: mean absolute error, in hours;
* ``mape``: mean of ``|y - y_hat| / max(|y|, mape_floor)``, a fraction (0.25 = 25 %). The floor
  (1 hour by default) guards against zeros and near-zero durations (a task closed minutes after
  it was assigned), which would otherwise dominate the mean;
* ``coverage80`` / ``coverage90``: the share of rows with ``lower <= y <= upper`` (a calibrated
  model lands near 0.80 / 0.90), and ``width80`` / ``width90``: the mean ``upper - lower``, in
  hours (narrower is better at the same coverage);
* ``interval_score80`` / ``interval_score90``: the mean interval (Winkler) score of the central
  ``1 - alpha`` interval, ``(upper - lower) + 2/alpha * (lower - y if y < lower, y - upper if
  y > upper)``, in hours. It rewards sharpness and punishes misses at once: an interval that is
  calibrated but years wide scores as badly as it is useful. Lower is better;
* ``n``: the rows scored.

Baselines
---------
``slip_baseline`` is the rule of thumb a manager would use: the task's estimate times the
assignee's own slip ratio (``avg_slip_ratio_90d``, mean ``duration / estimate`` of their completed
tasks in the last 90 days), or a global slip ratio when the assignee has no history. The fallback
is passed explicitly, computed on the *training* data only (``global_median_slip``), so the
test set never leaks into it.

``median_baselines`` are what a sceptic compares with first, each fitted on the training data
only: the global median duration, the median per project and the median per priority (a
project or priority the training data never saw gets the global median).

``truth_mae`` is the floor: in simulation the realised duration is lognormal around a known
median ``M`` (``actual = M * exp(sigma * z)``). The median minimises the expected absolute error,
so the MAE of the truth's ``median_duration_hours`` for the same (task, assignee, decision) is the
best MAE any model can reach; ``column="expected_duration_hours"`` scores the truth's mean
``E[dur] = M * exp(sigma**2 / 2)`` instead (the floor for squared error, slightly worse in MAE).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from maestro_ml.evaluation.ranking import TRUTH_TOLERANCE, join_truth

DEFAULT_MAPE_FLOOR = 1.0
DEFAULT_SLIP = 1.0


def _floats(values: Any) -> np.ndarray:
    if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        return pd.Series(values).astype("float64").to_numpy()
    return np.asarray(values, dtype=np.float64).ravel()


def _coverage(y: np.ndarray, lower: Any, upper: Any, keep: np.ndarray, level: int) -> tuple[float, float, float]:
    """(coverage, mean width, mean interval score) of the central ``level`` % interval."""
    lo, hi = _floats(lower), _floats(upper)
    if not (len(lo) == len(hi) == len(keep)):
        raise ValueError(f"interval bounds differ in length from y_true: {len(lo)}, {len(hi)}, {len(keep)}")
    lo, hi = lo[keep], hi[keep]
    if len(y) == 0:
        return float("nan"), float("nan"), float("nan")
    inside = (lo <= y) & (y <= hi)
    return float(inside.mean()), float(np.mean(hi - lo)), interval_score(y, lo, hi, 1 - level / 100)


def interval_score(y_true: Any, lower: Any, upper: Any, alpha: float) -> float:
    """Mean interval (Winkler) score of central ``1 - alpha`` intervals; see the module docstring."""
    y, lo, hi = _floats(y_true), _floats(lower), _floats(upper)
    penalty = (2.0 / alpha) * (np.clip(lo - y, 0.0, None) + np.clip(y - hi, 0.0, None))
    return float(np.mean((hi - lo) + penalty)) if len(y) else float("nan")


def duration_report(
    y_true: Any,
    y_pred: Any,
    lower80: Any = None,
    upper80: Any = None,
    lower90: Any = None,
    upper90: Any = None,
    *,
    mape_floor: float = DEFAULT_MAPE_FLOOR,
) -> dict[str, float]:
    """MAE, MAPE, and coverage and mean width of the 80 % and 90 % intervals (when given); see the module docstring."""
    y, p = _floats(y_true), _floats(y_pred)
    if len(y) != len(p):
        raise ValueError(f"y_true and y_pred differ in length: {len(y)}, {len(p)}")
    keep = np.isfinite(y) & np.isfinite(p)
    y, p = y[keep], p[keep]
    err = np.abs(y - p)
    report: dict[str, float] = {
        "mae": float(err.mean()) if len(y) else float("nan"),
        "mape": float(np.mean(err / np.maximum(np.abs(y), mape_floor))) if len(y) else float("nan"),
    }
    for level, lower, upper in ((80, lower80, upper80), (90, lower90, upper90)):
        if lower is None or upper is None:
            continue
        report[f"coverage{level}"], report[f"width{level}"], report[f"interval_score{level}"] = _coverage(
            y, lower, upper, keep, level)
    report["n"] = int(len(y))
    return report


def global_median_slip(frame: pd.DataFrame, column: str = "outcome_slip_ratio", default: float = DEFAULT_SLIP) -> float:
    """The median observed slip ratio (duration / estimate) of ``frame``, the training data; ``default`` if none."""
    if column not in frame.columns:
        return default
    values = _floats(frame[column])
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else default


def slip_baseline(frame: pd.DataFrame, fallback_slip: float, without_estimate: float = float("nan")) -> np.ndarray:
    """``estimated_hours * avg_slip_ratio_90d``, with ``fallback_slip`` where the assignee has no slip history.

    A task without an estimate (most tasks in real trackers) gets ``without_estimate`` hours: callers pass the
    training median, the rule a manager falls back on.
    """
    estimate = _floats(frame["estimated_hours"]) if "estimated_hours" in frame.columns else np.full(len(frame), np.nan)
    slip = _floats(frame["avg_slip_ratio_90d"]) if "avg_slip_ratio_90d" in frame.columns else np.full(len(frame), np.nan)
    guess = estimate * np.where(np.isfinite(slip), slip, fallback_slip)
    return np.where(np.isfinite(estimate) & (estimate > 0), guess, without_estimate)


def median_baselines(
    train: pd.DataFrame, frame: pd.DataFrame, target: str = "outcome_duration_hours"
) -> dict[str, np.ndarray]:
    """Predictions for ``frame`` of the global, per-project and per-priority median durations of ``train``."""
    durations = pd.Series(_floats(train[target]), index=train.index)
    durations = durations[np.isfinite(durations)]
    overall = float(durations.median()) if len(durations) else float("nan")
    out = {"global_median": np.full(len(frame), overall)}
    for name, column in (("project_median", "project_id"), ("priority_median", "priority")):
        if column in train.columns and column in frame.columns:
            medians = durations.groupby(train.loc[durations.index, column]).median()
            out[name] = _floats(frame[column].map(medians)).copy()
            out[name][~np.isfinite(out[name])] = overall
    return out


def truth_mae(
    frame: pd.DataFrame,
    truth_candidates: pd.DataFrame,
    *,
    column: str = "median_duration_hours",
    outcome_col: str = "outcome_duration_hours",
    tolerance: pd.Timedelta = TRUTH_TOLERANCE,
) -> float:
    """MAE of the truth's ``column`` against the observed durations, on the rows matched to the truth (NaN if none)."""
    truth = join_truth(frame, truth_candidates, [column], tolerance=tolerance)[column]
    y, p = _floats(frame[outcome_col]), _floats(truth)
    keep = np.isfinite(y) & np.isfinite(p)
    return float(np.mean(np.abs(y[keep] - p[keep]))) if keep.any() else float("nan")
