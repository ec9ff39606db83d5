"""Drift thresholds calibrated on the training days: a feature that moves every day on its own is judged
against how much it moved within training; a steady feature keeps Evidently's default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from maestro_ml.monitoring.calibration import calibrated_thresholds
from maestro_ml.monitoring.drift import DEFAULT_THRESHOLDS, feature_drift

ROWS_PER_DAY = 1_500


def _days(rng: np.random.Generator, first: int, last: int, *, trend_step: float = 0.3,
          steady_shift: float = 0.0) -> pd.DataFrame:
    frames = []
    for day in range(first, last):
        frames.append(pd.DataFrame({
            "assigned_at": pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(days=day),
            "steady": rng.normal(steady_shift, 1.0, ROWS_PER_DAY),
            "trend": rng.normal(day * trend_step, 1.0, ROWS_PER_DAY),
        }))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(3)


def test_a_feature_that_moves_every_day_is_not_drifted_by_its_next_ordinary_day(rng: np.random.Generator) -> None:
    reference = _days(rng, 0, 7)
    next_day = _days(rng, 7, 8)
    plain = feature_drift(reference, next_day, features=["steady", "trend"]).set_index("feature")
    assert plain.loc["trend", "drifted"], "Evidently's default flags an ordinary day of a trending feature"
    thresholds, group_of = calibrated_thresholds(reference, ["steady", "trend"])
    calibrated = feature_drift(reference, next_day, thresholds, features=["steady", "trend"],
                               group_of=group_of).set_index("feature")
    assert not calibrated.loc["trend", "drifted"] and not calibrated.loc["steady", "drifted"]
    assert calibrated.loc["trend", "threshold"] > DEFAULT_THRESHOLDS["wasserstein"]


def test_a_jump_far_beyond_the_daily_movement_still_drifts(rng: np.random.Generator) -> None:
    reference = _days(rng, 0, 7)
    jumped = _days(rng, 7, 8, trend_step=1.5, steady_shift=1.0)
    thresholds, group_of = calibrated_thresholds(reference, ["steady", "trend"])
    report = feature_drift(reference, jumped, thresholds, features=["steady", "trend"],
                           group_of=group_of).set_index("feature")
    assert report.loc["steady", "drifted"] and report.loc["trend", "drifted"]
    assert report.loc["steady", "threshold"] == pytest.approx(DEFAULT_THRESHOLDS["wasserstein"], rel=0.5)


def test_without_two_usable_days_the_defaults_stay(rng: np.random.Generator) -> None:
    reference = _days(rng, 0, 1)
    thresholds, group_of = calibrated_thresholds(reference, ["steady", "trend"])
    assert dict(thresholds.groups) == {} and group_of("trend") != "trend"
