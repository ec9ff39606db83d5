"""Feature and prediction drift: a reference sample (the champion's training data) against a current one.

Pure functions on pandas/numpy/scipy; no Airflow, and Evidently is not imported (its numbers are
matched, see ``tests/integration/test_drift_matches_evidently.py``). Per feature:

* **The drift statistic** decides ``drifted``. ``"auto"`` (the default) picks what Evidently 0.7's
  ``DataDriftPreset`` picks, on the non-missing values (NaN and +-inf dropped first, as Evidently does):

  ========================  ==============================  ==================================
  reference values          numeric                         categorical
  ========================  ==============================  ==================================
  <= 1000 (small sample)    ``ks`` p-value (> 5 values),    ``chisquare`` p-value (> 2 values),
                            ``chisquare`` (3-5), ``z`` (2)  ``z`` p-value (<= 2 values)
  > 1000                    ``wasserstein`` normed (> 5     ``jensenshannon``
                            values), ``jensenshannon`` (<= 5)
  ========================  ==============================  ==================================

  "values" counts the distinct values of both samples together. A distance drifts at
  ``value >= threshold``, a p-value at ``value <= threshold`` (``ks``) or ``value < threshold``
  (``chisquare``, ``z``), Evidently's comparisons.
* **PSI** is always reported alongside (column ``psi``), and can be a group's statistic: numerics are
  binned at the reference's deciles (``psi_bins``; repeated edges merged), plus a bin below and one
  above the reference's range and a bin for missing values (NaN, +-inf); categoricals use one bin per
  category plus the missing bin. Shares are floored at ``PSI_EPSILON`` so an empty bin costs a finite
  amount. PSI >= 0.2 is the usual "significant shift" level (0.1-0.2 moderate).

Definitions, as in Evidently 0.7 (``evidently/legacy/calculations/stattests``):

* normed Wasserstein: ``scipy.stats.wasserstein_distance(ref, cur) / max(std(ref), 0.001)``, the
  population std (ddof 0);
* Jensen-Shannon: ``scipy.spatial.distance.jensenshannon`` (natural log, so at most sqrt(ln 2) ~ 0.833)
  of the two samples' shares: per category, or, for a numeric with more than 20 distinct reference
  values, per bin of ``numpy.histogram_bin_edges(ref + cur, "sturges")``;
* KS: the two-sided ``scipy.stats.ks_2samp`` p-value; chi-square: ``scipy.stats.chisquare`` of the
  current counts against the reference counts scaled to the current size; z: the two-proportion z-test
  of "first category (sorted)" against the rest.

Edge cases: a side with no values at all (an all-missing column, an empty frame) cannot give a
distance; the feature is then judged by PSI, whose missing bin sees a column that went all-null (or
came back); two all-missing samples have PSI 0 and no drift. A constant column is fine: its
Wasserstein norm is floored at 0.001 and its PSI bins are "below", "the constant", "above".

Groups: a feature's group is the feature view it comes from (``contracts.features.VIEWS``), except the
absolute epoch times (``*_unix``), which move with the clock and so drift by construction: they form
``TIMESTAMP_GROUP``, and all-time counts and tenure in ``CUMULATIVE_GROUP`` (they grow on any tracker), both
reported but never counted as drifted by default (``DriftThresholds.ignored_groups``).
Features of no view fall in ``DEFAULT_GROUP``; model outputs in ``PREDICTION_GROUP``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from types import MappingProxyType
from typing import Literal, get_args

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

from maestro_ml.contracts.features import VIEWS

Statistic = Literal["auto", "wasserstein", "jensenshannon", "psi", "ks", "chisquare", "z"]
Kind = Literal["numeric", "categorical"]

DEFAULT_GROUP = "other"
TIMESTAMP_GROUP = "timestamps"
# All-time counts and tenure grow by construction on any tracker, stationary or not: reported, never counted.
CUMULATIVE_GROUP = "cumulative"
CUMULATIVE_FEATURES = frozenset({"tenure_days", "project_size_tasks"})
PREDICTION_GROUP = "predictions"
# Evidently 0.7's default thresholds, except PSI: Evidently uses 0.1, 0.2 is the common "significant shift".
DEFAULT_THRESHOLDS: Mapping[str, float] = MappingProxyType({
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "psi": 0.2,
    "ks": 0.05,
    "chisquare": 0.05,
    "z": 0.05,
})
# Evidently switches to p-value tests at this many reference values or fewer.
SMALL_SAMPLE_ROWS = 1000
PSI_BINS = 10
PSI_EPSILON = 1e-4
# Statistics that need numbers; any other applies to both kinds.
NUMERIC_ONLY: frozenset[str] = frozenset({"wasserstein", "ks"})
P_VALUES: frozenset[str] = frozenset({"ks", "chisquare", "z"})
# Evidently's floor on the reference std that norms the Wasserstein distance, and its bin rule for JS.
_WASSERSTEIN_MIN_NORM = 0.001
_JS_HISTOGRAM_MIN_VALUES = 20

REPORT_COLUMNS = (
    "feature", "group", "kind", "statistic", "value", "threshold", "drifted", "psi",
    "n_reference", "n_current", "missing_reference", "missing_current",
)


@dataclass(frozen=True)
class DriftThresholds:
    """Which statistic and threshold judge each feature group.

    ``groups`` maps a group to ``(statistic, threshold)``; a statistic that needs numbers
    (``wasserstein``, ``ks``) judges only that group's numerics, its categoricals get ``"auto"``.
    A group not named, and ``"auto"``, get Evidently's choice (module docstring) with the threshold
    of ``defaults`` for the statistic picked. Groups in ``ignored_groups`` are reported, never drifted.
    """

    groups: Mapping[str, tuple[Statistic, float]] = field(default_factory=dict)
    defaults: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    ignored_groups: frozenset[str] = frozenset({TIMESTAMP_GROUP, CUMULATIVE_GROUP})
    small_sample_rows: int = SMALL_SAMPLE_ROWS
    psi_bins: int = PSI_BINS

    def __post_init__(self) -> None:
        known = set(get_args(Statistic))
        for group, (statistic, _) in self.groups.items():
            if statistic not in known:
                raise ValueError(f"group {group!r}: unknown statistic {statistic!r}; one of {sorted(known)}")
        missing = known - {"auto"} - set(self.defaults)
        if missing:
            raise ValueError(f"defaults lack a threshold for {sorted(missing)}")
        if self.psi_bins < 1:
            raise ValueError("psi_bins must be at least 1")

    def rule(self, group: str, kind: Kind, n_reference: int, n_values: int) -> tuple[str, float]:
        """``(statistic, threshold)`` for a feature of ``group`` and ``kind`` with ``n_reference`` non-missing
        reference values and ``n_values`` distinct values in both samples together."""
        statistic, threshold = self.groups.get(group, ("auto", float("nan")))
        if statistic == "auto" or (kind == "categorical" and statistic in NUMERIC_ONLY):
            statistic = default_statistic(kind, n_reference, n_values, self.small_sample_rows)
            threshold = self.defaults[statistic]
        return statistic, float(threshold)


DEFAULT_DRIFT_THRESHOLDS = DriftThresholds()


def default_statistic(
    kind: Kind, n_reference: int, n_values: int, small_sample_rows: int = SMALL_SAMPLE_ROWS
) -> Statistic:
    """Evidently 0.7's default stattest (``_get_default_stattest``) for a feature."""
    if n_reference <= small_sample_rows:
        if kind == "numeric" and n_values > 5:
            return "ks"
        return "chisquare" if n_values > 2 else "z"
    if kind == "numeric" and n_values > 5:
        return "wasserstein"
    return "jensenshannon"


