"""The open tasks at the scoring time, and their candidates by the one candidate rule.

The lake's state tables hold the *current* state of every task; the scoring time is therefore the end of
the newest committed hour (``scoring_time``), never earlier: a past hour's open set is not kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from maestro_ml import lake
from maestro_ml.features.compute import TS_DTYPE, to_frame, utc_timestamp
from maestro_ml.features.training_sets import assignment_history, eligible_candidates, managers_since

DONE = "done"


class NothingToScore(LookupError):
    """The lake has no committed hour yet, or the run's hour is older than the lake's state."""


def scoring_time(lake_uri: str, run_end: datetime | None = None) -> datetime:
    """The end of the newest committed hour, capped at ``run_end`` (the run's data interval end).

    A run for an hour the lake has already moved past (a backfill, a late re-run) cannot see that hour's open
    tasks any more (the state is current), so it raises ``NothingToScore`` instead of scoring the wrong set.
    """
    hours = lake.committed_hours(lake_uri)
    if not hours:
        raise NothingToScore("the lake has no committed hour yet: nothing is open")
    newest_end = utc_timestamp(max(hours)) + pd.Timedelta(hours=1)
    if run_end is None:
        return newest_end.to_pydatetime()
    end = utc_timestamp(run_end)
    if end + pd.Timedelta(hours=1) < newest_end:
        raise NothingToScore(f"the lake's state is at {newest_end.isoformat()}, past this run's {end.isoformat()}: "
                             "the open tasks of a past hour are not kept; the newest hour's run scores them")
    return min(newest_end, end).to_pydatetime()


def open_tasks(lake_uri: str, at: datetime) -> pd.DataFrame:
    """Every task created by ``at`` and not done: ``task_id, project_id, reporter_id, team_id, assignee_id,
    assigned`` (1 with an assignee), one row per task, sorted by task."""
    tasks = to_frame(lake.read_state(lake_uri, "tasks").select(
        ["task_id", "project_id", "reporter_id", "status", "assignee_id", "created_at"]))
    projects = to_frame(lake.read_state(lake_uri, "projects").select(["project_id", "team_id"]))
    at_ts = utc_timestamp(at)
    created = tasks["created_at"].isna() | (tasks["created_at"] <= at_ts)
    tasks = tasks[created & (tasks["status"].fillna("todo") != DONE)]
    tasks = tasks.merge(projects, on="project_id", how="left")
    tasks["assigned"] = tasks["assignee_id"].notna().astype("int64")
    columns = ["task_id", "project_id", "reporter_id", "team_id", "assignee_id", "assigned"]
    return tasks[columns].sort_values("task_id", kind="mergesort").reset_index(drop=True)


def candidate_pairs(lake_uri: str, unassigned: pd.DataFrame, at: datetime, *,
                    manager_min_assignments: int = 1) -> pd.DataFrame:
    """One row per (open unassigned task, eligible candidate) at ``at``, as a training set defines them:
    ``task_id, project_id, reporter_id, user_id``, sorted by task then user."""
    at_ts = utc_timestamp(at)
    history = assignment_history(lake_uri, at_ts, at_ts + pd.Timedelta(timedelta(microseconds=1)))
    managers = managers_since(history, manager_min_assignments)
    users = to_frame(lake.read_state(lake_uri, "users").select(["user_id", "team_id", "joined_at", "left_at"]))
    requests = unassigned[["task_id", "project_id", "reporter_id", "team_id"]].assign(
        occurred_at=pd.Series(at_ts, index=unassigned.index).astype(TS_DTYPE))
    pairs = eligible_candidates(requests, users, managers)
    return pairs[["task_id", "project_id", "reporter_id", "user_id"]].sort_values(
        ["task_id", "user_id"], kind="mergesort").reset_index(drop=True)
