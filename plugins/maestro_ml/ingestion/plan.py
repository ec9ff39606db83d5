"""Which hours one ``ingest_events`` run takes, and which days its features call for.

Kept apart from ``steps`` so the DAG's ``plan_hours`` task imports neither pandas nor Great
Expectations: it is a process of its own, and those imports were most of its start-up time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from maestro_ml.ingestion.layout import list_hour_files
from maestro_ml.lake import as_hour, committed_hours
from maestro_ml.settings import Settings, get_settings


def range_hours(
    start: datetime | str, end: datetime | str, settings: Settings | None = None, *, now: datetime | None = None
) -> list[datetime]:
    """The hours ``[start, end)`` of one range run, oldest first.

    Raises ``ValueError`` (a usage error: no retry fixes it) for an empty or inverted range, one that
    reaches into hours that have not closed yet, or one longer than ``settings.max_range_hours``.
    """
    settings = settings or get_settings()
    lo, hi = as_hour(start), as_hour(end)
    if hi <= lo:
        raise ValueError(f"empty range: start {lo.isoformat()} is not before end {hi.isoformat()}")
    closed = as_hour((now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0))
    if hi > closed:
        raise ValueError(f"the range ends at {hi.isoformat()}, in the future: the newest closed hour ends at "
                         f"{closed.isoformat()}")
    count = int((hi - lo) / timedelta(hours=1))
    if count > settings.max_range_hours:
        raise ValueError(f"{count} hours is more than one run takes ({settings.max_range_hours}, "
                         "MAESTRO_MAX_RANGE_HOURS): split the range")
    return [lo + timedelta(hours=i) for i in range(count)]


def plan_hours(
    settings: Settings | None = None,
    *,
    partition: str | None = None,
    start: str | None = None,
    end: str | None = None,
    interval_start: datetime | str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Which hours one ingest run takes: ``{"hours": [...with landing files], "without_files": [...]}``.

    * ``partition``: that one hour (a re-ingest).
    * ``start``/``end``: every hour of ``[start, end)`` (a backfill; see ``range_hours``).
    * Otherwise (a scheduled run of the hour ``interval_start``): that hour and every hour after the
      newest committed one, so a platform that is behind catches up in one run, and an hour whose
      files landed late is taken by the next run. At most ``settings.max_range_hours``, never
      before ``settings.start_date``.

    Hours without landing files are left out and listed: late data or a gap, they are not committed.
    """
    settings = settings or get_settings()
    if partition:
        wanted = [as_hour(partition)]
    elif start or end:
        if not (start and end):
            raise ValueError("give both start and end of the range, or neither")
        wanted = range_hours(start, end, settings, now=now)
    else:
        if interval_start is None:
            raise ValueError("a scheduled run needs its data interval start")
        hour = as_hour(interval_start)
        committed = [h for h in committed_hours(settings.lake_uri) if h < hour]
        first = max(committed[-1] + timedelta(hours=1) if committed else settings.start_date,
                    hour - timedelta(hours=settings.max_range_hours - 1), settings.start_date)
        wanted = [first + timedelta(hours=i) for i in range(int((hour - first) / timedelta(hours=1)))] + [hour]
    with_files = [h for h in wanted if list_hour_files(settings.landing_uri, h)]
    return {"hours": [h.isoformat() for h in with_files],
            "without_files": [h.isoformat() for h in wanted if h not in with_files]}


def closed_days(hours: Iterable[str | datetime], newest: datetime | str) -> list[str]:
    """The days whose features these committed hours call for: complete days only.

    A day is complete once its 23:00 hour is committed, or once a later day has begun (``newest``,
    the lake's newest committed hour): so the steady hourly run asks for a build once a day, while
    a catch-up, a backfill or a re-ingest of an earlier hour asks for the days it changed.
    """
    today = as_hour(newest).date()
    return sorted({h.date().isoformat() for h in map(as_hour, hours) if h.date() < today or h.hour == 23})
