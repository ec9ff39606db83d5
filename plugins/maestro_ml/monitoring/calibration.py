"""Drift thresholds calibrated on the champion's own training data, per feature.

Evidently's default thresholds (``drift.DEFAULT_THRESHOLDS``) call a feature drifted when its distance passes a
fixed number. On a work tracker many features move every day on their own: all-time counts and tenure grow,
rolling windows fill, backlogs swell and shrink. At thousands of rows a day, the defaults flag them daily, and
a rule on the count of drifted features fires on ordinary days (``benchmarks/README.md``, monitoring).

Here each feature's threshold is set from how far a single day of the training data already lies from the
rest of it: each day of the reference is compared with the other days by the same statistic, and the
threshold is ``margin`` times the largest such distance (for a p-value statistic: the smallest p-value divided
by ``margin``), and never tighter than the default. A feature drifts when the monitored day
is further from the training data than any training day was from its neighbours, by the margin.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import pandas as pd

from maestro_ml.monitoring.drift import (
    DEFAULT_DRIFT_THRESHOLDS,
    P_VALUES,
    DriftThresholds,
    feature_drift,
    feature_group,
)

DAY_COLUMN = "assigned_at"
# How much further than the furthest training day a monitored day must be.
MARGIN = 1.5
# A training day with fewer rows than this is too noisy to set a threshold with.
MIN_DAY_ROWS = 200


def calibrated_thresholds(
    reference: pd.DataFrame,
    features: Iterable[str],
    base: DriftThresholds = DEFAULT_DRIFT_THRESHOLDS,
    *,
    day_column: str = DAY_COLUMN,
    margin: float = MARGIN,
    min_day_rows: int = MIN_DAY_ROWS,
) -> tuple[DriftThresholds, Callable[[str], str]]:
    """Per-feature ``DriftThresholds`` and the ``group_of`` that names each feature its own group.

    With fewer than two usable days in the reference, ``base`` and ``feature_group`` are returned unchanged.
    """
    names = list(features)
    if day_column not in reference.columns:
        return base, feature_group
    days = pd.to_datetime(reference[day_column], utc=True).dt.floor("D")
    counts = days.value_counts()
    usable = [day for day, n in counts.items() if n >= min_day_rows]
    if len(usable) < 2:
        return base, feature_group
    furthest: dict[str, tuple[str, float]] = {}
    for day in usable:
        mask = (days == day).to_numpy()
        report = feature_drift(reference[~mask], reference[mask], base, features=names)
        for row in report.itertuples(index=False):
            if not math.isfinite(row.value):
                continue
            seen = furthest.get(row.feature)
            worse = seen is None or (row.value < seen[1] if row.statistic in P_VALUES else row.value > seen[1])
            if worse:
                furthest[row.feature] = (row.statistic, float(row.value))
    groups: dict[str, tuple[str, float]] = {}
    for name, (statistic, value) in furthest.items():
        if feature_group(name) in base.ignored_groups or statistic == "psi":
            continue
        default = base.defaults[statistic]
        if statistic in P_VALUES:
            groups[name] = (statistic, min(default, value / margin))
        else:
            groups[name] = (statistic, max(default, value * margin))

    def group_of(name: str) -> str:
        return name if name in groups else feature_group(name)

    thresholds = DriftThresholds(groups=groups, defaults=base.defaults,  # type: ignore[arg-type]
                                 ignored_groups=base.ignored_groups, small_sample_rows=base.small_sample_rows,
                                 psi_bins=base.psi_bins)
    return thresholds, group_of