@cache
def _view_of_feature() -> dict[str, str]:
    return {f.name: view.name for view in VIEWS.values() for f in view.features}


def feature_group(name: str) -> str:
    """The group of a feature: ``TIMESTAMP_GROUP`` for epoch times (``*_unix``), ``CUMULATIVE_GROUP`` for
    all-time counts (``*_all``) and ``CUMULATIVE_FEATURES``, else its feature view's name, else
    ``DEFAULT_GROUP`` (on-demand features, anything unknown)."""
    if name.endswith("_unix"):
        return TIMESTAMP_GROUP
    if name.endswith("_all") or name in CUMULATIVE_FEATURES:
        return CUMULATIVE_GROUP
    return _view_of_feature().get(name, DEFAULT_GROUP)


def feature_kind(series: pd.Series) -> Kind:
    """``numeric`` for number columns (bool excluded), ``categorical`` for the rest."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype) or not pd.api.types.is_numeric_dtype(dtype):
        return "categorical"
    return "numeric"


def _comparable(series: pd.Series) -> bool:
    """Whether a column can be compared: numbers, bools, strings, categories; not datetimes, lists or dicts."""
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        return False
    if pd.api.types.is_object_dtype(dtype):
        present = series.dropna()
        return present.empty or isinstance(present.iloc[0], str | int | float | bool | np.generic)
    return True


# --------------------------------------------------------------------------- one feature


@dataclass(frozen=True)
class _Sample:
    """One feature's two samples as Evidently sees them: non-missing values, their counts per distinct value."""

    kind: Kind
    reference: np.ndarray  # non-missing values (numeric: float64; categorical: codes)
    current: np.ndarray
    reference_counts: np.ndarray  # per distinct value of both samples together
    current_counts: np.ndarray
    reference_missing: int
    current_missing: int
    keys: np.ndarray  # the distinct values, in the order of the counts


