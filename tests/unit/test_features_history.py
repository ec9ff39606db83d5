"""History features: the pair's past on the project, with the reporter and on the title's words
(``maestro_ml.features.history`` and the ``pair_affinity_features`` on-demand view)."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pandas as pd
import pytest

from maestro_ml.contracts.features import AFFINITY_HALF_LIFE
from maestro_ml.features.history import History, history_features, title_vectors, tokens
from maestro_ml.settings import FEATURE_REPO_DIR

T0 = pd.Timestamp("2026-01-05T10:00:00Z")
DAY = pd.Timedelta(days=1)


def _history() -> History:
    tasks = pd.DataFrame({
        "task_id": ["t1", "t2", "t3", "t4"],
        "project_id": ["p_db", "p_db", "p_ui", "p_db"],
        "reporter_id": ["r1", "r1", "r2", None],
        "title": ["Fix the database index", "Database migration is slow", "Button colour on settings page",
                  "Index rebuild for the database"],
        "created_at": [T0, T0 + DAY, T0 + 2 * DAY, T0 + 40 * DAY],
    })
    assignments = pd.DataFrame({
        "task_id": ["t1", "t2", "t3", "t2", "t4"],
        "user_id": ["ana", "ana", "ben", "ben", "ana"],
        "t": [T0 + pd.Timedelta(hours=1), T0 + DAY + pd.Timedelta(hours=1), T0 + 2 * DAY + pd.Timedelta(hours=1),
              T0 + 5 * DAY, T0 + 40 * DAY + pd.Timedelta(hours=1)],
    })
    completions = pd.DataFrame({"task_id": ["t1", "t2"], "user_id": ["ana", "ben"],
                                "t": [T0 + 3 * DAY, T0 + 6 * DAY]})
    return History(assignments, completions, tasks)


def test_pair_counts_are_all_time_and_the_decayed_count_halves_every_half_life() -> None:
    frames = history_features(_history(), T0 - DAY, T0 + 60 * DAY)
    up = frames["user_project_features"].set_index(["user_id", "project_id", "event_timestamp"]).sort_index()
    last = up.loc[("ana", "p_db")].iloc[-1]
    assert (last["up_assignments"], last["up_completions"]) == (3, 1)
    # Two assignments about 39-40 days before the third: each weighs 0.5 ** (39.x / 30) at the row.
    ages = np.array([40 * 24 - 1 + 1, 39 * 24]) / 24.0  # days between the earlier assignments and the last
    expected = 1.0 + np.sum(0.5 ** (ages / AFFINITY_HALF_LIFE.days))
    assert last["up_assignments_decayed"] == pytest.approx(expected, rel=1e-5)
    share = frames["project_assignment_features"].set_index("project_id").loc["p_db"].iloc[-1]
    assert share["project_assignments"] == 4, "every assignment of the project, reassignments included"


def test_a_completion_is_credited_to_whoever_held_the_task_then() -> None:
    frames = history_features(_history(), T0 - DAY, T0 + 60 * DAY)
    up = frames["user_project_features"]
    ben = up[(up["user_id"] == "ben") & (up["project_id"] == "p_db")].iloc[-1]
    assert ben["up_completions"] == 1, "t2 moved from ana to ben before it was completed"
    ur = frames["user_reporter_features"]
    assert set(zip(ur["user_id"], ur["reporter_id"], strict=True)) == {("ana", "r1"), ("ben", "r2"), ("ben", "r1")}, \
        "a task without a reporter has no reporter pair"


def test_a_window_computed_alone_equals_the_same_rows_of_a_longer_build() -> None:
    history = _history()
    full = history_features(history, T0 - DAY, T0 + 60 * DAY)
    alone = history_features(history, T0 + 4 * DAY, T0 + 41 * DAY)
    for name, frame in full.items():
        stamps = frame["event_timestamp"]
        expected = frame[(stamps >= T0 + 4 * DAY) & (stamps < T0 + 41 * DAY)].reset_index(drop=True)
        pd.testing.assert_frame_equal(alone[name].reset_index(drop=True), expected, obj=name)


def test_title_vectors_weigh_rare_words_above_common_ones_and_never_change_once_written() -> None:
    tasks = _history().tasks
    ids, matrix, words = title_vectors(tasks)
    assert list(ids) == ["t1", "t2", "t3", "t4"] and words.tolist() == [4, 4, 5, 5]
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0)
    cosine = matrix @ matrix.T
    assert cosine[3, 0] > cosine[3, 1] > cosine[3, 2], "t4 shares 'index' and 'database' with t1, less with t2"
    later = pd.concat([tasks, pd.DataFrame({"task_id": ["t5"], "project_id": ["p_db"], "reporter_id": ["r1"],
                                            "title": ["database database"], "created_at": [T0 + 90 * DAY]})])
    _, again, _ = title_vectors(later)
    assert np.array_equal(again[:4], matrix), "the IDF counts only titles created before each task"
    assert tokens("Fix #1234: the DB-index v2") == ["fix", "the", "db", "index", "v2"]


def _pair_affinity():  # type: ignore[no-untyped-def]
    if str(FEATURE_REPO_DIR) not in sys.path:
        sys.path.insert(0, str(FEATURE_REPO_DIR))
    return importlib.import_module("on_demand_features").pair_affinity_features.feature_transformation.udf


def test_the_on_demand_view_decays_to_the_request_time_and_reads_a_missing_pair_as_never() -> None:
    now = 1_800_000_000
    half_life = int(AFFINITY_HALF_LIFE.total_seconds())
    out = _pair_affinity()({
        "request_time_unix": [now, now],
        "up_assignments": [3, None], "up_completions": [1, None],
        "up_assignments_decayed": [2.0, None], "up_last_active_unix": [now - half_life, None],
        "project_assignments": [10, 10], "project_assignments_decayed": [8.0, 8.0],
        "project_last_assigned_unix": [now - half_life, now - half_life],
        "ur_assignments": [None, 2], "ur_completions": [None, 2],
        "ur_assignments_decayed": [None, 1.0], "ur_last_active_unix": [None, now],
        "title_vector": [[1.0, 0.0], [1.0, 0.0]], "title_profile": [[0.6, 0.8], None],
        "title_words": [2, 2], "title_profile_tasks": [3, None],
    })
    assert out["up_assignments_all"] == [3, 0] and out["ur_assignments_all"] == [0, 2]
    assert out["up_assignments_recent"] == [pytest.approx(1.0), 0.0]
    assert out["up_share_recent"] == [pytest.approx(0.25), 0.0]
    assert out["up_days_since_active"] == [pytest.approx(30.0), None]
    assert out["ur_assignments_recent"] == [0.0, pytest.approx(1.0)]
    assert out["title_similarity"] == [pytest.approx(0.6), None]
    assert out["title_profile_tasks_all"] == [3, 0]
