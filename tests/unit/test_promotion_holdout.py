"""Which days a promotion's holdout covers: the newest complete days after the training windows, and for
the duration model only days whose tasks had time to finish (a censored holdout holds the quick ones only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from maestro_ml.promotion import steps
from maestro_ml.settings import Settings

NEWEST = datetime(2026, 11, 15, 5, tzinfo=UTC)  # the newest committed hour: 05:00-06:00 on the 15th


@pytest.fixture(autouse=True)
def lake_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(steps, "committed_hours", lambda uri: [NEWEST - timedelta(hours=1), NEWEST])


def test_the_holdout_is_the_newest_complete_days(settings: Settings) -> None:
    assert steps.holdout_window(None, 2, settings) == {"start": "2026-11-13T00:00:00+00:00",
                                                       "end": "2026-11-15T00:00:00+00:00"}


def test_the_holdout_starts_after_the_training_windows(settings: Settings) -> None:
    window = steps.holdout_window(datetime(2026, 11, 14, tzinfo=UTC), 2, settings)
    assert window["start"] == "2026-11-14T00:00:00+00:00"


def test_a_maturity_ends_the_holdout_that_long_before_the_newest_data(settings: Settings) -> None:
    window = steps.holdout_window(None, 2, settings, maturity=timedelta(hours=48))
    assert window == {"start": "2026-11-11T00:00:00+00:00", "end": "2026-11-13T00:00:00+00:00"}


def test_without_a_matured_day_after_training_the_decision_waits(settings: Settings) -> None:
    with pytest.raises(steps.NoFairHoldout, match="48 hours before the newest data"):
        steps.holdout_window(datetime(2026, 11, 13, tzinfo=UTC), 2, settings, maturity=timedelta(hours=48))