def _numeric(series: pd.Series) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        series = pd.to_numeric(series, errors="coerce")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _sample(reference: pd.Series, current: pd.Series, kind: Kind) -> _Sample:
    if kind == "numeric":
        ref_all, cur_all = _numeric(reference), _numeric(current)
        ref, cur = ref_all[np.isfinite(ref_all)], cur_all[np.isfinite(cur_all)]
        keys, inverse = np.unique(np.concatenate([ref, cur]), return_inverse=True)
        ref_codes, cur_codes = inverse[: ref.size], inverse[ref.size:]
    else:
        both = pd.concat([reference.astype(object), current.astype(object)], ignore_index=True)
        codes, uniques = pd.factorize(both, sort=False)
        infinite = np.array([isinstance(u, float | np.floating) and np.isinf(u) for u in uniques], dtype=bool)
        if infinite.any():  # +-inf are missing values, as in Evidently (per category, not per row)
            renumber = np.where(infinite, -1, np.cumsum(~infinite) - 1)
            codes = np.where(codes >= 0, renumber[np.maximum(codes, 0)], -1)
            uniques = uniques[~infinite]
        ref_all_codes, cur_all_codes = codes[: len(reference)], codes[len(reference):]
        ref_codes, cur_codes = ref_all_codes[ref_all_codes >= 0], cur_all_codes[cur_all_codes >= 0]
        ref, cur = ref_codes, cur_codes
        keys = np.asarray(uniques, dtype=object)
    k = len(keys)
    return _Sample(
        kind=kind,
        reference=ref,
        current=cur,
        reference_counts=np.bincount(ref_codes, minlength=k),
        current_counts=np.bincount(cur_codes, minlength=k),
        reference_missing=len(reference) - ref.size,
        current_missing=len(current) - cur.size,
        keys=keys,
    )


def _wasserstein_normed(s: _Sample) -> float:
    """``scipy.stats.wasserstein_distance(ref, cur) / max(std(ref), 0.001)``, from the counts per distinct value:
    the integral of |F_ref - F_cur| over the sorted distinct values (what scipy sums, without its re-sorts)."""
    norm = max(float(np.std(s.reference)), _WASSERSTEIN_MIN_NORM)
    if len(s.keys) < 2:
        return 0.0
    cdf_gap = np.cumsum(s.reference_counts)[:-1] / s.reference.size - np.cumsum(s.current_counts)[:-1] / s.current.size
    return float(np.sum(np.abs(cdf_gap) * np.diff(s.keys))) / norm  # not np.dot: BLAS threads, no gain at this size


def _jensenshannon(s: _Sample) -> float:
    if s.kind == "numeric" and np.count_nonzero(s.reference_counts) > _JS_HISTOGRAM_MIN_VALUES:
        edges = np.histogram_bin_edges(np.concatenate([s.reference, s.current]), bins="sturges")
        ref_shares = np.histogram(s.reference, edges)[0] / s.reference.size
        cur_shares = np.histogram(s.current, edges)[0] / s.current.size
    else:
        ref_shares = s.reference_counts / s.reference.size
        cur_shares = s.current_counts / s.current.size
    return float(distance.jensenshannon(ref_shares, cur_shares))


def _chisquare(s: _Sample) -> float:
    expected = s.reference_counts * (s.current.size / s.reference.size)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.chisquare(s.current_counts, expected)[1])


def _z_test(s: _Sample) -> float:
    ref_present, cur_present = s.reference_counts > 0, s.current_counts > 0
    if ref_present.sum() == 1 and cur_present.sum() == 1 and (ref_present == cur_present).all():
        return 1.0
    first = int(np.argmin(_sort_ranks(s.keys)))  # Evidently: the first of the sorted distinct values vs the rest
    n1, n2 = s.reference.size, s.current.size
    p1 = (n1 - s.reference_counts[first]) / n1
    p2 = (n2 - s.current_counts[first]) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    return float(2 * (1 - stats.norm.cdf(np.abs(z))))


