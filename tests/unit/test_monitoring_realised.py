"""maestro_ml.monitoring.realised: realised performance from the outcomes that arrived since scoring."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from maestro_ml.contracts.scores import DURATION_FIELDS
from maestro_ml.monitoring import realised as r
from maestro_ml.promotion import gates as g
from maestro_ml.scoring import publish
from maestro_ml.settings import Settings

DAY1, DAY2, DAY3 = date(2024, 5, 13), date(2024, 5, 14), date(2024, 5, 15)
START, END = datetime(2024, 5, 13, tzinfo=UTC), datetime(2024, 5, 16, tzinfo=UTC)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def row(task: str, written: str, recs: list[str], forecast_for: str | None = None,
        interval: tuple[float, float, float, float, float] | None = None, version: str = "3") -> dict[str, Any]:
    """One scores row: ``interval`` is (p50, p80 lower, p80 upper, p90 lower, p90 upper)."""
    values = interval or (np.nan,) * 5
    return {"task_id": task, "scoring_hour": ts(written).strftime("%Y-%m-%dT%H"), "event_timestamp": ts(written),
            "recommended_user_ids": recs, "ranker_version": version,
            "forecast_user_id": forecast_for if forecast_for is not None else (recs[0] if recs else None),
            **dict(zip(DURATION_FIELDS, values, strict=True)), "duration_version": "7"}


def scores(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows)


def assigned(*events: tuple[str, str, str] | tuple[str, str, str, str]) -> pd.DataFrame:
    """(task, assignee, at[, previous assignee])."""
    return pd.DataFrame({"task_id": [e[0] for e in events], "assignee_id": [e[1] for e in events],
                         "occurred_at": [ts(e[2]) for e in events],
                         "previous_assignee_id": [e[3] if len(e) > 3 else None for e in events]})


def completed(*events: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"task_id": [e[0] for e in events], "occurred_at": [ts(e[1]) for e in events]})


NO_COMPLETIONS = completed()


# The hand-computed example. Rows written at 08:05 and 09:05 on day 1, 10:05 for the assigned T1 only.
#
# Ranker (a decision: a task's first assignment; its list: the newest non-empty one written before it)
#   T1 -> u1 at day1 09:30; last list 09:05 [u2, u1, u3]: rank 2 -> hit@1 0, hit@5 1, NDCG@5 1/log2(3) = 0.6309
#   T2 -> u9 at day1 10:30; last list 09:05 [u5, u4, u6, u7, u8]: u9 not in it -> a miss: 0, 0, 0
#   T3 -> u1 at day2 07:00; last list 09:05 day1 (22 h earlier, within the 2-day TTL) [u1, u2]: rank 1 -> 1, 1, 1
#   T4 -> u2 at day1 09:00; its only list was written at 09:05, after the assignment: not counted
#   T5 -> u3 at day2 08:00; never recommended: not counted
#   overall (n=3): hit@1 = 1/3, hit@5 = 2/3, NDCG@5 = (0.6309 + 0 + 1) / 3 = 0.5436
#   day1 (n=2): hit@1 0, hit@5 1/2, NDCG@5 0.6309 / 2 = 0.3155; day2 (n=1): 1, 1, 1
#
# Duration (realised duration: assignment to first completion; only forecasts for the actual assignee)
#   T1: u1 09:30 -> done day1 19:30 = 10 h; last forecast for u1: 10:05 p50 8, p80 [6, 11], p90 [5, 12]
#       abs error 2; 80% covers (6 <= 10 <= 11); 90% covers
#   T3: u1 day2 07:00 -> done day2 13:00 = 6 h; last forecast for u1: 09:05 day1 p50 5, p80 [3, 5.5], p90 [2, 7]
#       abs error 1; 80% misses (6 > 5.5); 90% covers
#   T2: u9 -> done day2; every forecast was for u5 (the top recommendation), never for u9: not scored
#   overall (n=2): MAE (2 + 1) / 2 = 1.5, coverage80 1/2, coverage90 1
#   day1 (n=1): MAE 2, 1, 1; day2 (n=1): MAE 1, 0, 1
T1_LATE = (8.0, 6.0, 11.0, 5.0, 12.0)
T3_FORECAST = (5.0, 3.0, 5.5, 2.0, 7.0)
OTHER = (3.0, 2.0, 4.0, 1.0, 5.0)
EXAMPLE_SCORES = scores([
    row("T1", "2024-05-13 08:05", ["u1", "u2", "u3"], interval=OTHER),
    row("T2", "2024-05-13 08:05", ["u4", "u5", "u6", "u7", "u8"], interval=OTHER),
    row("T3", "2024-05-13 08:05", ["u1", "u2"], interval=T3_FORECAST),
    row("T1", "2024-05-13 09:05", ["u2", "u1", "u3"], interval=OTHER),
    row("T2", "2024-05-13 09:05", ["u5", "u4", "u6", "u7", "u8"], interval=OTHER),
    row("T3", "2024-05-13 09:05", ["u1", "u2"], interval=T3_FORECAST),
    row("T4", "2024-05-13 09:05", ["u2", "u3"]),
    row("T1", "2024-05-13 10:05", [], forecast_for="u1", interval=T1_LATE),  # assigned now: no list, a forecast
])
EXAMPLE_ASSIGNED = assigned(("T4", "u2", "2024-05-13 09:00"), ("T1", "u1", "2024-05-13 09:30"),
                            ("T2", "u9", "2024-05-13 10:30"), ("T3", "u1", "2024-05-14 07:00"),
                            ("T5", "u3", "2024-05-14 08:00"))
EXAMPLE_DONE = completed(("T1", "2024-05-13 19:30"), ("T3", "2024-05-14 13:00"), ("T2", "2024-05-14 15:00"))
EXAMPLE = r.RealisedInputs(EXAMPLE_SCORES, EXAMPLE_ASSIGNED, EXAMPLE_DONE)
NDCG_RANK2 = 1 / math.log2(3)


def test_the_realised_metrics_equal_a_hand_computed_example() -> None:
    daily, overall, decisions = r.realised_from_frames("ranking", EXAMPLE, START, END, min_outcomes=1)
    assert list(decisions["task_id"]) == ["T1", "T2", "T3"]
    assert list(decisions["rank"].fillna(-1)) == [2, -1, 1]
    assert overall["n_decisions"] == 3
    assert overall["hit_at_1"] == {"value": pytest.approx(1 / 3), "n": 3, "insufficient": False}
    assert overall["hit_at_5"]["value"] == pytest.approx(2 / 3)
    assert overall["ndcg_at_5"]["value"] == pytest.approx((NDCG_RANK2 + 0 + 1) / 3)
    assert overall["ndcg_at_5"]["value"] == pytest.approx(0.5436, abs=1e-4)
    assert overall["versions"] == [{"version": "3", "n": 3, **{m: overall[m] for m in r.RANKER_METRICS}}]
    assert list(daily.columns) == ["day", "hit_at_1", "hit_at_5", "ndcg_at_5", "n_decisions"]
    first, second = daily.iloc[0], daily.iloc[1]
    assert (first["hit_at_1"], first["hit_at_5"], first["ndcg_at_5"]) == (0.0, 0.5, pytest.approx(NDCG_RANK2 / 2))
    assert (second["hit_at_1"], second["hit_at_5"], second["ndcg_at_5"]) == (1.0, 1.0, 1.0)

    daily, overall, done = r.realised_from_frames("duration", EXAMPLE, START, END, min_outcomes=1)
    assert list(done["task_id"]) == ["T1", "T3"]
    assert list(done["duration_hours"]) == [10.0, 6.0]
    assert list(done["abs_error_hours"]) == [2.0, 1.0]
    assert list(done["covered_80"]) == [1.0, 0.0] and list(done["covered_90"]) == [1.0, 1.0]
    assert overall["n_completions"] == 2
    assert overall["mae_hours"] == {"value": 1.5, "n": 2, "insufficient": False}
    assert overall["coverage_80"]["value"] == 0.5 and overall["coverage_90"]["value"] == 1.0
    assert list(daily.columns) == ["day", "mae_hours", "coverage_80", "coverage_90", "n_completions"]
    assert daily.iloc[0][["mae_hours", "coverage_80", "coverage_90"]].tolist() == [2.0, 1.0, 1.0]
    assert daily.iloc[1][["mae_hours", "coverage_80", "coverage_90"]].tolist() == [1.0, 0.0, 1.0]


def test_a_recommendation_served_after_the_assignment_is_not_used() -> None:
    decisions = r.ranker_decisions(EXAMPLE_SCORES, EXAMPLE_ASSIGNED)
    assert "T4" not in set(decisions["task_id"])  # its only list came 5 minutes after the assignment
    # T1's list written at 10:05 was empty and later; the 09:05 one is used, not the 08:05 one (u1 first there).
    t1 = decisions.set_index("task_id").loc["T1"]
    assert t1["recommended_user_ids"] == ["u2", "u1", "u3"] and t1["served_at"] == ts("2024-05-13 09:05")
    # Written at the very instant of the assignment is not before it.
    same_instant = scores([row("T9", "2024-05-13 09:00", ["u1"])])
    assert r.ranker_decisions(same_instant, assigned(("T9", "u1", "2024-05-13 09:00"))).empty
    # A newer list after the assignment does not replace the one served before it.
    later = scores([row("T9", "2024-05-13 08:05", ["u2", "u1"]), row("T9", "2024-05-13 10:05", ["u1"])])
    decisions = r.ranker_decisions(later, assigned(("T9", "u1", "2024-05-13 09:00")))
    assert decisions["rank"].tolist() == [2.0]
    # Nor a forecast written after the completion.
    forecasts = scores([row("T9", "2024-05-13 08:05", ["u1"], interval=T3_FORECAST),
                        row("T9", "2024-05-13 12:05", [], forecast_for="u1", interval=T1_LATE)])
    done = r.duration_outcomes(forecasts, assigned(("T9", "u1", "2024-05-13 09:00")),
                               completed(("T9", "2024-05-13 12:00")))
    assert done["duration_hours"].tolist() == [3.0] and done["duration_p50_hours"].tolist() == [5.0]


def test_a_task_assigned_without_ever_being_recommended_is_not_counted() -> None:
    decisions = r.ranker_decisions(EXAMPLE_SCORES, EXAMPLE_ASSIGNED)
    assert "T5" not in set(decisions["task_id"])
    _, overall, _ = r.realised_from_frames("ranking", EXAMPLE, START, END, min_outcomes=1)
    assert overall["n_decisions"] == 3  # five assignments, three of them recommended before
    # Rows with empty lists (a departed task, no champion) are not a recommendation either.
    empty_only = scores([row("T9", "2024-05-13 08:05", [])])
    assert r.ranker_decisions(empty_only, assigned(("T9", "u1", "2024-05-13 09:00"))).empty
    # A list older than the scores' TTL (2 days) was no longer served.
    stale = scores([row("T9", "2024-05-10 08:05", ["u1"])])
    assert r.ranker_decisions(stale, assigned(("T9", "u1", "2024-05-13 09:00"))).empty


def test_a_reassignment_is_not_a_decision_and_a_forecast_for_someone_else_is_not_scored() -> None:
    frame = scores([row("T9", "2024-05-13 08:05", ["u1", "u2"], interval=T3_FORECAST)])
    reassigned = assigned(("T9", "u2", "2024-05-13 09:00", "u7"))
    assert r.ranker_decisions(frame, reassigned).empty
    # Assigned to u2 while the forecast was for u1 (the top recommendation): no forecast for the assignee.
    done = r.duration_outcomes(frame, assigned(("T9", "u2", "2024-05-13 09:00")), completed(("T9", "2024-05-13 15:00")))
    assert done.empty
    # Reassigned to u1 before completion: u1's assignment is the one that ran to completion (from 10:00).
    moves = assigned(("T9", "u2", "2024-05-13 09:00"), ("T9", "u1", "2024-05-13 10:00", "u2"))
    done = r.duration_outcomes(frame, moves, completed(("T9", "2024-05-13 15:00")))
    assert done[["user_id", "duration_hours"]].values.tolist() == [["u1", 5.0]]


def test_too_few_outcomes_gives_insufficient_none_with_the_count_not_zero() -> None:
    daily, overall, _ = r.realised_from_frames("ranking", EXAMPLE, START, END, min_outcomes=3)
    assert overall["hit_at_1"]["value"] == pytest.approx(1 / 3)  # exactly enough overall
    assert daily["hit_at_1"].isna().all()  # 2 and 1 decisions a day: not enough on any day
    assert daily["n_decisions"].tolist() == [2, 1, 0]
    daily, overall, _ = r.realised_from_frames("duration", EXAMPLE, START, END, min_outcomes=5)
    for metric in r.DURATION_METRICS:
        assert overall[metric] == {"value": None, "n": 2, "insufficient": True}
        assert daily[metric].isna().all()
    comparison = r.compare_with_holdout(overall, {"mae_hours": 1.2, "coverage_80": 0.8}, min_outcomes=5)
    assert comparison["mae_hours"] == {"realised": None, "n": 2, "holdout": 1.2, "gap": None, "enough": False,
                                       "worse": None, "status": "insufficient"}
    # Nothing at all: insufficient with n = 0, never a figure of 0.
    nothing = r.RealisedInputs(EXAMPLE_SCORES.iloc[0:0], assigned(), completed())
    daily, overall, _ = r.realised_from_frames("ranking", nothing, START, END, min_outcomes=1)
    assert overall["ndcg_at_5"] == {"value": None, "n": 0, "insufficient": True}
    assert daily["n_decisions"].tolist() == [0, 0, 0] and daily["ndcg_at_5"].isna().all()


def test_per_day_counts_are_right() -> None:
    daily, _, _ = r.realised_from_frames("ranking", EXAMPLE, START, END, min_outcomes=1)
    assert daily["day"].tolist() == [DAY1, DAY2, DAY3]
    assert daily["n_decisions"].tolist() == [2, 1, 0]
    assert math.isnan(daily.iloc[2]["ndcg_at_5"])  # a day without outcomes is insufficient, not 0
    daily, _, _ = r.realised_from_frames("duration", EXAMPLE, START, END, min_outcomes=1)
    assert daily["n_completions"].tolist() == [1, 1, 0]
    # The window bounds the outcomes: only day 2's assignment and completion count.
    daily, overall, _ = r.realised_from_frames("ranking", EXAMPLE, DAY2.isoformat(), DAY3.isoformat(),
                                               min_outcomes=1)
    assert daily["day"].tolist() == [DAY2] and daily["n_decisions"].tolist() == [1]
    assert overall["n_decisions"] == 1
    # Per version: only the decisions the given ranker version served.
    _, overall, _ = r.realised_from_frames("ranking", EXAMPLE, START, END, min_outcomes=1, version="4")
    assert overall["n_decisions"] == 0


def test_the_holdout_comes_from_the_promotion_gates_and_the_training_run() -> None:
    gates = [gate.as_dict() for gate in [
        g.Gate("primary_ndcg@5_improvement", 0.02, "> 0", True),
        g.no_worse_gate("guard_mrr", 0.61, 0.6, tolerance=0.01, higher_is_better=True),
        g.coverage_gate(80, 0.79), g.coverage_gate(90, float("nan")),
        g.Gate("loads_in_clean_process", "ok", "loads", True),
    ]]
    assert r.holdout_from_gates(json.dumps(gates)) == {"mrr": 0.61, "coverage_80": 0.79}
    metrics = {"valid_ensemble_ndcg_at_5": 0.5, "test_ensemble_ndcg_at_5": 0.55, "valid_ensemble_hits_at_1": 0.3}
    assert r.holdout_from_run_metrics(metrics, "ranking") == {
        "ndcg_at_5": (0.55, "test_ensemble_ndcg_at_5"), "hit_at_1": (0.3, "valid_ensemble_hits_at_1")}
    assert r.holdout_from_run_metrics({"test_model_mae": 2.5}, "duration") == {"mae_hours": (2.5, "test_model_mae")}


def test_compare_with_holdout_gives_the_gap_and_its_direction() -> None:
    overall = {"ndcg_at_5": {"value": 0.5, "n": 40}, "mae_hours": {"value": 3.0, "n": 40},
               "coverage_90": {"value": 0.84, "n": 40}, "hit_at_1": {"value": 0.3, "n": 40}, "n_decisions": 40}
    holdout = {"ndcg_at_5": 0.6, "mae_hours": 2.5, "coverage_90": 0.89}
    out = r.compare_with_holdout(overall, holdout, min_outcomes=30)
    assert out["ndcg_at_5"]["gap"] == pytest.approx(-0.1) and out["ndcg_at_5"]["worse"] is True
    assert out["mae_hours"]["gap"] == pytest.approx(0.5) and out["mae_hours"]["worse"] is True
    assert out["coverage_90"]["worse"] is True  # 0.84 is further from 0.90 than 0.89
    assert out["hit_at_1"]["status"] == "no holdout figure" and out["hit_at_1"]["gap"] is None
    assert "n_decisions" not in out


def test_realised_performance_reads_the_window_from_the_lake(settings: Settings,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    columns = ["task_id", "project_id", "reporter_id", "open_task", "assigned", "recommended_user_ids",
               "recommended_scores", "recommendation_reasons", "forecast_user_id", *DURATION_FIELDS,
               "ranker_version", "duration_version", "features_missing"]
    for written, part in EXAMPLE_SCORES.groupby("event_timestamp"):
        frame = part.assign(project_id="p", reporter_id="u0", open_task=1, assigned=0,
                            recommended_scores=[[1.0] * len(x) for x in part["recommended_user_ids"]],
                            recommendation_reasons=[[""] * len(x) for x in part["recommended_user_ids"]],
                            features_missing=0)[columns]
        at = pd.Timestamp(written).floor("h").to_pydatetime()
        publish.write_scores(frame, at, settings, now=pd.Timestamp(written).to_pydatetime())
    events = {"task_assigned": EXAMPLE_ASSIGNED, "task_completed": EXAMPLE_DONE}
    calls = []

    def read_events(lake_uri: str, event_type: str, start: Any, end: Any, columns: list[str],
                    where: Any = None) -> pa.Table:
        calls.append((event_type, start, end, where is not None))
        frame = events[event_type]
        keep = (frame["occurred_at"] >= pd.Timestamp(start)) & (frame["occurred_at"] < pd.Timestamp(end))
        return pa.Table.from_pandas(frame[keep][columns], preserve_index=False)

    monkeypatch.setattr(r.lake, "read_events", read_events)
    daily, overall = r.realised_performance("task_assignment", START, END, settings=settings, min_outcomes=1)
    assert overall["n_decisions"] == 3 and overall["ndcg_at_5"]["value"] == pytest.approx((NDCG_RANK2 + 1) / 3)
    assert daily["n_decisions"].tolist() == [2, 1, 0]
    daily, overall = r.realised_performance("task_duration", START, END, settings=settings, min_outcomes=1)
    assert overall["mae_hours"]["value"] == 1.5 and daily["n_completions"].tolist() == [1, 1, 0]
    # The duration loader looks back for the assignments of the tasks completed in the window.
    assert any(c[0] == "task_assigned" and c[3] and c[1] < START for c in calls)
    # Only scores written within the TTL before the window are read.
    assert r.read_scores(datetime(2024, 5, 13, 9, tzinfo=UTC), END, settings)["event_timestamp"].min() == \
        ts("2024-05-13 09:05")


def test_champion_holdout_reads_the_versions_promotion_and_says_what_is_missing(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_ml.registry import audit

    monkeypatch.setattr(audit, "_tag", lambda record, settings: None)
    gates = [g.coverage_gate(80, 0.81).as_dict(), g.coverage_gate(90, 0.9).as_dict(),
             g.Gate("primary_abs_error_hours_improvement", 0.4, "> 0", True).as_dict()]
    audit.append(audit.Record("task_duration", "promote", "ci", "run-1", "4", None, "4", gates=gates), settings)
    audit.append(audit.Record("task_duration", "rollback", "ci", "run-2", "4", "5", "4"), settings)
    monkeypatch.setattr(r, "_run_metrics", lambda model, version, settings: ("abc", {"test_model_mae": 2.5,
                                                                                   "test_model_coverage80": 0.7}))
    holdout = r.champion_holdout("task_duration", "4", settings)
    assert holdout.figures == {"coverage_80": 0.81, "coverage_90": 0.9, "mae_hours": 2.5}
    assert holdout.sources["coverage_80"].startswith("promotion audit record")
    assert holdout.sources["mae_hours"] == "training run abc metric test_model_mae"
    assert holdout.missing == []

    def down(model: str, version: str, settings: Settings) -> Any:
        raise ConnectionError("mlflow is down")

    monkeypatch.setattr(r, "_run_metrics", down)
    assert r.champion_holdout("task_duration", "4", settings).missing == ["mae_hours"]
    assert r.holdout_figures("task_duration", "9", settings) == {}
