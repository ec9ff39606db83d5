"""Feature tables computed from the lake: pure pandas functions of the events and the state tables.

``compute_features(inputs)`` returns one frame per view of :mod:`maestro_ml.contracts.features`
holding the rows with ``event_timestamp`` in ``[inputs.start, inputs.end)``. Every value of a row
at time ``t`` comes from events with ``occurred_at <= t`` (point-in-time correct by construction),
so computing a window alone gives the same rows as computing a longer span that contains it, as
long as the inputs reach ``LOOKBACK`` before the window (``load_inputs`` reads that much).

Static attributes (a task's estimate, a user's skills) come from the state tables, which never
change them after creation; everything that moves (status, assignee, workload, rolling windows)
is replayed from the events. Workload is state, not a window: a task created before the lookback
that is still open at its start, or that moves inside it, is replayed from its whole history
(``load_inputs`` reads those tasks' older events too), so a window computed alone equals the same
days of a full rebuild however old its open work is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from maestro_ml import lake
from maestro_ml.contracts.features import (
    ASSIGNMENTS,
    LOOKBACK,
    PRIOR_RATE,
    PRIOR_WEIGHT,
    PROJECT,
    REFRESH_EVERY,
    TASK,
    TASK_SKILL_FEATURES,
    TIMESTAMP_COLUMN,
    USER_ACTIVITY,
    USER_PROFILE,
    USER_SKILL_FEATURES,
    VIEWS,
    View,
)
from maestro_ml.features.history import History, history_features, load_history
from maestro_ml.settings import to_utc

HOUR = pd.Timedelta(hours=1)
DAY = pd.Timedelta(days=1)
TS_DTYPE = "datetime64[ns, UTC]"

# Event columns the features need, per event type.
EVENT_COLUMNS: dict[str, list[str]] = {
    "task_assigned": ["occurred_at", "actor_id", "task_id", "assignee_id", "previous_assignee_id"],
    "task_status_changed": ["occurred_at", "task_id", "to_status"],
    "task_completed": ["occurred_at", "task_id", "assignee_id"],
    "task_reopened": ["occurred_at", "task_id"],
    "time_logged": ["occurred_at", "task_id", "user_id", "hours"],
}
STATE_COLUMNS: dict[str, list[str]] = {
    "users": ["user_id", "team_id", "seniority", "weekly_capacity_hours", "skills", "joined_at", "left_at"],
    "projects": ["project_id", "team_id", "priority", "deadline", "created_at"],
    "tasks": [
        "task_id",
        "project_id",
        "priority",
        "estimated_hours",
        "due_at",
        "required_skills",
        "parent_task_id",
        "depends_on_task_id",
        "created_at",
        "title",
        "reporter_id",
    ],
}

# Order of timeline rows that share a timestamp: creation first, the synthetic "due" marker last.
_KIND = {"created": 0, "assigned": 1, "status": 2, "logged": 3, "completed": 4, "reopened": 5, "due": 6}


@dataclass(frozen=True)
class FeatureInputs:
    """What the features of ``[start, end)`` are computed from. Times are pandas UTC timestamps."""

    start: pd.Timestamp
    end: pd.Timestamp
    events: dict[str, pd.DataFrame]
    users: pd.DataFrame
    projects: pd.DataFrame
    tasks: pd.DataFrame
    # Tasks created before ``read_start`` whose whole history is in ``events`` (open then, or moving since).
    carried: frozenset[str] = frozenset()
    # Every assignment and completion before ``end``: the history views (``features.history``); None skips them.
    history: History | None = None

    @property
    def read_start(self) -> pd.Timestamp:
        return self.start - pd.Timedelta(LOOKBACK)


def utc_timestamp(value: datetime | str | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(to_utc(value))


def to_frame(table: pa.Table) -> pd.DataFrame:
    frame = table.to_pandas()
    for name in frame.columns:
        if isinstance(frame[name].dtype, pd.DatetimeTZDtype):
            frame[name] = frame[name].astype(TS_DTYPE)
    return frame


def load_inputs(lake_uri: str, start: datetime | str, end: datetime | str) -> FeatureInputs:
    """Read the committed events of ``[start - LOOKBACK, end)`` and the state tables from the lake."""
    start_ts, end_ts = utc_timestamp(start), utc_timestamp(end)
    read_start = (start_ts - pd.Timedelta(LOOKBACK)).to_pydatetime()
    tables = {
        name: lake.read_events(lake_uri, name, read_start, end_ts.to_pydatetime(), columns=cols)
        for name, cols in EVENT_COLUMNS.items()
    }
    state = {name: to_frame(lake.read_state(lake_uri, name).select(cols)) for name, cols in STATE_COLUMNS.items()}
    carried = _carried_tasks(lake_uri, read_start, state["tasks"], tables)
    if carried:
        ids = pa.array(sorted(carried), pa.string())
        for name, cols in EVENT_COLUMNS.items():
            older = lake.read_events(lake_uri, name, None, read_start, columns=cols,
                                     where=pc.field("task_id").isin(ids))
            tables[name] = pa.concat_tables([older, tables[name]])
    events = {name: to_frame(table) for name, table in tables.items()}
    history = load_history(lake_uri, end_ts.to_pydatetime(), state["tasks"])
    return FeatureInputs(start_ts, end_ts, events, state["users"], state["projects"], state["tasks"],
                         frozenset(carried), history)


def _carried_tasks(lake_uri: str, read_start: datetime, tasks: pd.DataFrame, recent: dict[str, pa.Table]) -> set[str]:
    """Tasks with history before ``read_start`` that still matter after it: open at ``read_start``, or moving since.

    Open means: no status-setting event before ``read_start`` left it done (the last one wins, ties
    in the timeline's order: a status change, then a completion, then a reopen).
    """
    before = tasks.loc[tasks["created_at"].notna() & (tasks["created_at"] < pd.Timestamp(read_start)), "task_id"]
    old = set(before)
    # A task whose creation is recorded after some of its events (an import or entry error) still has a
    # history before ``read_start``: it is carried like an older task.
    for name in ("task_assigned", "time_logged"):
        ids = lake.read_events(lake_uri, name, None, read_start, columns=["task_id"]).column("task_id")
        old |= set(pc.unique(ids).drop_null().to_pylist())
    if not old:
        return set()
    parts = []
    for name, kind, done in (("task_status_changed", "status", None), ("task_completed", "completed", True),
                             ("task_reopened", "reopened", False)):
        rows = to_frame(lake.read_events(lake_uri, name, None, read_start, columns=EVENT_COLUMNS[name]))
        frame = pd.DataFrame({"task_id": rows["task_id"].array, "t": rows["occurred_at"].array, "kind": _KIND[kind]})
        frame["done"] = (rows["to_status"] == "done").array if done is None else done
        parts.append(frame)
    history = pd.concat(parts, ignore_index=True).sort_values(["task_id", "t", "kind"], kind="mergesort")
    closed = set(history.groupby("task_id", sort=False)["done"].last().loc[lambda d: d.astype(bool)].index)
    ids = pa.chunked_array([c for table in recent.values() for c in table.column("task_id").chunks], pa.string())
    moving = set(pc.unique(ids).drop_null().to_pylist())
    return (old - closed) | (old & moving)


# --------------------------------------------------------------------------- helpers


def _hours(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 3600.0


def _unix(ts: pd.Series) -> pd.Series:
    return (ts.astype("int64") // 1_000_000_000).astype("int64")


def _midnights(start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
    first = start.ceil(pd.Timedelta(REFRESH_EVERY))
    return pd.date_range(first, end, freq=pd.Timedelta(REFRESH_EVERY), inclusive="left")


def _asof(
    queries: pd.DataFrame, table: pd.DataFrame, by: str, columns: list[str], *, at: str = "t", shift: pd.Timedelta | None = None
) -> pd.DataFrame:
    """For each query row (``by``, ``at``), the last ``table`` row of the same key with ``t <= at - shift``.

    Returns ``columns`` aligned to ``queries``' index (NaN where no row qualifies).
    """
    if queries.empty:
        return pd.DataFrame(index=queries.index, columns=columns)
    q = pd.DataFrame({by: queries[by].array, "_t": queries[at].array, "_i": np.arange(len(queries))})
    if shift is not None:
        q["_t"] = q["_t"] - shift
    q = q.sort_values("_t", kind="mergesort")
    right = table[[by, "t", *columns]].rename(columns={"t": "_t"}).sort_values("_t", kind="mergesort")
    merged = pd.merge_asof(q, right, on="_t", by=by, direction="backward", allow_exact_matches=True)
    merged = merged.sort_values("_i")
    out = merged[columns]
    out.index = queries.index
    return out


def _cumulative(events: pd.DataFrame, by: str, values: list[str]) -> pd.DataFrame:
    """Running sums of ``values`` per ``by`` in time order (the base of every windowed count)."""
    frame = events[[by, "t", *values]].sort_values([by, "t"], kind="mergesort")
    frame[values] = frame.groupby(by, sort=False)[values].cumsum()
    return frame


def _windowed(
    queries: pd.DataFrame, events: pd.DataFrame, by: str, values: list[str], window: pd.Timedelta | None
) -> pd.DataFrame:
    """Sums of ``values`` over events in ``(t - window, t]`` per query (all history up to t when window is None)."""
    cum = _cumulative(events, by, values)
    upto = _asof(queries, cum, by, values).astype("float64").fillna(0.0)
    if window is None:
        return upto
    before = _asof(queries, cum, by, values, shift=window).astype("float64").fillna(0.0)
    return upto - before


def _smoothed(successes: pd.Series, trials: pd.Series) -> pd.Series:
    return (successes + PRIOR_RATE * PRIOR_WEIGHT) / (trials + PRIOR_WEIGHT)


def _conform(view: View, frame: pd.DataFrame) -> pd.DataFrame:
    """Exactly the view's columns, in order, with its dtypes; one row per (keys, timestamp), sorted.

    A nullable integer feature stays float64 with NaN for null here; the offline files store it as int64 with nulls.
    """
    frame = frame[view.columns].copy()
    for feature in view.features:
        if feature.dtype == "Int64":
            frame[feature.name] = frame[feature.name].astype("float64" if feature.nullable else "int64")
        elif feature.dtype in ("Float32", "Float64"):
            frame[feature.name] = frame[feature.name].astype(feature.dtype.lower())
        elif feature.dtype.startswith("Array"):
            frame[feature.name] = frame[feature.name].astype(object)
    frame[TIMESTAMP_COLUMN] = frame[TIMESTAMP_COLUMN].astype(TS_DTYPE)
    keys = [*view.join_keys, TIMESTAMP_COLUMN]
    frame = frame.drop_duplicates(keys, keep="last").sort_values(keys, kind="mergesort")
    return frame.reset_index(drop=True)


def _stack(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate query points (``key, t``), skipping empty parts (whose dtypes would be guessed)."""
    parts = [f for f in frames if not f.empty]
    stacked = pd.concat(parts, ignore_index=True) if parts else frames[0].iloc[:0].copy()
    stacked["t"] = stacked["t"].astype(TS_DTYPE)
    return stacked


def _in_window(frame: pd.DataFrame, inputs: FeatureInputs, column: str = "t") -> pd.DataFrame:
    return frame[(frame[column] >= inputs.start) & (frame[column] < inputs.end)]


# --------------------------------------------------------------------------- timelines


def _expand_skills(frame: pd.DataFrame, column: str, names: tuple[str, ...], known: str) -> pd.DataFrame:
    """A list column of ``NUM_SKILLS`` floats as one float32 column per skill, and ``known`` (1 when present).

    A missing list (real trackers rarely record skills) or one of the wrong length gives nulls, not zeros:
    "no skill recorded" is not "no skill".
    """
    width = len(names)
    matrix = np.full((len(frame), width), np.nan, dtype=np.float32)
    present = np.zeros(len(frame), dtype=np.int64)
    for i, value in enumerate(frame[column].array):
        if value is not None and len(value) == width:
            matrix[i] = value
            present[i] = 1
    expanded = pd.DataFrame(matrix, columns=list(names), index=frame.index)
    expanded[known] = present
    return pd.concat([frame.drop(columns=column), expanded], axis=1)


def _static_tasks(inputs: FeatureInputs) -> pd.DataFrame:
    tasks = inputs.tasks
    tasks = tasks[tasks["created_at"].notna() & tasks["project_id"].notna()]
    return _expand_skills(tasks, "required_skills", TASK_SKILL_FEATURES, "required_skills_known").set_index(
        "task_id", drop=False)


def task_timeline(inputs: FeatureInputs) -> pd.DataFrame:
    """One row per event that touches a task (plus a marker at its due time), with the task's state after it.

    Columns: ``task_id, t, kind, assignee, done, status, hours_logged, times_reopened,
    times_reassigned, open_user`` (the user the task counts as open work for, or None).
    """
    ev = inputs.events
    static = _static_tasks(inputs)
    read_start = inputs.read_start

    def part(task_ids: pd.Series, times: pd.Series, kind: str, **cols: object) -> pd.DataFrame:
        frame = pd.DataFrame({"task_id": task_ids.array, "t": times.array, "kind": _KIND[kind]})
        for name, value in cols.items():
            frame[name] = value.array if isinstance(value, pd.Series) else value
        return frame

    carried = static["task_id"].isin(inputs.carried)
    created = static[((static["created_at"] >= read_start) | carried) & (static["created_at"] < inputs.end)]
    # A due date before the task existed (an import or entry error) marks nothing: the task is overdue from
    # its creation row on (``t >= due_at``), and a marker earlier would count it as open work before it existed.
    due = static[((static["due_at"] >= read_start) | carried) & (static["due_at"] < inputs.end)
                 & (static["due_at"] >= static["created_at"])]
    # A task with history before ``read_start`` that is not carried was closed then and has not moved since:
    # its marker says so (alone, it would read as open work from its due date on).
    closed_before = ~((due["created_at"] >= read_start) | due["task_id"].isin(inputs.carried))
    assigned = ev["task_assigned"]
    status = ev["task_status_changed"]
    completed = ev["task_completed"]
    reopened = ev["task_reopened"]
    logged = ev["time_logged"]
    parts = [
        part(created["task_id"], created["created_at"], "created", status_set="todo", done_set=0.0),
        part(
            assigned["task_id"],
            assigned["occurred_at"],
            "assigned",
            assignee_set=assigned["assignee_id"],
            reassign=assigned["previous_assignee_id"].notna().astype("int64"),
        ),
        part(
            status["task_id"],
            status["occurred_at"],
            "status",
            status_set=status["to_status"],
            done_set=(status["to_status"] == "done").astype("float64"),
        ),
        part(logged["task_id"], logged["occurred_at"], "logged", hours=logged["hours"].astype("float64")),
        part(completed["task_id"], completed["occurred_at"], "completed", status_set="done", done_set=1.0),
        part(reopened["task_id"], reopened["occurred_at"], "reopened", status_set="todo", done_set=0.0, reopen=1),
        part(due["task_id"], due["due_at"], "due", done_set=closed_before.map({True: 1.0, False: np.nan})),
    ]
    tl = _stack(parts)
    for name, default in (("assignee_set", None), ("status_set", None), ("done_set", np.nan)):
        if name not in tl:
            tl[name] = default
    for name in ("hours", "reopen", "reassign"):
        tl[name] = tl[name].fillna(0) if name in tl else 0
    tl["t"] = tl["t"].astype(TS_DTYPE)
    tl = tl.sort_values(["task_id", "t", "kind"], kind="mergesort").reset_index(drop=True)
    grouped = tl.groupby("task_id", sort=False)
    tl["assignee"] = grouped["assignee_set"].ffill()
    tl["done"] = grouped["done_set"].ffill().fillna(0.0).astype("int64")
    tl["status"] = grouped["status_set"].ffill().fillna("unknown")
    tl["hours_logged"] = grouped["hours"].cumsum()
    tl["times_reopened"] = grouped["reopen"].cumsum().astype("int64")
    tl["times_reassigned"] = grouped["reassign"].cumsum().astype("int64")
    tl["open_user"] = tl["assignee"].where(tl["done"] == 0)
    estimate = tl["task_id"].map(static["estimated_hours"]).astype("float64")
    # Workload sums count the estimates that exist; open work without one is counted apart (``unestimated``).
    tl["estimated_hours"] = estimate.fillna(0.0)
    tl["unestimated"] = estimate.isna()
    tl["project_id"] = tl["task_id"].map(static["project_id"])
    tl["due_at"] = tl["task_id"].map(static["due_at"]).astype(TS_DTYPE)
    return tl.drop(columns=["assignee_set", "status_set", "done_set", "hours", "reopen", "reassign"])


def _indicator_deltas(tl: pd.DataFrame, holder: pd.Series, weight: pd.Series) -> pd.DataFrame:
    """Changes of "this task counts for ``holder``" along the timeline: -1 for the old holder, +1 for the new."""
    key = holder.fillna("")
    prev = key.groupby(tl["task_id"], sort=False).shift(1).fillna("")
    changed = key != prev
    minus = changed & (prev != "")
    plus = changed & (key != "")
    return pd.concat(
        [
            pd.DataFrame({"holder": prev[minus], "t": tl["t"][minus], "n": -1.0, "w": -weight[minus]}),
            pd.DataFrame({"holder": key[plus], "t": tl["t"][plus], "n": 1.0, "w": weight[plus]}),
        ],
        ignore_index=True,
    )


def assignment_segments(inputs: FeatureInputs, static: pd.DataFrame) -> pd.DataFrame:
    """Assignment segments: who was assigned when, and how it ended (completed, reassigned, or still open)."""
    assigned = inputs.events["task_assigned"]
    seg = pd.DataFrame(
        {
            "task_id": assigned["task_id"].array,
            "user_id": assigned["assignee_id"].array,
            "t": assigned["occurred_at"].array,
        }
    ).sort_values(["task_id", "t"], kind="mergesort")
    seg["next_assigned"] = seg.groupby("task_id", sort=False)["t"].shift(-1)
    done = inputs.events["task_completed"]
    completions = pd.DataFrame({"task_id": done["task_id"].array, "completed_at": done["occurred_at"].array})
    completions["t"] = completions["completed_at"]
    completions = completions.sort_values("t", kind="mergesort")
    seg = pd.merge_asof(
        seg.sort_values("t", kind="mergesort"), completions, on="t", by="task_id", direction="forward"
    ).sort_values(["task_id", "t"], kind="mergesort")
    reassigned = seg["next_assigned"].notna() & (seg["completed_at"].isna() | (seg["next_assigned"] <= seg["completed_at"]))
    finished = ~reassigned & seg["completed_at"].notna()
    seg["reassigned"] = reassigned.astype("int64")
    seg["completed"] = finished.astype("int64")
    seg["ended_at"] = seg["next_assigned"].where(reassigned, seg["completed_at"].where(finished))
    seg["estimated_hours"] = seg["task_id"].map(static["estimated_hours"]).astype("float64")
    seg["due_at"] = seg["task_id"].map(static["due_at"]).astype(TS_DTYPE)
    seg["duration_hours"] = _hours(seg["completed_at"] - seg["t"]).where(finished)
    # On time is only defined against a due date: without one it is null, and rates leave it out.
    seg["completed_on_time"] = (finished & (seg["completed_at"] <= seg["due_at"])).astype("float64").where(
        seg["due_at"].notna())
    seg["slip_ratio"] = seg["duration_hours"] / seg["estimated_hours"]
    return seg.reset_index(drop=True)


# --------------------------------------------------------------------------- views


def _live_users_at(users: pd.DataFrame, times: pd.DatetimeIndex) -> pd.DataFrame:
    if len(times) == 0 or users.empty:
        return pd.DataFrame({"user_id": pd.Series(dtype=object), "t": pd.Series(dtype=TS_DTYPE)})
    grid = users[["user_id", "joined_at", "left_at"]].merge(pd.DataFrame({"t": times}), how="cross")
    live = grid["joined_at"].notna() & (grid["joined_at"] <= grid["t"])
    live &= grid["left_at"].isna() | (grid["left_at"] > grid["t"])
    return grid.loc[live, ["user_id", "t"]]


def user_profile_features(inputs: FeatureInputs) -> pd.DataFrame:
    users = _expand_skills(inputs.users[inputs.users["joined_at"].notna()], "skills", USER_SKILL_FEATURES,
                           "skills_known")
    q = pd.concat(
        [
            users[["user_id", "joined_at"]].rename(columns={"joined_at": "t"}),
            users.loc[users["left_at"].notna(), ["user_id", "left_at"]].rename(columns={"left_at": "t"}),
            _live_users_at(users, _midnights(inputs.start, inputs.end)),
        ],
        ignore_index=True,
    )
    q = _in_window(q, inputs).merge(users, on="user_id", how="inner")
    q["tenure_days"] = (_hours(q["t"] - q["joined_at"]) / 24.0).clip(lower=0.0)
    q["is_active"] = (q["left_at"].isna() | (q["t"] < q["left_at"])).astype("int64")
    q["seniority_known"] = q["seniority"].notna().astype("int64")
    q["capacity_known"] = q["weekly_capacity_hours"].notna().astype("int64")
    q[TIMESTAMP_COLUMN] = q["t"]
    return _conform(USER_PROFILE, q)


def user_activity_features(inputs: FeatureInputs, tl: pd.DataFrame, seg: pd.DataFrame) -> pd.DataFrame:
    users = inputs.users[inputs.users["joined_at"].notna()]
    ev = inputs.events
    deltas = _indicator_deltas(tl, tl["open_user"], tl["estimated_hours"]).rename(columns={"holder": "user_id"})
    unestimated = _indicator_deltas(tl, tl["open_user"].where(tl["unestimated"]), tl["estimated_hours"]).rename(
        columns={"holder": "user_id"})
    logged = pd.DataFrame(
        {
            "user_id": ev["time_logged"]["user_id"].array,
            "t": ev["time_logged"]["occurred_at"].array,
            "hours": ev["time_logged"]["hours"].astype("float64").array,
        }
    )
    finished = seg[seg["completed"] == 1]
    completions = pd.DataFrame(
        {
            "user_id": finished["user_id"].array,
            "t": finished["completed_at"].array,
            "n": 1.0,
            "on_time": finished["completed_on_time"].fillna(0.0).array,
            "with_due": finished["completed_on_time"].notna().astype("float64").array,
            "slip": finished["slip_ratio"].fillna(0.0).array,
            "slip_n": finished["slip_ratio"].notna().astype("float64").array,
        }
    )
    taken = seg[seg["reassigned"] == 1]
    reassigned = pd.DataFrame({"user_id": taken["user_id"].array, "t": taken["ended_at"].array, "n": 1.0})

    q = _stack(
        [
            deltas[["user_id", "t"]],
            logged[["user_id", "t"]],
            completions[["user_id", "t"]],
            reassigned[["user_id", "t"]],
            # A row from the moment a user joins: a point-in-time lookup of a new user finds zeros, not nothing.
            users[["user_id", "joined_at"]].rename(columns={"joined_at": "t"}),
            _live_users_at(users, _midnights(inputs.start, inputs.end)),
        ]
    )
    q = _in_window(q, inputs)
    q = q[q["user_id"].isin(users["user_id"])].drop_duplicates(["user_id", "t"]).reset_index(drop=True)

    for frame in (deltas, unestimated, logged, completions, reassigned):
        frame["t"] = frame["t"].astype(TS_DTYPE)
    open_now = _windowed(q, deltas, "user_id", ["n", "w"], None)
    q["open_tasks"] = open_now["n"].round().clip(lower=0)
    q["open_unestimated_tasks"] = _windowed(q, unestimated, "user_id", ["n"], None)["n"].round().clip(lower=0)
    q["open_estimated_hours"] = open_now["w"].clip(lower=0.0)
    q["hours_logged_7d"] = _windowed(q, logged, "user_id", ["hours"], pd.Timedelta(days=7))["hours"].clip(lower=0.0)
    q["hours_logged_28d"] = _windowed(q, logged, "user_id", ["hours"], pd.Timedelta(days=28))["hours"].clip(lower=0.0)
    for days in (28, 90):
        window = _windowed(q, completions, "user_id", ["n", "on_time", "with_due", "slip", "slip_n"],
                           pd.Timedelta(days=days))
        q[f"completed_{days}d"] = window["n"].round()
        q[f"on_time_rate_{days}d"] = _smoothed(window["on_time"], window["with_due"])
        if days == 90:
            q["avg_slip_ratio_90d"] = (window["slip"] / window["slip_n"]).where(window["slip_n"] > 0)
    q["reassignments_90d"] = _windowed(q, reassigned, "user_id", ["n"], pd.Timedelta(days=90))["n"].round()
    q[TIMESTAMP_COLUMN] = q["t"]
    return _conform(USER_ACTIVITY, q)


def task_features(inputs: FeatureInputs, tl: pd.DataFrame) -> pd.DataFrame:
    static = _static_tasks(inputs)
    state_cols = ["assignee", "done", "status", "hours_logged", "times_reopened", "times_reassigned"]
    events = tl[tl["kind"] != _KIND["due"]]
    rows = _in_window(events, inputs)[["task_id", "t", *state_cols]]
    # Daily refresh of every task that is open at midnight (per its own timeline).
    midnights = _midnights(inputs.start, inputs.end)
    known = static[static["task_id"].isin(tl["task_id"])]
    grid = known[["task_id", "created_at"]].merge(pd.DataFrame({"t": midnights}), how="cross")
    grid = grid[grid["created_at"] <= grid["t"]].reset_index(drop=True)
    grid[state_cols] = _asof(grid, events, "task_id", state_cols)
    grid = grid[grid["done"].notna() & (grid["done"] == 0)]
    rows = pd.concat([rows, grid[["task_id", "t", *state_cols]]], ignore_index=True)
    rows = rows.merge(static.reset_index(drop=True), on="task_id", how="inner")
    rows["created_at_unix"] = _unix(rows["created_at"])
    rows["due_at_unix"] = _unix(rows["due_at"].fillna(pd.Timestamp(0, tz="UTC"))).where(rows["due_at"].notna())
    rows["age_hours"] = _hours(rows["t"] - rows["created_at"]).clip(lower=0.0)
    rows["due_in_hours"] = _hours(rows["due_at"] - rows["t"])
    rows["has_parent"] = rows["parent_task_id"].notna().astype("int64")
    rows["has_dependency"] = rows["depends_on_task_id"].notna().astype("int64")
    dep = pd.DataFrame({"task_id": rows["depends_on_task_id"], "t": rows["t"]}, index=rows.index)
    dep_done = _asof(dep[dep["task_id"].notna()], events, "task_id", ["done"])["done"]
    rows["dependency_open"] = (dep_done.reindex(rows.index) == 0).astype("int64")
    rows["is_assigned"] = rows["assignee"].notna().astype("int64")
    rows["estimate_known"] = rows["estimated_hours"].notna().astype("int64")
    rows["due_known"] = rows["due_at"].notna().astype("int64")
    rows[TIMESTAMP_COLUMN] = rows["t"]
    return _conform(TASK, rows)


def project_features(inputs: FeatureInputs, tl: pd.DataFrame, seg: pd.DataFrame) -> pd.DataFrame:
    projects = inputs.projects[inputs.projects["created_at"].notna()]
    static = _static_tasks(inputs)
    tl = tl[tl["project_id"].notna()]
    # Open, blocked and overdue work as running counts per project (the timeline's changes).
    is_open = tl["done"] == 0
    open_d = _indicator_deltas(tl, tl["project_id"].where(is_open), tl["estimated_hours"])
    blocked_d = _indicator_deltas(tl, tl["project_id"].where(is_open & (tl["status"] == "blocked")), tl["estimated_hours"])
    overdue_d = _indicator_deltas(tl, tl["project_id"].where(is_open & (tl["t"] >= tl["due_at"])), tl["estimated_hours"])
    sizes = pd.DataFrame({"holder": static["project_id"].array, "t": static["created_at"].array, "n": 1.0})
    finished = seg[seg["completed"] == 1]
    done = pd.DataFrame(
        {
            "holder": finished["task_id"].map(static["project_id"]).array,
            "t": finished["completed_at"].array,
            "n": 1.0,
            "on_time": finished["completed_on_time"].fillna(0.0).array,
            "with_due": finished["completed_on_time"].notna().astype("float64").array,
        }
    )
    reopened = tl[tl["kind"] == _KIND["reopened"]]
    reopens = pd.DataFrame({"holder": reopened["project_id"].array, "t": reopened["t"].array, "n": 1.0})

    # A row at each hour start after an hour with project activity, plus the daily refresh.
    active = pd.DataFrame({"holder": tl["project_id"], "t": tl["t"].dt.floor("h") + HOUR})
    # Also a row at the creation instant: a task of a brand-new project finds its project.
    created = pd.DataFrame(
        {
            "holder": pd.concat([projects["project_id"]] * 2, ignore_index=True),
            "t": pd.concat([projects["created_at"], projects["created_at"].dt.floor("h") + HOUR], ignore_index=True),
        }
    )
    grid = projects[["project_id", "created_at"]].merge(
        pd.DataFrame({"t": _midnights(inputs.start, inputs.end)}), how="cross"
    )
    grid = grid[grid["created_at"] <= grid["t"]].rename(columns={"project_id": "holder"})[["holder", "t"]]
    q = _stack([active, created, grid])
    q["holder"] = q["holder"].astype(object)  # an all-empty stack has no dtype to go by
    q = _in_window(q, inputs)
    q = q[q["holder"].isin(projects["project_id"])].drop_duplicates(["holder", "t"]).reset_index(drop=True)
    for frame in (open_d, blocked_d, overdue_d, sizes, done, reopens):
        frame["t"] = frame["t"].astype(TS_DTYPE)

    open_now = _windowed(q, open_d, "holder", ["n", "w"], None)
    q["open_tasks"] = open_now["n"].round().clip(lower=0)
    q["open_estimated_hours"] = open_now["w"].clip(lower=0.0)
    q["blocked_tasks"] = _windowed(q, blocked_d, "holder", ["n"], None)["n"].round().clip(lower=0)
    q["overdue_open_tasks"] = _windowed(q, overdue_d, "holder", ["n"], None)["n"].round().clip(lower=0)
    q["size_tasks"] = _windowed(q, sizes, "holder", ["n"], None)["n"].round()
    q["velocity_7d"] = _windowed(q, done, "holder", ["n"], pd.Timedelta(days=7))["n"] / 7.0
    month = _windowed(q, done, "holder", ["n", "on_time", "with_due"], pd.Timedelta(days=28))
    q["on_time_rate_28d"] = _smoothed(month["on_time"], month["with_due"])
    reopen_28 = _windowed(q, reopens, "holder", ["n"], pd.Timedelta(days=28))["n"]
    q["reopen_rate_28d"] = (reopen_28 / month["n"].clip(lower=1.0)).clip(upper=1.0)
    q["overdue_ratio"] = (q["overdue_open_tasks"] / q["open_tasks"].clip(lower=1)).clip(upper=1.0)
    q = q.rename(columns={"holder": "project_id"}).merge(projects, on="project_id", how="inner")
    q["deadline_in_days"] = _hours(q["deadline"] - q["t"]) / 24.0
    q["deadline_known"] = q["deadline"].notna().astype("int64")
    q = q.rename(columns={f.name[len("project_"):]: f.name for f in PROJECT.features})
    q[TIMESTAMP_COLUMN] = q["t"]
    return _conform(PROJECT, q)


def historical_task_assignments(inputs: FeatureInputs, seg: pd.DataFrame) -> pd.DataFrame:
    rows = seg[seg["ended_at"].notna()].copy()
    rows["ended_at"] = rows["ended_at"].astype(TS_DTYPE)
    rows = _in_window(rows, inputs, "ended_at").copy()
    rows["assigned_at_unix"] = _unix(rows["t"])
    rows[TIMESTAMP_COLUMN] = rows["ended_at"]
    return _conform(ASSIGNMENTS, rows)


def compute_features(inputs: FeatureInputs) -> dict[str, pd.DataFrame]:
    """Every view's rows with ``event_timestamp`` in ``[inputs.start, inputs.end)``, conformed to the schema."""
    static = _static_tasks(inputs)
    tl = task_timeline(inputs)
    seg = assignment_segments(inputs, static)
    frames = {
        USER_PROFILE.name: user_profile_features(inputs),
        USER_ACTIVITY.name: user_activity_features(inputs, tl, seg),
        TASK.name: task_features(inputs, tl),
        PROJECT.name: project_features(inputs, tl, seg),
        ASSIGNMENTS.name: historical_task_assignments(inputs, seg),
    }
    if inputs.history is not None:
        history = history_features(inputs.history, inputs.start, inputs.end)
        frames.update({name: _conform(VIEWS[name], frame) for name, frame in history.items()})
    return frames


def empty_frame(view_name: str) -> pd.DataFrame:
    view = VIEWS[view_name]
    return _conform(view, pd.DataFrame({c: pd.Series(dtype=object) for c in view.columns}).assign(
        **{TIMESTAMP_COLUMN: pd.Series(dtype=TS_DTYPE)}
    ))


__all__ = [
    "FeatureInputs",
    "compute_features",
    "empty_frame",
    "load_inputs",
    "task_timeline",
]