def _sort_ranks(keys: np.ndarray) -> np.ndarray:
    try:
        return np.argsort(np.argsort(keys, kind="stable"), kind="stable")
    except TypeError:  # mixed types: order by their text
        return np.argsort(np.argsort(keys.astype(str), kind="stable"), kind="stable")


def _statistic_value(statistic: str, s: _Sample) -> float:
    if statistic == "wasserstein":
        return _wasserstein_normed(s)
    if statistic == "jensenshannon":
        return _jensenshannon(s)
    if statistic == "ks":
        return float(stats.ks_2samp(s.reference, s.current)[1])
    if statistic == "chisquare":
        return _chisquare(s)
    if statistic == "z":
        return _z_test(s)
    raise ValueError(f"unknown statistic {statistic!r}")


def _psi_from_shares(ref_shares: np.ndarray, cur_shares: np.ndarray) -> float:
    ref_shares = np.maximum(ref_shares, PSI_EPSILON)
    cur_shares = np.maximum(cur_shares, PSI_EPSILON)
    return float(np.sum((cur_shares - ref_shares) * np.log(cur_shares / ref_shares)))


def _psi(s: _Sample, bins: int) -> float:
    n_ref = s.reference.size + s.reference_missing
    n_cur = s.current.size + s.current_missing
    if n_ref == 0 or n_cur == 0:
        return float("nan")
    if s.kind == "numeric" and s.reference.size:
        ref, cur = s.reference, s.current
        inner = np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
        low, high = ref.min(), ref.max()
        m = inner.size

        def counts(values: np.ndarray) -> np.ndarray:
            index = np.searchsorted(inner, values, side="right") + 1  # 1 .. m + 1 inside the reference's range
            index[values < low] = 0
            index[values > high] = m + 2
            return np.bincount(index, minlength=m + 3)

        ref_counts, cur_counts = counts(ref), counts(cur)
    else:  # categoricals; a numeric whose reference is all missing has one bin for whatever the current holds
        ref_counts, cur_counts = s.reference_counts, s.current_counts
        if s.kind == "numeric":
            ref_counts, cur_counts = np.array([ref_counts.sum()]), np.array([cur_counts.sum()])
    ref_shares = np.append(ref_counts, s.reference_missing) / n_ref
    cur_shares = np.append(cur_counts, s.current_missing) / n_cur
    return _psi_from_shares(ref_shares, cur_shares)


def _drifted(statistic: str, value: float, threshold: float) -> bool:
    if np.isnan(value):
        return False
    if statistic == "ks":
        return value <= threshold
    if statistic in P_VALUES:
        return value < threshold
    return value >= threshold


def _one_feature(name: str, reference: pd.Series, current: pd.Series, group: str, kind: Kind,
                 thresholds: DriftThresholds) -> dict[str, object]:
    s = _sample(reference, current, kind)
    psi = _psi(s, thresholds.psi_bins)
    if s.reference.size and s.current.size:
        statistic, threshold = thresholds.rule(group, kind, s.reference.size, len(s.keys))
        value = psi if statistic == "psi" else _statistic_value(statistic, s)
    else:  # nothing to measure a distance on: the missing bin of PSI speaks
        statistic, threshold, value = "psi", float(thresholds.defaults["psi"]), psi
        named = thresholds.groups.get(group)
        if named is not None and named[0] == "psi":
            threshold = float(named[1])
    drifted = group not in thresholds.ignored_groups and _drifted(statistic, value, threshold)
    return {
        "feature": name,
        "group": group,
        "kind": kind,
        "statistic": statistic,
        "value": value,
        "threshold": threshold,
        "drifted": bool(drifted),
        "psi": psi,
        "n_reference": int(s.reference.size),
        "n_current": int(s.current.size),
        "missing_reference": s.reference_missing / len(reference) if len(reference) else float("nan"),
        "missing_current": s.current_missing / len(current) if len(current) else float("nan"),
    }


