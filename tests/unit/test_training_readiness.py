"""When a training window is ready: the lake committed through its end, each day's features built from it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from maestro_ml import storage
from maestro_ml.features.offline import mark_built
from maestro_ml.features.steps import features_missing, training_window
from maestro_ml.lake import manifest_uri
from maestro_ml.settings import Settings

FIRST = datetime(2026, 11, 2, 10, tzinfo=UTC)  # the lake's first hour: mid-day, as under `make up`
WINDOW = training_window(end="2026-11-05", train_days=2, valid_days=1, test_days=1)  # 2026-11-01 .. 11-05


def commit_through(settings: Settings, last: datetime) -> None:
    hour = FIRST
    while hour <= last:
        storage.write_json_atomic(manifest_uri(settings.lake_uri, hour), {"hour": hour.isoformat()})
        hour += timedelta(hours=1)


def days(*numbers: int) -> list[date]:
    return [date(2026, 11, n) for n in numbers]


def test_a_window_waits_until_the_lake_is_committed_through_its_last_hour(settings: Settings) -> None:
    assert "no hour yet" in (features_missing(WINDOW, settings) or "")
    commit_through(settings, datetime(2026, 11, 4, 22, tzinfo=UTC))
    assert "committed through 2026-11-04T22:00:00+00:00" in (features_missing(WINDOW, settings) or "")


def test_a_window_waits_for_a_day_built_before_its_last_hours_were_ingested(settings: Settings) -> None:
    last = datetime(2026, 11, 4, 23, tzinfo=UTC)
    commit_through(settings, last)
    mark_built(settings.features_uri, days(2, 3), last)
    assert features_missing(WINDOW, settings) == "the features of 2026-11-04 are not built yet"
    mark_built(settings.features_uri, days(4), datetime(2026, 11, 4, 20, tzinfo=UTC))
    assert "built from the lake through 2026-11-04T20:00" in (features_missing(WINDOW, settings) or "")
    mark_built(settings.features_uri, days(4), last)
    # Days before the lake's first hour (11-01) have no data and need no build.
    assert features_missing(WINDOW, settings) is None
