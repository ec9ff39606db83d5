"""History features: who worked on which project, for which reporter, on which words; over all history.

Real assignment runs on these (a tracker's component has its regulars, a reporter has the people who
pick up their reports, a title names what the task is about), and none of them fits a 90-day window:
a component's long-time owner is its owner however quiet the last quarter was. So every view here is
computed from *every* assignment and completion before the window's end (a few columns of two
event types: cheap to read in full), and a window computed alone equals the same days of a full
rebuild by construction.

* ``user_project_features`` / ``user_reporter_features``: per (user, project) and (user, reporter),
  running counts of assignments and completions, a decayed assignment count as of the row, and the
  last activity; a row at every assignment or completion of the pair.
* ``project_assignment_features``: the project's own assignment counts (the denominator of a user's
  share of it); a row at every assignment of the project.
* ``task_text_features``: a title's hashed TF-IDF vector, a row at the task's creation. The IDF counts
  the titles created before the task (in creation order), so no vocabulary is fitted or shipped and a
  vector never changes once written.
* ``user_text_features``: the unit-length sum of the title vectors of every task assigned to the user
  so far; a row at each assignment.

A completion is credited to whoever was assigned the task at that moment (the event's own
``assignee_id`` when the task had no assignment, as a completion in real exports may lack it).
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from maestro_ml import lake
from maestro_ml.contracts.features import (
    AFFINITY_HALF_LIFE,
    PROJECT_ASSIGNMENTS,
    TASK_TEXT,
    TIMESTAMP_COLUMN,
    TITLE_DIMENSIONS,
    USER_PROJECT,
    USER_REPORTER,
    USER_TEXT,
)

TS_DTYPE = "datetime64[ns, UTC]"
_TOKEN = re.compile(r"[a-z0-9]+")
_HALF_LIFE_S = AFFINITY_HALF_LIFE.total_seconds()


@dataclass(frozen=True)
class History:
    """Every assignment and completion before ``end``, with the tasks they touch (project, reporter, title)."""

    assignments: pd.DataFrame  # task_id, user_id, t
    completions: pd.DataFrame  # task_id, user_id, t (user: the assignee at completion)
    tasks: pd.DataFrame  # task_id, project_id, reporter_id, title, created_at


def load_history(lake_uri: str, end: datetime, tasks: pd.DataFrame) -> History:
    """All assignment and completion events before ``end``; ``tasks`` is the state's task table."""
    def read(name: str) -> pd.DataFrame:
        table = lake.read_events(lake_uri, name, None, end, columns=["occurred_at", "task_id", "assignee_id"])
        frame = table.to_pandas()
        return pd.DataFrame({"task_id": frame["task_id"].astype(object), "user_id": frame["assignee_id"].astype(object),
                             "t": pd.to_datetime(frame["occurred_at"], utc=True).astype(TS_DTYPE)})

    assignments = read("task_assigned")
    return History(assignments, _credit(assignments, read("task_completed")), tasks)


def _credit(assignments: pd.DataFrame, completions: pd.DataFrame) -> pd.DataFrame:
    """Completions with the user assigned at that moment (the event's own assignee when there was none)."""
    if completions.empty:
        return completions
    left = completions.rename(columns={"user_id": "named"}).reset_index(drop=True)
    left["_i"] = np.arange(len(left))
    right = assignments.rename(columns={"user_id": "current"}).sort_values("t", kind="mergesort")
    merged = pd.merge_asof(left.sort_values("t", kind="mergesort"), right, on="t", by="task_id",
                           direction="backward").sort_values("_i")
    user = merged["current"].where(merged["current"].notna(), merged["named"])
    out = pd.DataFrame({"task_id": merged["task_id"].array, "user_id": user.array, "t": merged["t"].array})
    return out[out["user_id"].notna()].reset_index(drop=True)


# --------------------------------------------------------------------------- pair histories


