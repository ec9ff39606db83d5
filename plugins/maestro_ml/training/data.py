"""Training data as the training entrypoint sees it: Parquet sets written by the DAG, local or ``s3://``.

The sets come from ``maestro_ml.features.training_sets`` (one row per decision and candidate, or per
completed assignment). Everything here is deterministic: rows are ordered by decision time and
id, groups are contiguous, and the feature list is the sorted numeric columns that are neither
identifiers nor labels, so the same files always give the same matrices.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.contracts.training_sets import sample_whole_groups

GROUP_COLUMN = "decision_id"
TIME_COLUMN = "assigned_at"
ID_COLUMNS = frozenset(
    {"decision_id", "task_id", "user_id", "project_id", "reporter_id", "assigned_at", "event_timestamp",
     "request_time_unix", "chosen"}
)
LABEL_PREFIX = "outcome_"
# Identifiers that happen to be numbers, or features that are constant at decision time by construction.
EXCLUDED_FEATURES = frozenset({"is_assigned", "is_active"})


def read_frame(uri: str, max_rows: int | None = None, seed: int = 0) -> pd.DataFrame:
    """A training set from a Parquet file or directory; ``max_rows`` keeps whole groups drawn at random
    (``contracts.training_sets``, the set builder's rule)."""
    fs, path = storage.filesystem(uri)
    table = pq.read_table(path, filesystem=fs)
    frame = table.to_pandas()
    sort = [c for c in (TIME_COLUMN, GROUP_COLUMN, "user_id") if c in frame.columns]
    if not _is_sorted(frame, sort):  # the DAG writes sets in this order; a sort of a million rows costs seconds
        frame = frame.sort_values(sort, kind="mergesort").reset_index(drop=True)
    if max_rows is not None and len(frame) > max_rows:
        groups = frame[GROUP_COLUMN] if GROUP_COLUMN in frame.columns else pd.Series(np.arange(len(frame)))
        frame = frame[sample_whole_groups(groups, max_rows, seed)].reset_index(drop=True)
    return frame


def _is_sorted(frame: pd.DataFrame, columns: list[str]) -> bool:
    """Whether ``frame`` is in lexicographic order of ``columns`` (no nulls in them)."""
    if len(frame) < 2 or not columns:
        return True
    tied = np.ones(len(frame) - 1, dtype=bool)  # rows equal to their predecessor on the columns so far
    for name in columns:
        column = frame[name]
        if column.isna().any():
            return False
        # Instants as int64: numpy of a tz-aware column is an object array of Timestamps (slow to build and compare).
        values = column.astype("int64").to_numpy() if isinstance(column.dtype, pd.DatetimeTZDtype) else column.to_numpy()
        later, earlier = values[1:], values[:-1]
        if (tied & (later < earlier)).any():
            return False
        tied &= later == earlier
    return True


def read_truth(truth_uri: str, columns: list[str], frames: list[pd.DataFrame | None]) -> pd.DataFrame:
    """The simulator's candidate truth (``<truth_uri>/candidates``), ``columns`` only, for the tasks in ``frames``.

    The truth holds every candidate of the whole simulation (millions of rows); evaluation needs a few columns
    of the evaluated tasks only.
    """
    fs, path = storage.filesystem(f"{truth_uri.rstrip('/')}/candidates")
    table = pq.read_table(path, filesystem=fs, columns=columns)
    tasks = pd.concat([f["task_id"] for f in frames if f is not None], ignore_index=True).astype(str).unique()
    keep = pc.is_in(table["task_id"].cast(pa.string()), value_set=pa.array(tasks, type=pa.string()))
    return table.filter(keep).to_pandas()


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The model inputs: numeric columns that are not ids, labels or excluded, sorted by name."""
    columns = []
    for name in frame.columns:
        if name in ID_COLUMNS or name in EXCLUDED_FEATURES or name.startswith(LABEL_PREFIX):
            continue
        if pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]):
            columns.append(name)
    return sorted(columns)


def digest(frame: pd.DataFrame) -> str:
    """A content digest of a set (row order included): MLflow dataset lineage and checkpoint identity."""
    hashed = pd.util.hash_pandas_object(frame, index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:16]


def group_sizes(frame: pd.DataFrame) -> np.ndarray:
    """Rows per group in order; groups must be contiguous (``read_frame`` sorts them so)."""
    codes = frame[GROUP_COLUMN].to_numpy()
    boundaries = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(codes)]])
    if len(set(codes[starts])) != len(starts):
        raise ValueError("groups are not contiguous: sort the frame by decision time and id first")
    return (ends - starts).astype(np.int64)


@dataclass(frozen=True)
class Standardizer:
    """Median imputation, clipping to the training range and z-scoring, with statistics of the training set only
    (no leakage from valid/test).

    The clip is for serving: an open task scored 100 hours after it was created has an ``age_hours`` no training
    row had (decisions are mostly taken at creation), a z-score of hundreds, and a network extrapolates that
    into a forecast of 15,000 hours. At the edge of what it learned from, it predicts what it learned there.
    """

    columns: tuple[str, ...]
    medians: np.ndarray
    means: np.ndarray
    scales: np.ndarray
    lows: np.ndarray | None = None  # None: a bundle saved before the clip (transformed as it was then)
    highs: np.ndarray | None = None

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str]) -> Standardizer:
        values = frame[columns].to_numpy(dtype=np.float64)
        medians = np.nan_to_num(np.nanmedian(values, axis=0), nan=0.0) if len(values) else np.zeros(len(columns))
        filled = np.where(np.isnan(values), medians, values)
        means = filled.mean(axis=0) if len(values) else np.zeros(len(columns))
        scales = filled.std(axis=0) if len(values) else np.ones(len(columns))
        lows = filled.min(axis=0) if len(values) else np.full(len(columns), -np.inf)
        highs = filled.max(axis=0) if len(values) else np.full(len(columns), np.inf)
        return cls(tuple(columns), medians, means, np.where(scales > 1e-9, scales, 1.0), lows, highs)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        values = frame[list(self.columns)].to_numpy(dtype=np.float64)
        filled = np.where(np.isnan(values), self.medians, values)
        if self.lows is not None and self.highs is not None:
            filled = np.clip(filled, self.lows, self.highs)
        return ((filled - self.means) / self.scales).astype(np.float32)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Standardizer:
        bounds = [np.array(state[k], dtype=np.float64) if k in state else None for k in ("lows", "highs")]
        return cls(tuple(state["columns"]), np.array(state["medians"], dtype=np.float64),
                   np.array(state["means"], dtype=np.float64), np.array(state["scales"], dtype=np.float64), *bounds)

    def to_dict(self) -> dict[str, list[float] | list[str]]:
        state: dict[str, list[float] | list[str]] = {
            "columns": list(self.columns),
            "medians": self.medians.tolist(),
            "means": self.means.tolist(),
            "scales": self.scales.tolist(),
        }
        if self.lows is not None and self.highs is not None:
            state |= {"lows": self.lows.tolist(), "highs": self.highs.tolist()}
        return state
