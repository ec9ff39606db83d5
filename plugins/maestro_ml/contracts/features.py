"""The feature tables' contract: one place that names every view, its keys, columns, types, ranges and TTL.

``maestro_ml.features.compute`` produces exactly these columns, the Feast repo in
``include/feature_repo`` builds its ``Field``s from them, and the Great Expectations gate checks
the ranges. Feast types are named by string here so this module imports neither Feast nor GX.

Row semantics (all views): a row with ``event_timestamp = t`` holds the entity's values *as of t*,
computed from events with ``occurred_at <= t`` only. Rows are written at every event that changes
the entity (exact event time) plus a daily refresh at 00:00 UTC for every live entity, so that
rolling windows, ages and tenures are never more than a day old and TTLs never expire a live
entity. ``project_features`` is hourly (an aggregate does not need event precision).

Feature names are unique across views (project features start with ``project_``), so a feature
service reads them without view prefixes: Feast 0.67 drops python-mode on-demand outputs from
online responses asked for with ``full_feature_names=True``, and models see one name per feature
in training and serving.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pyarrow as pa

from maestro_ml.contracts.events import SKILL_NAMES, TS

TIMESTAMP_COLUMN = "event_timestamp"
OWNER = "ml-platform"
# Rolling windows reach back this far, so a build reads this much history before its window.
LOOKBACK = timedelta(days=90)
REFRESH_EVERY = timedelta(days=1)
# Two refresh periods: a live entity always has a row younger than its TTL.
DEFAULT_TTL = timedelta(days=2)
# Smoothing of rates: (successes + PRIOR_RATE * PRIOR_WEIGHT) / (trials + PRIOR_WEIGHT), so a rate
# over few tasks stays near the prior instead of jumping to 0 or 1 (and is never null).
PRIOR_RATE = 0.5
PRIOR_WEIGHT = 2.0

# Skill vectors are one Float32 feature per skill, not one list feature: Feast's file offline store
# (dask) fingerprints object columns by pickling every cell, which made a point-in-time join of
# list features 10x slower than the same join on scalars.
USER_SKILL_FEATURES = tuple(f"skill_{name}" for name in SKILL_NAMES)
TASK_SKILL_FEATURES = tuple(f"requires_{name}" for name in SKILL_NAMES)

# Feast type names (feast.types) -> pandas dtype the computed frame carries.
PANDAS_DTYPES = {
    "Int64": "int64",
    "Float32": "float32",
    "Float64": "float64",
    "String": "object",
    "Array(Float32)": "object",
    "Array(Float64)": "object",
    "Array(String)": "object",
}


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # a key of PANDAS_DTYPES
    description: str
    min_value: float | None = None
    max_value: float | None = None
    nullable: bool = False
    values: tuple[str, ...] | None = None  # accepted values of a string feature


@dataclass(frozen=True)
class View:
    name: str
    join_keys: tuple[str, ...]
    description: str
    features: tuple[Feature, ...]
    ttl: timedelta = DEFAULT_TTL
    cadence: str = "event"  # "event": a row per change; "hourly": a row per active hour
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [*self.join_keys, TIMESTAMP_COLUMN, *(f.name for f in self.features)]

    def feature(self, name: str) -> Feature:
        return next(f for f in self.features if f.name == name)


def _known(name: str, what: str) -> Feature:
    return Feature(name, "Int64", f"1 when {what} is recorded: optional fields are null when missing, never guessed.",
                   0, 1)


def _rate(name: str, what: str) -> Feature:
    return Feature(name, "Float32", f"{what}; smoothed toward {PRIOR_RATE} with weight {PRIOR_WEIGHT}", 0.0, 1.0)


USER_PROFILE = View(
    name="user_profile_features",
    join_keys=("user_id",),
    description="Who a user is: team, seniority, capacity, tenure and skill vector.",
    features=(
        Feature("team_id", "String", "Team the user belongs to."),
        Feature("seniority", "Int64", "1 (junior) to 5 (principal); null when not recorded.", 1, 5, nullable=True),
        Feature("weekly_capacity_hours", "Float32", "Hours a week the user can work; null when not recorded.", 0.0,
                168.0, nullable=True),
        Feature("tenure_days", "Float32", "Days since the user joined.", 0.0, None),
        *(Feature(f"skill_{name}", "Float32", f"Proficiency in {name}, 0 to 1; null without a skill profile.", 0.0,
                  1.0, nullable=True) for name in SKILL_NAMES),
        Feature("is_active", "Int64", "1 while the user has joined and not left.", 0, 1),
        _known("seniority_known", "the user's seniority"),
        _known("capacity_known", "the user's weekly capacity"),
        _known("skills_known", "the user's skill profile"),
    ),
)

USER_ACTIVITY = View(
    name="user_activity_features",
    join_keys=("user_id",),
    description="What a user is doing and how they delivered lately: workload, hours logged, on-time record.",
    features=(
        Feature("open_tasks", "Int64", "Tasks assigned to the user and not completed.", 0, None),
        Feature("open_estimated_hours", "Float32", "Sum of the estimates of the user's open tasks that have one.",
                0.0, None),
        Feature("hours_logged_7d", "Float32", "Hours the user logged in the last 7 days.", 0.0, None),
        Feature("hours_logged_28d", "Float32", "Hours the user logged in the last 28 days.", 0.0, None),
        Feature("completed_28d", "Int64", "Tasks the user completed in the last 28 days.", 0, None),
        Feature("completed_90d", "Int64", "Tasks the user completed in the last 90 days.", 0, None),
        _rate("on_time_rate_28d", "Share of the user's completions in 28 days (those with a due date) that met it"),
        _rate("on_time_rate_90d", "Share of the user's completions in 90 days (those with a due date) that met it"),
        Feature(
            "avg_slip_ratio_90d",
            "Float32",
            "Mean of (hours from assignment to completion) / estimate over the user's completions in 90 days; "
            "null without completions.",
            0.0,
            None,
            nullable=True,
        ),
        Feature("reassignments_90d", "Int64", "Tasks taken away from the user in the last 90 days.", 0, None),
        Feature("open_unestimated_tasks", "Int64", "Open tasks of the user without an estimate.", 0, None),
    ),
)

TASK = View(
    name="task_features",
    join_keys=("task_id",),
    description="What a task asks for and where it stands: priority, estimate, skills, age, due date, status.",
    features=(
        Feature("project_id", "String", "Project the task belongs to."),
        Feature("priority", "Int64", "1 (low) to 4 (critical).", 1, 4),
        Feature("estimated_hours", "Float32", "Estimate given at creation; null without one.", 0.0, None,
                nullable=True),
        *(
            Feature(f"requires_{name}", "Float32", f"Weight of {name} in what the task needs, 0 to 1; null when the "
                    "task names no skills.", 0.0, 1.0, nullable=True)
            for name in SKILL_NAMES
        ),
        Feature("created_at_unix", "Int64", "Creation time, seconds since the epoch (UTC).", 0, None),
        Feature("due_at_unix", "Int64", "Due time, seconds since the epoch (UTC); null without a due date.", 0, None,
                nullable=True),
        Feature("age_hours", "Float32", "Hours since creation, as of the row.", 0.0, None),
        Feature("due_in_hours", "Float32", "Hours until due, as of the row (negative when overdue); null without a "
                "due date.", nullable=True),
        Feature("has_parent", "Int64", "1 when the task is a subtask.", 0, 1),
        Feature("has_dependency", "Int64", "1 when the task depends on another task.", 0, 1),
        Feature("dependency_open", "Int64", "1 when the task it depends on is not done yet.", 0, 1),
        Feature(
            "status",
            "String",
            "Workflow status ('unknown' before the first status event in the lookback).",
            values=("todo", "in_progress", "blocked", "in_review", "done", "unknown"),
        ),
        Feature("is_assigned", "Int64", "1 when someone is assigned.", 0, 1),
        Feature("hours_logged", "Float32", "Hours logged on the task so far.", 0.0, None),
        Feature("times_reopened", "Int64", "How often the task was reopened.", 0, None),
        Feature("times_reassigned", "Int64", "How often the task moved to another assignee.", 0, None),
        _known("estimate_known", "the task's estimate"),
        _known("due_known", "the task's due date"),
        _known("required_skills_known", "the skills the task needs"),
    ),
)

PROJECT = View(
    name="project_features",
    join_keys=("project_id",),
    description="How a project is going: size, velocity, open and overdue work, risk proxies (hourly).",
    cadence="hourly",
    features=(
        Feature("project_team_id", "String", "Team that owns the project."),
        Feature("project_priority", "Int64", "1 (low) to 4 (critical).", 1, 4),
        Feature("project_deadline_in_days", "Float32", "Days until the project deadline (negative when past); null "
                "without a deadline.", nullable=True),
        Feature("project_size_tasks", "Int64", "Tasks created in the project so far.", 0, None),
        Feature("project_open_tasks", "Int64", "Tasks not completed.", 0, None),
        Feature("project_overdue_open_tasks", "Int64", "Open tasks past their due time.", 0, None),
        Feature("project_blocked_tasks", "Int64", "Open tasks in status 'blocked'.", 0, None),
        Feature("project_open_estimated_hours", "Float32", "Sum of the estimates of open tasks.", 0.0, None),
        Feature("project_velocity_7d", "Float32", "Tasks completed per day over the last 7 days.", 0.0, None),
        _rate("project_on_time_rate_28d", "Share of the project's completions in 28 days (those with a due date) that met it"),
        Feature("project_overdue_ratio", "Float32", "project_overdue_open_tasks / max(project_open_tasks, 1): a risk proxy.", 0.0, 1.0),
        Feature("project_reopen_rate_28d", "Float32", "Reopens / completions in 28 days, capped at 1: a risk proxy.", 0.0, 1.0),
        _known("project_deadline_known", "the project's deadline"),
    ),
)

ASSIGNMENTS = View(
    name="historical_task_assignments",
    join_keys=("task_id", "user_id"),
    description=(
        "The outcome of each (task, assignee) assignment, timestamped when the outcome is known "
        "(completion or reassignment): the label source of both models."
    ),
    features=(
        Feature("assigned_at_unix", "Int64", "When the assignment started, seconds since the epoch (UTC).", 0, None),
        Feature("completed", "Int64", "1 when this assignee completed the task.", 0, 1),
        Feature("completed_on_time", "Int64", "1 when completed by the due time; null when the task has no due "
                "date.", 0, 1, nullable=True),
        Feature(
            "duration_hours",
            "Float32",
            "Hours from assignment to completion; null when reassigned first.",
            0.0,
            None,
            nullable=True,
        ),
        Feature("reassigned", "Int64", "1 when the task moved to someone else before completion.", 0, 1),
        Feature(
            "slip_ratio", "Float32", "duration_hours / estimated_hours; null when reassigned.", 0.0, None, nullable=True
        ),
    ),
)

# --------------------------------------------------------------------------- history views (v2)
# Who worked on what, with whom and on which words: the signals real assignment runs on. They are
# state over all history, not a window (a component's long-time owner is its owner however quiet the
# last 90 days were), so these views are computed from every assignment and completion up to the row,
# written only when they change, and kept for HISTORY_TTL. Decayed counts are stored as of their row;
# the on-demand view ``pair_affinity_features`` decays them to the request time.
HISTORY_TTL = timedelta(days=3650)
AFFINITY_HALF_LIFE = timedelta(days=30)
# Title vectors: TF-IDF over word tokens, hashed with signs into this many dimensions (no vocabulary to
# fit or ship; the cosine of two hashed vectors estimates the TF-IDF cosine). The IDF of a task's words
# counts the titles created before it, so a vector never changes once written.
TITLE_DIMENSIONS = 256


def _decayed(name: str, what: str) -> Feature:
    half_life = AFFINITY_HALF_LIFE.days
    return Feature(name, "Float32", f"{what}, each weighted 0.5 ** (age / {half_life} d), as of the row.", 0.0, None)


USER_PROJECT = View(
    name="user_project_features",
    join_keys=("user_id", "project_id"),
    description="A user's history on one project (a tracker's component): assignments, completions, recency.",
    ttl=HISTORY_TTL,
    tags={"history": "all"},
    features=(
        Feature("up_assignments", "Int64", "Tasks of the project assigned to the user, all time.", 0, None),
        Feature("up_completions", "Int64", "Tasks of the project the user completed, all time.", 0, None),
        _decayed("up_assignments_decayed", "Tasks of the project assigned to the user"),
        Feature("up_last_active_unix", "Int64", "The user's last assignment or completion on the project (epoch s).",
                0, None),
    ),
)

PROJECT_ASSIGNMENTS = View(
    name="project_assignment_features",
    join_keys=("project_id",),
    description="How much assignment a project sees: the denominator of a user's share of it.",
    ttl=HISTORY_TTL,
    tags={"history": "all"},
    features=(
        Feature("project_assignments", "Int64", "Assignments of the project's tasks, all time.", 0, None),
        _decayed("project_assignments_decayed", "Assignments of the project's tasks"),
        Feature("project_last_assigned_unix", "Int64", "The project's last assignment (epoch s).", 0, None),
    ),
)

USER_REPORTER = View(
    name="user_reporter_features",
    join_keys=("user_id", "reporter_id"),
    description="A user's history with one reporter (who filed the task): tasks of theirs taken and completed.",
    ttl=HISTORY_TTL,
    tags={"history": "all"},
    features=(
        Feature("ur_assignments", "Int64", "Tasks filed by the reporter assigned to the user, all time.", 0, None),
        Feature("ur_completions", "Int64", "Tasks filed by the reporter the user completed, all time.", 0, None),
        _decayed("ur_assignments_decayed", "Tasks filed by the reporter assigned to the user"),
        Feature("ur_last_active_unix", "Int64", "The user's last assignment or completion of the reporter's tasks "
                "(epoch s).", 0, None),
    ),
)

TASK_TEXT = View(
    name="task_text_features",
    join_keys=("task_id",),
    description="What a task's title is about: its hashed TF-IDF vector, written once at creation.",
    ttl=HISTORY_TTL,
    tags={"history": "all"},
    features=(
        Feature("title_vector", "Array(Float32)", f"Unit-length TF-IDF of the title's words, hashed into "
                f"{TITLE_DIMENSIONS} signed dimensions (IDF over the titles created before); zeros without words."),
        Feature("title_words", "Int64", "Word tokens in the title.", 0, None),
    ),
)

USER_TEXT = View(
    name="user_text_features",
    join_keys=("user_id",),
    description="What a user's past tasks were about: the sum of the title vectors of every task assigned to them.",
    ttl=HISTORY_TTL,
    tags={"history": "all"},
    features=(
        Feature("title_profile", "Array(Float32)", "Unit-length sum of the title vectors of the tasks assigned to the "
                "user so far."),
        Feature("title_profile_tasks", "Int64", "Tasks in the profile.", 0, None),
    ),
)

HISTORY_VIEWS = (USER_PROJECT, PROJECT_ASSIGNMENTS, USER_REPORTER, TASK_TEXT, USER_TEXT)
VIEWS: dict[str, View] = {
    v.name: v for v in (USER_PROFILE, USER_ACTIVITY, TASK, PROJECT, ASSIGNMENTS, *HISTORY_VIEWS)
}

# Features a training row may lack by design, beyond the views' nullable ones: the history views have no row
# for a pair that never worked together, and these on-demand outputs are null when an optional field they
# need (a due date, an estimate, a capacity, skills) is not recorded or the pair has no history.
NULLABLE_ON_DEMAND = frozenset({
    "due_in_hours_now", "age_hours_now", "remaining_estimate_hours", "urgency_ratio", "is_overdue",
    "free_capacity_hours", "capacity_after_task_hours", "load_ratio", "skill_match",
    "up_days_since_active", "title_similarity",
})


def nullable_in_sets() -> frozenset[str]:
    """Feature columns a training set may leave null on any share of its rows."""
    history = {f.name for v in HISTORY_VIEWS for f in v.features}
    declared = {f.name for v in VIEWS.values() for f in v.features if f.nullable}
    return frozenset(history | declared | NULLABLE_ON_DEMAND)


# Online features an assignment or duration request reads: the feature services' contents, by view.
# The on-demand views (``task_urgency_features``, ``user_capacity_features``) are defined in the repo.
REQUEST_TIME_FIELD = "request_time_unix"

# The Arrow type of each Feast dtype the views use: the offline store's files and the GX gate share it.
_ARROW_TYPES = {
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "String": pa.string(),
    "Array(Float32)": pa.list_(pa.float32()),
    "Array(Float64)": pa.list_(pa.float64()),
    "Array(String)": pa.list_(pa.string()),
}


def arrow_schema(view: View) -> pa.Schema:
    keys = [pa.field(k, pa.string(), nullable=False) for k in view.join_keys]
    features = [pa.field(f.name, _ARROW_TYPES[f.dtype], nullable=f.nullable) for f in view.features]
    return pa.schema([*keys, pa.field(TIMESTAMP_COLUMN, TS, nullable=False), *features])