def _pair_rows(events: pd.DataFrame, key: str, prefix: str, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Running counts per (user, ``key``) at each event (``a``: assignment, ``c``: completion) in ``[start, end)``."""
    events = events[events["user_id"].notna() & events[key].notna()]
    events = events.sort_values(["user_id", key, "t", "a"], kind="mergesort").reset_index(drop=True)
    grouped = events.groupby(["user_id", key], sort=False)
    seconds = events["t"].astype("int64").to_numpy() / 1e9
    # Decay against each pair's first event: exponents stay small whatever the absolute date.
    first = grouped["t"].transform("min").astype("int64").to_numpy() / 1e9
    growth = np.exp2((seconds - first) / _HALF_LIFE_S)
    events["_w"] = events["a"].to_numpy() * growth
    rows = pd.DataFrame({"user_id": events["user_id"], key: events[key], "t": events["t"]})
    rows[f"{prefix}_assignments"] = grouped["a"].cumsum().to_numpy()
    rows[f"{prefix}_completions"] = grouped["c"].cumsum().to_numpy()
    rows[f"{prefix}_assignments_decayed"] = events.groupby(["user_id", key], sort=False)["_w"].cumsum().to_numpy() / growth
    rows[f"{prefix}_last_active_unix"] = seconds.astype("int64")
    rows = rows.drop_duplicates(["user_id", key, "t"], keep="last")
    rows = rows[(rows["t"] >= start) & (rows["t"] < end)]
    return rows.rename(columns={"t": TIMESTAMP_COLUMN}).reset_index(drop=True)


def _activity(history: History, column: str) -> pd.DataFrame:
    """Assignments (a=1) and completions (c=1) with the task's ``column`` (project or reporter)."""
    by_task = history.tasks.set_index("task_id")[column]
    parts = [
        history.assignments.assign(a=1, c=0),
        history.completions.assign(a=0, c=1),
    ]
    events = pd.concat(parts, ignore_index=True)
    events[column] = events["task_id"].map(by_task)
    return events


def user_project_features(history: History, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    return _pair_rows(_activity(history, "project_id"), "project_id", "up", start, end)[USER_PROJECT.columns]


def user_reporter_features(history: History, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    return _pair_rows(_activity(history, "reporter_id"), "reporter_id", "ur", start, end)[USER_REPORTER.columns]


def project_assignment_features(history: History, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    events = history.assignments.assign(a=1, c=0, user_id="*")
    events["project_id"] = events["task_id"].map(history.tasks.set_index("task_id")["project_id"])
    rows = _pair_rows(events, "project_id", "project", start, end)
    rows = rows.rename(columns={"project_last_active_unix": "project_last_assigned_unix"})
    return rows[PROJECT_ASSIGNMENTS.columns]


# --------------------------------------------------------------------------- titles


def tokens(title: str | None) -> list[str]:
    """Lower-case word tokens of two or more characters, not pure numbers (ids and versions say little)."""
    if not title:
        return []
    return [w for w in _TOKEN.findall(title.lower()) if len(w) > 1 and not w.isdigit()]


def _bucket(token: str) -> tuple[int, float]:
    h = zlib.crc32(token.encode())
    return h % TITLE_DIMENSIONS, 1.0 if h >> 31 else -1.0


def title_vectors(tasks: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray]:
    """Per task (in creation order, then id): its unit TF-IDF vector, hashed, and its word count.

    A word's IDF is ``ln((1 + n) / (1 + df)) + 1`` over the ``n`` titles created before the task, ``df``
    of which hold the word; term frequency is sublinear (``1 + ln tf``).
    """
    ordered = tasks[tasks["created_at"].notna()].sort_values(["created_at", "task_id"], kind="mergesort")
    matrix = np.zeros((len(ordered), TITLE_DIMENSIONS), dtype=np.float32)
    words = np.zeros(len(ordered), dtype=np.int64)
    seen: Counter[str] = Counter()
    buckets: dict[str, tuple[int, float]] = {}
    for i, title in enumerate(ordered["title"].array):
        counts = Counter(tokens(title))
        words[i] = sum(counts.values())
        n = i
        row = matrix[i]
        for token, tf in counts.items():
            bucket = buckets.get(token)
            if bucket is None:
                bucket = buckets[token] = _bucket(token)
            row[bucket[0]] += bucket[1] * (1.0 + math.log(tf)) * (math.log((1 + n) / (1 + seen[token])) + 1.0)
        norm = float(np.linalg.norm(row))
        if norm > 0:
            row /= norm
        seen.update(counts.keys())
    return pd.Index(ordered["task_id"].array), matrix, words


def task_text_features(history: History, start: pd.Timestamp, end: pd.Timestamp,
                       vectors: tuple[pd.Index, np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    ids, matrix, words = vectors if vectors is not None else title_vectors(history.tasks)
    created = history.tasks.set_index("task_id")["created_at"].reindex(ids)
    keep = ((created >= start) & (created < end)).to_numpy()
    return pd.DataFrame({
        "task_id": ids[keep],
        TIMESTAMP_COLUMN: created[keep].to_numpy(),
        "title_vector": list(matrix[keep]),
        "title_words": words[keep],
    })[TASK_TEXT.columns]


def user_text_features(history: History, start: pd.Timestamp, end: pd.Timestamp,
                       vectors: tuple[pd.Index, np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    ids, matrix, _ = vectors if vectors is not None else title_vectors(history.tasks)
    assigned = history.assignments[history.assignments["user_id"].notna()]
    assigned = assigned.sort_values(["user_id", "t"], kind="mergesort").reset_index(drop=True)
    position = ids.get_indexer(assigned["task_id"])
    rows = np.zeros((len(assigned), TITLE_DIMENSIONS), dtype=np.float64)
    rows[position >= 0] = matrix[position[position >= 0]]
    sums = np.cumsum(rows, axis=0)
    # Per-user running sums: the global running sum minus its value just before the user's first row.
    first = assigned.groupby("user_id", sort=False).cumcount().to_numpy() == 0
    index = np.arange(len(assigned))
    starts = np.maximum.accumulate(np.where(first, index, 0)) if len(assigned) else index
    profile = sums - (sums[starts] - rows[starts])
    tasks_so_far = index - starts + 1
    norms = np.linalg.norm(profile, axis=1, keepdims=True)
    profile = np.where(norms > 0, profile / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)
    frame = pd.DataFrame({"user_id": assigned["user_id"].array, TIMESTAMP_COLUMN: assigned["t"].array,
                          "title_profile": list(profile), "title_profile_tasks": tasks_so_far.astype(np.int64)})
    frame = frame.drop_duplicates(["user_id", TIMESTAMP_COLUMN], keep="last")
    stamps = frame[TIMESTAMP_COLUMN]
    return frame[(stamps >= start) & (stamps < end)].reset_index(drop=True)[USER_TEXT.columns]


def history_features(history: History, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Every history view's rows with ``event_timestamp`` in ``[start, end)``."""
    vectors = title_vectors(history.tasks)
    return {
        USER_PROJECT.name: user_project_features(history, start, end),
        PROJECT_ASSIGNMENTS.name: project_assignment_features(history, start, end),
        USER_REPORTER.name: user_reporter_features(history, start, end),
        TASK_TEXT.name: task_text_features(history, start, end, vectors),
        USER_TEXT.name: user_text_features(history, start, end, vectors),
    }
