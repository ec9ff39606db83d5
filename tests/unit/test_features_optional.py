"""Optional fields degrade features explicitly: a null plus an ``*_known`` flag, never a made-up value
(``maestro_ml.features.compute``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from tests.ingestion_support import ev, ts, write_landing

from maestro_ml.contracts.features import TASK_SKILL_FEATURES, USER_SKILL_FEATURES, VIEWS
from maestro_ml.features.compute import compute_features, load_inputs
from maestro_ml.features.offline import to_arrow
from maestro_ml.ingestion import ingest_hour
from maestro_ml.settings import Settings

HOUR = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return HOUR + timedelta(minutes=minutes)


def _bare(event: dict[str, Any], *drop: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in drop}


def _features(settings: Settings) -> dict[str, pd.DataFrame]:
    events = [
        _bare(ev("user_joined", at=_at(1), user_id="u_bare", team_id="team_01"),
              "seniority", "weekly_capacity_hours", "skills"),
        ev("user_joined", at=_at(2), user_id="u_full", team_id="team_01"),
        _bare(ev("project_created", at=_at(3), project_id="p_01", team_id="team_01"), "deadline", "required_skills"),
        _bare(ev("task_created", at=_at(10), task_id="t_bare", project_id="p_01"),
              "estimated_hours", "due_at", "required_skills"),
        ev("task_created", at=_at(11), task_id="t_full", project_id="p_01", estimated_hours=6.0,
           due_at=ts(HOUR + timedelta(days=3))),
        _bare(ev("task_assigned", at=_at(20), task_id="t_bare", assignee_id="u_bare"), "actor_id"),
        ev("task_assigned", at=_at(21), task_id="t_full", assignee_id="u_bare"),
        _bare(ev("task_completed", at=_at(50), task_id="t_bare"), "assignee_id"),
    ]
    write_landing(settings, "part-0000.jsonl.gz", events, hour=HOUR)
    manifest = ingest_hour(HOUR, settings)
    assert (manifest["rows_quarantined"], manifest["rows_valid"]) == (0, len(events)), "optional fields are optional"
    return compute_features(load_inputs(settings.lake_uri, HOUR.replace(hour=0), HOUR + timedelta(days=1)))


def test_missing_optional_fields_give_nulls_and_known_flags_never_made_up_values(settings: Settings) -> None:
    features = _features(settings)

    profile = features["user_profile_features"].groupby("user_id").last()
    bare, full = profile.loc["u_bare"], profile.loc["u_full"]
    assert np.isnan(bare["seniority"]) and np.isnan(bare["weekly_capacity_hours"])
    assert bare[list(USER_SKILL_FEATURES)].isna().all(), "no skill profile is not 'no skill'"
    assert (bare["seniority_known"], bare["capacity_known"], bare["skills_known"]) == (0, 0, 0)
    assert (full["seniority_known"], full["capacity_known"], full["skills_known"]) == (1, 1, 1)

    tasks = features["task_features"].groupby("task_id").last()
    t = tasks.loc["t_bare"]
    assert np.isnan(t["estimated_hours"]) and np.isnan(t["due_at_unix"]) and np.isnan(t["due_in_hours"])
    assert t[list(TASK_SKILL_FEATURES)].isna().all()
    assert (t["estimate_known"], t["due_known"], t["required_skills_known"]) == (0, 0, 0)
    assert (tasks.loc["t_full", "estimate_known"], tasks.loc["t_full", "due_known"]) == (1, 1)

    project = features["project_features"].iloc[-1]
    assert np.isnan(project["project_deadline_in_days"]) and project["project_deadline_known"] == 0

    activity = features["user_activity_features"]
    bare_activity = activity[activity["user_id"] == "u_bare"].set_index("event_timestamp")
    both_open = bare_activity.loc[pd.Timestamp(_at(21))]
    assert both_open["open_tasks"] == 2 and both_open["open_unestimated_tasks"] == 1
    assert both_open["open_estimated_hours"] == 6.0, "the sum counts the estimates that exist"
    after = bare_activity.loc[pd.Timestamp(_at(50))]
    assert after["completed_90d"] == 1 and after["open_unestimated_tasks"] == 0
    assert after["on_time_rate_90d"] == 0.5, "without a due date a completion is neither on time nor late: the prior"

    outcomes = features["historical_task_assignments"].set_index("task_id")
    done = outcomes.loc["t_bare"]
    assert done["completed"] == 1 and done["duration_hours"] == 0.5, "a task without an estimate is still a label"
    assert np.isnan(done["completed_on_time"]) and np.isnan(done["slip_ratio"])


def test_feature_rows_with_nulls_fit_the_offline_schema(settings: Settings) -> None:
    for name, frame in _features(settings).items():
        table = to_arrow(VIEWS[name], frame)
        assert table.num_rows == len(frame)
        for feature in VIEWS[name].features:
            if not feature.nullable:
                assert table[feature.name].null_count == 0, (name, feature.name)
