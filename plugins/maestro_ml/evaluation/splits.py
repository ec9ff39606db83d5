"""Time-ordered train / validation / test splits that never cut a ranking group.

Models are trained on the past and judged on the future, as they are used: a random split would
let a model see the same weeks (the same workloads, the same managers' moods) in training and
test and flatter it. A group (``decision_id``: one assignment decision and all its candidates)
always lands whole in one split, so a ranking is never scored with part of its candidates.

``time_split`` cuts by fractions of *groups* ordered by time: the group's time is the earliest
``time_col`` of its rows; the last ``test_fraction`` of the groups is the test set, the
``valid_fraction`` before it the validation set, the rest the training set. The cut points are
times, so groups at the same instant stay on the same side: every training row is strictly
earlier than every validation row, and every validation row strictly earlier than every test
row (which makes a split a little smaller than its fraction when many groups share the cut time).

``split_bounds`` gives calendar bounds instead (the last ``test_days`` are test, the
``valid_days`` before them validation), and ``split_by_bounds`` applies them with the same
whole-group rule. Both are deterministic: no randomness, and a tie in time never separates groups.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

import numpy as np
import pandas as pd


class SplitBounds(NamedTuple):
    """Half-open windows: train ``[train_start, valid_start)``, valid ``[valid_start, test_start)``, test ``[test_start, end)``."""

    train_start: datetime
    valid_start: datetime
    test_start: datetime
    end: datetime


def _utc(value: datetime | str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def split_bounds(
    start: datetime | str | pd.Timestamp,
    end: datetime | str | pd.Timestamp,
    valid_days: float,
    test_days: float,
) -> SplitBounds:
    """``[start, end)`` cut into train, then ``valid_days`` of validation, then the last ``test_days`` of test (UTC)."""
    lo, hi = _utc(start), _utc(end)
    if valid_days < 0 or test_days < 0:
        raise ValueError("valid_days and test_days must be >= 0")
    test_start = hi - timedelta(days=test_days)
    valid_start = test_start - timedelta(days=valid_days)
    if valid_start <= lo:
        raise ValueError(f"[{lo}, {hi}) is too short for {valid_days} validation and {test_days} test days")
    return SplitBounds(lo.to_pydatetime(), valid_start.to_pydatetime(), test_start.to_pydatetime(), hi.to_pydatetime())


def _group_times(frame: pd.DataFrame, time_col: str, group_col: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group code and each group's time (its earliest row, ns since the epoch, UTC), indexed by code."""
    stamps = pd.to_datetime(frame[time_col], utc=True)
    if stamps.isna().any():
        raise ValueError(f"{time_col} has missing values")
    ns = stamps.astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    if group_col is None:
        return np.arange(len(frame)), ns
    codes, uniques = pd.factorize(frame[group_col], sort=True)
    if (codes < 0).any():
        raise ValueError(f"{group_col} has missing values")
    group_time = np.full(len(uniques), np.iinfo(np.int64).max)
    np.minimum.at(group_time, codes, ns)
    return codes, group_time


def time_split(
    frame: pd.DataFrame,
    time_col: str = "assigned_at",
    valid_fraction: float = 0.15,
    test_fraction: float = 0.15,
    *,
    group_col: str | None = "decision_id",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, valid, test) by time on whole groups: the last ``test_fraction`` of the groups is test, and so on.

    ``group_col=None`` makes every row its own group. Rows keep their relative order; indexes are reset.
    """
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
        raise ValueError("need valid_fraction >= 0, test_fraction >= 0 and valid_fraction + test_fraction < 1")
    codes, group_time = _group_times(frame, time_col, group_col)
    ordered = np.sort(group_time)
    n = len(ordered)
    n_test = round(n * test_fraction)
    n_valid = round(n * valid_fraction)
    cut_test = int(ordered[n - n_test]) if n_test > 0 else None
    cut_valid = int(ordered[n - n_test - n_valid]) if n_valid > 0 else None
    return _cut(frame, group_time[codes], cut_valid, cut_test)


def split_by_bounds(
    frame: pd.DataFrame,
    bounds: SplitBounds,
    time_col: str = "assigned_at",
    *,
    group_col: str | None = "decision_id",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, valid, test) by ``bounds`` on whole groups (a group's time is its earliest row); rows outside are dropped."""
    codes, group_time = _group_times(frame, time_col, group_col)
    t = group_time[codes]
    keep = (t >= _utc(bounds.train_start).value) & (t < _utc(bounds.end).value)
    return _cut(frame[keep], t[keep], _utc(bounds.valid_start).value, _utc(bounds.test_start).value)


def _cut(
    frame: pd.DataFrame, t: np.ndarray, cut_valid: int | None, cut_test: int | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rows with group time ``t >= cut_test`` are test, ``>= cut_valid`` (and not test) valid, the rest train."""
    test = t >= cut_test if cut_test is not None else np.zeros(len(t), dtype=bool)
    valid = (t >= cut_valid) & ~test if cut_valid is not None else np.zeros(len(t), dtype=bool)
    train = ~(test | valid)
    parts = [frame[m].reset_index(drop=True) for m in (train, valid, test)]
    return parts[0], parts[1], parts[2]