# --------------------------------------------------------------------------- public API


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    thresholds: DriftThresholds = DEFAULT_DRIFT_THRESHOLDS,
    *,
    features: Iterable[str] | None = None,
    group_of: Callable[[str], str] = feature_group,
    categorical: Iterable[str] = (),
) -> pd.DataFrame:
    """One row per feature: ``REPORT_COLUMNS``.

    ``features`` defaults to the reference's comparable columns (numbers, bools, strings, categories; not
    datetimes or lists): pass the model's inputs to leave ids out. A feature the current frame lacks
    counts as all-missing there. A column is numeric by its reference dtype unless named in ``categorical``.
    ``n_reference``/``n_current`` count the non-missing values the statistic saw; ``missing_*`` are shares.
    """
    names = list(features) if features is not None else [c for c in reference.columns if _comparable(reference[c])]
    as_categorical = set(categorical)
    rows = []
    for name in names:
        ref = reference[name]
        cur = current[name] if name in current.columns else pd.Series(np.nan, index=current.index, dtype=object)
        kind: Kind = "categorical" if name in as_categorical else feature_kind(ref)
        rows.append(_one_feature(name, ref, cur, group_of(name), kind, thresholds))
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    return report.astype({"drifted": bool, "n_reference": "int64", "n_current": "int64"})


def prediction_drift(
    reference_scores: pd.DataFrame | pd.Series | np.ndarray,
    current_scores: pd.DataFrame | pd.Series | np.ndarray,
    thresholds: DriftThresholds = DEFAULT_DRIFT_THRESHOLDS,
    *,
    name: str = "prediction",
) -> pd.DataFrame:
    """Drift of model outputs (ranker scores, duration p50, ...), one row per output, group ``PREDICTION_GROUP``.

    Frames are compared column by column (the reference's columns); a Series or array is one output named
    by its Series name or ``name``. Thresholds for outputs: ``thresholds.groups[PREDICTION_GROUP]``.
    """
    reference, current = _outputs(reference_scores, name), _outputs(current_scores, name)
    if isinstance(reference_scores, pd.DataFrame) is not isinstance(current_scores, pd.DataFrame):
        current.columns = reference.columns[: len(current.columns)]
    return feature_drift(reference, current, thresholds, features=list(reference.columns),
                         group_of=lambda _: PREDICTION_GROUP)


def _outputs(scores: pd.DataFrame | pd.Series | np.ndarray, name: str) -> pd.DataFrame:
    if isinstance(scores, pd.DataFrame):
        return scores.reset_index(drop=True)
    if isinstance(scores, pd.Series):
        return scores.reset_index(drop=True).to_frame(name if scores.name is None else str(scores.name))
    return pd.DataFrame({name: np.asarray(scores).ravel()})


def drifted_count(report: pd.DataFrame) -> int:
    """Features a ``feature_drift`` report marks drifted: one day's entry of the retraining rule's history."""
    return int(report["drifted"].sum())


# --------------------------------------------------------------------------- the N-features-K-days rule


@dataclass(frozen=True)
class DriftRuleState:
    """The rule "at least ``min_features`` drifted features on each of ``min_days`` consecutive days", as of
    the history's last day.

    ``since_day`` is the day the rule began firing (the ``min_days``-th consecutive drifted day; None when it
    does not fire); ``streak_start``/``streak_days`` describe the run of drifted days ending on ``as_of``.
    """

    fires: bool
    since_day: date | None
    streak_start: date | None
    streak_days: int
    as_of: date | None


def drift_rule_state(history: Mapping[date, int], *, min_features: int, min_days: int) -> DriftRuleState:
    """Evaluate the rule on a per-day history of drifted-feature counts (day -> count, any order).

    A day counts as drifted when its count is at least ``min_features``. Days must follow each other: a day
    missing from the history (the check did not run) breaks the run like a clean day, so the rule fires on
    evidence only. It fires exactly on the ``min_days``-th consecutive drifted day and stops on a clean one.
    """
    if min_features < 1 or min_days < 1:
        raise ValueError("min_features and min_days must be at least 1")
    if not history:
        return DriftRuleState(False, None, None, 0, None)
    days = sorted(history)
    as_of = days[-1]
    streak = 0
    expected = as_of
    for day in reversed(days):
        if day != expected or history[day] < min_features:
            break
        streak += 1
        expected = day - timedelta(days=1)
    if streak == 0:
        return DriftRuleState(False, None, None, 0, as_of)
    start = as_of - timedelta(days=streak - 1)
    fires = streak >= min_days
    since = start + timedelta(days=min_days - 1) if fires else None
    return DriftRuleState(fires, since, start, streak, as_of)
