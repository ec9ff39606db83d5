"""The pure parts of scoring open tasks: which time is scored, the lake file's rows and timestamps, the reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from maestro_ml.contracts.features import TIMESTAMP_COLUMN
from maestro_ml.contracts.scores import DURATION_FIELDS, TASK_RECOMMENDATIONS
from maestro_ml.scoring import open_tasks as ot
from maestro_ml.scoring import publish
from maestro_ml.scoring.score import _batches, explain
from maestro_ml.settings import Settings

NEWEST = datetime(2026, 11, 3, 2, tzinfo=UTC)  # the newest committed hour starts here, ends at 03:00


@pytest.fixture
def lake_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ot.lake, "committed_hours", lambda uri: [NEWEST - timedelta(hours=1), NEWEST])


def test_the_scoring_time_is_the_end_of_the_newest_committed_hour(lake_hours: None) -> None:
    assert ot.scoring_time("lake") == NEWEST + timedelta(hours=1)


def test_the_scoring_time_is_capped_at_the_run_end(lake_hours: None) -> None:
    assert ot.scoring_time("lake", NEWEST + timedelta(minutes=15)) == NEWEST + timedelta(minutes=15)
    assert ot.scoring_time("lake", NEWEST + timedelta(hours=5)) == NEWEST + timedelta(hours=1)


def test_a_run_for_an_hour_the_state_has_moved_past_has_nothing_to_score(lake_hours: None) -> None:
    with pytest.raises(ot.NothingToScore, match="past hour"):
        ot.scoring_time("lake", NEWEST - timedelta(hours=3))


def test_an_empty_lake_has_nothing_to_score(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ot.lake, "committed_hours", lambda uri: [])
    with pytest.raises(ot.NothingToScore, match="no committed hour"):
        ot.scoring_time("lake")


def _scores(task_ids: list[str], assigned: list[int], recommended: list[list[str]]) -> pd.DataFrame:
    frame = pd.DataFrame({
        "task_id": task_ids, "project_id": "p_01", "reporter_id": "u_0009", "open_task": 1, "assigned": assigned,
        "recommended_user_ids": recommended,
        "recommended_scores": [[1.0] * len(r) for r in recommended],
        "recommendation_reasons": [["x (+1.00)"] * len(r) for r in recommended],
        "forecast_user_id": [r[0] if r else None for r in recommended],
        "ranker_version": "3", "duration_version": "1", "features_missing": 0,
    })
    for name in DURATION_FIELDS:
        frame[name] = 4.0
    return frame


def test_a_re_run_of_the_hour_replaces_its_file_and_writes_a_newer_timestamp(settings: Settings) -> None:
    at = NEWEST + timedelta(hours=1)
    clock = datetime(2026, 11, 3, 3, 15, tzinfo=UTC)
    first = publish.write_scores(_scores(["t1"], [0], [["u1", "u2"]]), at, settings, now=clock)
    # A clock that went backwards (another worker) still writes strictly after what is stored.
    second = publish.write_scores(_scores(["t1"], [0], [["u2", "u1"]]), at, settings, now=clock)
    assert first["hour"] == second["hour"] == "2026-11-03T03"
    assert publish.scored_hours(settings) == ["2026-11-03T03"]
    rows = publish.read_hour("2026-11-03T03", settings)
    assert len(rows) == 1 and list(rows.loc[0, "recommended_user_ids"]) == ["u2", "u1"]
    assert pd.Timestamp(second["written_at"]) > pd.Timestamp(first["written_at"])
    assert rows[TIMESTAMP_COLUMN].iloc[0] == pd.Timestamp(second["written_at"])


def test_the_file_has_the_contract_columns(settings: Settings) -> None:
    publish.write_scores(_scores(["t1"], [0], [["u1"]]), NEWEST + timedelta(hours=1), settings)
    rows = publish.read_hour("2026-11-03T03", settings)
    assert set(rows.columns) == {f.name for f in TASK_RECOMMENDATIONS.features} | {"task_id", TIMESTAMP_COLUMN}


def test_tasks_served_last_hour_and_closed_since_get_empty_recommendations(settings: Settings) -> None:
    at = NEWEST + timedelta(hours=1)
    publish.write_scores(_scores(["t1", "t2", "t3"], [0, 0, 0], [["u1"], ["u2"], ["u3"]]), at, settings)
    # t1 was assigned since (still open), t2 closed (not open any more), t3 is still unassigned.
    publish.write_scores(_scores(["t1", "t3"], [1, 0], [[], ["u3"]]), at + timedelta(hours=1), settings)
    rows = publish.read_hour("2026-11-03T04", settings).set_index("task_id")
    assert set(rows.index) == {"t1", "t2", "t3"}
    assert list(rows.loc["t1", "recommended_user_ids"]) == [] and rows.loc["t1", "assigned"] == 1
    assert list(rows.loc["t2", "recommended_user_ids"]) == [] and rows.loc["t2", "open_task"] == 0
    assert list(rows.loc["t3", "recommended_user_ids"]) == ["u3"]


class _Store:
    def __init__(self) -> None:
        self.pushed: list[pd.DataFrame] = []

    def write_to_online_store(self, view: str, frame: pd.DataFrame) -> None:
        assert view == TASK_RECOMMENDATIONS.name
        self.pushed.append(frame)


def test_a_backfilled_hour_older_than_the_newest_stays_in_the_lake(settings: Settings) -> None:
    at = NEWEST + timedelta(hours=1)
    publish.write_scores(_scores(["t1"], [0], [["u1"]]), at, settings)
    publish.write_scores(_scores(["t1"], [0], [["u2"]]), at - timedelta(hours=1), settings)
    store = _Store()
    assert publish.push_scores("2026-11-03T02", store, settings)["pushed"] == 0
    assert publish.push_scores("2026-11-03T03", store, settings)["pushed"] == 1
    assert len(store.pushed) == 1 and list(store.pushed[0]["recommended_user_ids"].iloc[0]) == ["u1"]


def test_reasons_name_the_features_that_raised_the_score_most_largest_first() -> None:
    assert explain(np.array([0.1, -2.0, 0.5, 0.3]), ["a", "b", "c", "d"]) == "c (+0.50), d (+0.30), a (+0.10)"


def test_batches_never_split_a_task() -> None:
    pairs = pd.DataFrame({"task_id": ["a"] * 3 + ["b"] * 3 + ["c"] * 2, "user_id": list("xyzxyzxy")})
    batches = list(_batches(pairs, rows=4))
    assert sum(len(b) for b in batches) == len(pairs)
    for batch in batches:
        for task_id in batch["task_id"].unique():
            assert (batch["task_id"] == task_id).sum() == (pairs["task_id"] == task_id).sum()
