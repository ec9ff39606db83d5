"""Workload is state, not a window: a day's features computed alone equal the same day of a full rebuild,
however long ago its open work was assigned (``maestro_ml.features.compute``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from tests.ingestion_support import ev, ts, write_landing

from maestro_ml.contracts.features import TIMESTAMP_COLUMN
from maestro_ml.features.compute import compute_features, load_inputs
from maestro_ml.ingestion import ingest_hour
from maestro_ml.settings import Settings

DAY = datetime(2026, 11, 2, tzinfo=UTC)
LONG_AGO = DAY - timedelta(days=400)


def _land(settings: Settings, hour: datetime, events: list[dict[str, Any]]) -> None:
    write_landing(settings, f"part-{hour:%Y%m%dT%H}.jsonl.gz", events, hour=hour)
    ingest_hour(hour, settings)


def _at(hour: datetime, minutes: int = 5) -> datetime:
    return hour + timedelta(minutes=minutes)


def test_a_task_open_for_400_days_counts_in_a_day_computed_alone_as_in_a_full_rebuild(settings: Settings) -> None:
    h0 = LONG_AGO.replace(hour=9)
    task = {"project_id": "p_01", "due_at": ts(LONG_AGO + timedelta(days=30)), "estimated_hours": 8.0}
    _land(settings, h0, [
        ev("user_joined", at=_at(h0, 1), user_id="u_a", team_id="team_01"),
        ev("user_joined", at=_at(h0, 2), user_id="u_b", team_id="team_01"),
        ev("project_created", at=_at(h0, 3), project_id="p_01", team_id="team_01"),
        ev("task_created", at=_at(h0, 10), task_id="t_open", **task),  # open ever since
        ev("task_assigned", at=_at(h0, 20), task_id="t_open", assignee_id="u_a"),
        ev("task_created", at=_at(h0, 30), task_id="t_back", **task),  # done, then reopened near the day
        ev("task_assigned", at=_at(h0, 40), task_id="t_back", assignee_id="u_b"),
        ev("task_status_changed", at=_at(h0, 50), task_id="t_back", from_status="todo", to_status="blocked"),
    ])
    h1 = h0 + timedelta(days=10)
    _land(settings, h1, [
        ev("task_completed", at=_at(h1), task_id="t_back", assignee_id="u_b"),
        ev("time_logged", at=_at(h1, 9), task_id="t_open", user_id="u_a", hours=3.0),
    ])
    h2 = DAY - timedelta(days=1) + timedelta(hours=14)
    _land(settings, h2, [ev("task_reopened", at=_at(h2), task_id="t_back")])
    h3 = DAY + timedelta(hours=10)
    _land(settings, h3, [
        ev("task_created", at=_at(h3), task_id="t_new", **task),  # due before it was created: real exports have that
        ev("task_assigned", at=_at(h3, 15), task_id="t_new", assignee_id="u_b"),
        ev("time_logged", at=_at(h3, 30), task_id="t_open", user_id="u_a", hours=1.5),
    ])

    end = DAY + timedelta(days=1)
    alone = compute_features(load_inputs(settings.lake_uri, DAY, end))
    full = compute_features(load_inputs(settings.lake_uri, LONG_AGO.replace(hour=0), end))
    for name, frame in full.items():
        stamps = frame[TIMESTAMP_COLUMN]
        expected = frame[(stamps >= DAY) & (stamps < end)].reset_index(drop=True)
        pd.testing.assert_frame_equal(alone[name], expected, obj=name)

    activity = alone["user_activity_features"].set_index("user_id")
    assert activity.loc["u_a", "open_tasks"].min() == 1, "the 400-day-old assignment is u_a's open work"
    assert activity.loc["u_b", "open_tasks"].max() == 2, "the reopened task is u_b's again, beside the new one"
    tasks = alone["task_features"].set_index("task_id")
    assert tasks.loc["t_open", "hours_logged"].max() == 4.5, "hours logged 390 days ago still count"


def test_out_of_order_histories_give_a_day_computed_alone_the_full_rebuilds_values(settings: Settings) -> None:
    """Real exports hold a task whose creation is recorded after its assignment, and a task done long ago
    whose due date falls inside the day: neither may change a day computed alone."""
    h0 = (DAY - timedelta(days=120)).replace(hour=9)
    _land(settings, h0, [
        ev("user_joined", at=_at(h0, 1), user_id="u_a", team_id="team_01"),
        ev("project_created", at=_at(h0, 2), project_id="p_01", team_id="team_01"),
        ev("task_created", at=_at(h0, 5), task_id="t_done", project_id="p_01", estimated_hours=3.0,
           due_at=ts(DAY + timedelta(hours=6))),  # done months ago, due inside the day
        ev("task_assigned", at=_at(h0, 6), task_id="t_done", assignee_id="u_a"),
        ev("task_completed", at=_at(h0, 50), task_id="t_done", assignee_id="u_a"),
        ev("task_assigned", at=_at(h0, 20), task_id="t_late", assignee_id="u_a"),  # created only later
    ])
    h1 = DAY - timedelta(days=30) + timedelta(hours=9)
    _land(settings, h1, [ev("task_created", at=_at(h1), task_id="t_late", project_id="p_01", estimated_hours=2.0)])

    end = DAY + timedelta(days=1)
    alone = compute_features(load_inputs(settings.lake_uri, DAY, end))
    full = compute_features(load_inputs(settings.lake_uri, h0.replace(hour=0), end))
    for name, frame in full.items():
        stamps = frame[TIMESTAMP_COLUMN]
        expected = frame[(stamps >= DAY) & (stamps < end)].reset_index(drop=True)
        pd.testing.assert_frame_equal(alone[name], expected, obj=name)
    project = alone["project_features"]
    assert project["project_open_tasks"].max() == 1, "t_late is open; t_done's due date reopens nothing"
