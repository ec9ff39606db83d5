"""maestro_ml.evaluation: ranking metrics on hand-computed examples, relevance labels, baselines, duration metrics, splits."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from maestro_ml.evaluation import (
    baseline_reports,
    duration_report,
    global_median_slip,
    join_truth,
    least_loaded_scores,
    mrr,
    ndcg_at_k,
    observed_relevance,
    random_scores,
    ranking_report,
    skill_overlap_scores,
    slip_baseline,
    split_bounds,
    split_by_bounds,
    time_split,
    truth_mae,
    truth_relevance,
)

T0 = pd.Timestamp("2026-03-02 09:00:00", tz="UTC")
# rel (0, 1, 2) ranked in reverse: DCG = 1/log2(3) + 3/log2(4); IDCG = 3/log2(2) + 1/log2(3).
REVERSED = (1 / math.log2(3) + 3 / 2) / (3 + 1 / math.log2(3))


# --------------------------------------------------------------------------- NDCG / MRR


def test_perfect_ranking_scores_one() -> None:
    scores, rel, groups = [3.0, 2.0, 1.0], [2, 1, 0], ["a", "a", "a"]
    for k in (1, 2, 3, 10, None):
        assert ndcg_at_k(scores, rel, groups, k) == pytest.approx(1.0)
    assert mrr(scores, rel, groups) == pytest.approx(1.0)


def test_reversed_ranking_hand_computed() -> None:
    scores, rel, groups = [3.0, 2.0, 1.0], [0, 1, 2], ["a"] * 3
    assert ndcg_at_k(scores, rel, groups, 3) == pytest.approx(REVERSED)
    assert ndcg_at_k(scores, rel, groups, None) == pytest.approx(REVERSED)
    assert ndcg_at_k(scores, rel, groups, 1) == pytest.approx(0.0)
    # @2: DCG = 1/log2(3); IDCG = 3 + 1/log2(3).
    assert ndcg_at_k(scores, rel, groups, 2) == pytest.approx((1 / math.log2(3)) / (3 + 1 / math.log2(3)))
    assert mrr(scores, rel, groups) == pytest.approx(1 / 3)  # the most relevant item sits third
    assert mrr(scores, rel, groups, min_relevance=1) == pytest.approx(1 / 2)


def test_mean_over_groups_skips_groups_without_relevant_items_and_nan_rows() -> None:
    frame = pd.DataFrame(
        {
            "g": ["p", "p", "p", "r", "r", "r", "z", "z", "p"],
            "score": [3.0, 2.0, 1.0, 3.0, 2.0, 1.0, 5.0, 4.0, 99.0],
            "rel": [2, 1, 0, 0, 1, 2, 0, 0, np.nan],  # the NaN row would otherwise be ranked first in "p"
        }
    )
    expected = (1.0 + REVERSED) / 2
    assert ndcg_at_k(frame["score"], frame["rel"], frame["g"], 3) == pytest.approx(expected)
    assert mrr(frame["score"], frame["rel"], frame["g"]) == pytest.approx((1.0 + 1 / 3) / 2)
    report = ranking_report(frame, "score", "rel", "g")
    assert set(report) == {"ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "hits@1", "hits@3", "hits@5", "hits@10", "mrr",
                           "coverage", "groups", "all_groups", "rows"}
    assert report["ndcg@1"] == pytest.approx(0.5)
    assert report["ndcg@10"] == pytest.approx(expected)
    assert (report["hits@1"], report["hits@3"]) == (pytest.approx(0.5), pytest.approx(1.0))
    assert report["groups"] == 2 and report["all_groups"] == 3 and report["rows"] == 8
    assert report["coverage"] == pytest.approx(2 / 3)
    # Counted as misses (a decision whose pick is not a candidate), "z" scores 0 in every mean.
    honest = ranking_report(frame, "score", "rel", "g", misses="zero")
    assert honest["ndcg@10"] == pytest.approx(expected * 2 / 3) and honest["mrr"] == pytest.approx((1.0 + 1 / 3) / 3)
    assert (honest["hits@1"], honest["hits@3"]) == (pytest.approx(1 / 3), pytest.approx(2 / 3))
    assert honest["coverage"] == report["coverage"]
    # Nullable integer labels with pd.NA behave like NaN.
    nullable = frame.assign(rel=frame["rel"].astype("Int64"))
    assert ranking_report(nullable, "score", "rel", "g") == report


def test_no_relevant_item_anywhere_is_nan() -> None:
    assert math.isnan(ndcg_at_k([1.0, 2.0], [0, 0], [1, 1], 5))
    assert math.isnan(mrr([1.0, 2.0], [0, 0], [1, 1]))


def test_ties_are_broken_deterministically() -> None:
    scores, groups = [1.0, 1.0, 1.0], [7, 7, 7]
    # stable: input order among equal scores.
    assert ndcg_at_k(scores, [1, 0, 0], groups, 3) == pytest.approx(1.0)
    assert ndcg_at_k(scores, [0, 0, 1], groups, 3) == pytest.approx(0.5)  # 1/log2(4)
    assert mrr(scores, [0, 0, 1], groups) == pytest.approx(1 / 3)
    # pessimistic: the least relevant first among equal scores, whatever the input order.
    assert ndcg_at_k(scores, [1, 0, 0], groups, 3, ties="pessimistic") == pytest.approx(0.5)
    assert mrr(scores, [1, 0, 0], groups, ties="pessimistic") == pytest.approx(1 / 3)
    # A NaN score ranks last; interleaved groups are fine.
    assert ndcg_at_k([np.nan, 0.0, 5.0, 1.0], [1, 0, 1, 0], ["a", "a", "b", "b"], 1) == pytest.approx(0.5)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="length"):
        ndcg_at_k([1.0], [1, 0], [1, 1], 3)
    with pytest.raises(ValueError, match=">= 0"):
        ndcg_at_k([1.0, 2.0], [-1, 0], [1, 1], 3)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k([1.0, 2.0], [1, 0], [1, 1], 0)


# --------------------------------------------------------------------------- labels


def test_observed_relevance_grades() -> None:
    frame = pd.DataFrame(
        {
            "chosen": [1, 1, 1, 1, 0, 0],
            "outcome_completed_on_time": [1, 0, 0, np.nan, np.nan, 1],
            "outcome_reassigned": [0, 0, 1, np.nan, np.nan, 0],
        },
        index=[10, 11, 12, 13, 14, 15],
    )
    rel = observed_relevance(frame)
    assert rel.tolist() == [2, 1, 1, 1, 0, 0]
    assert rel.index.tolist() == frame.index.tolist()


def _truth() -> pd.DataFrame:
    """Truth for task t1 (seq 0 at T0, seq 1 ten days later) and task t2 (seq 0 at T0 + 1 h), microsecond times."""
    at0 = T0 + pd.Timedelta(microseconds=300)
    rows = [
        ("t1", "u1", 0, at0, 0.5, 10.0),
        ("t1", "u2", 0, at0, 0.1, 20.0),
        ("t1", "u3", 0, at0, 0.9, 30.0),
        ("t1", "u4", 0, at0, 0.1, 40.0),
        ("t1", "u5", 0, at0, 0.3, 50.0),
        ("t1", "u1", 1, T0 + pd.Timedelta(days=10), -5.0, 11.0),
        ("t1", "u3", 1, T0 + pd.Timedelta(days=10), 5.0, 31.0),
        ("t2", "u1", 0, T0 + pd.Timedelta(hours=1), 0.2, 7.0),
        ("t2", "u2", 0, T0 + pd.Timedelta(hours=1), 0.4, 8.0),
    ]
    truth = pd.DataFrame(
        rows, columns=["task_id", "user_id", "assignment_seq", "assigned_at", "utility", "median_duration_hours"]
    )
    return truth.astype({"assignment_seq": "int16"})


def _ranking_frame() -> pd.DataFrame:
    rows = [
        ("d1", "t1", "u1", T0), ("d1", "t1", "u2", T0), ("d1", "t1", "u3", T0),
        ("d1", "t1", "u4", T0), ("d1", "t1", "u5", T0), ("d1", "t1", "u9", T0),  # u9: not in the truth
        ("d2", "t1", "u1", T0 + pd.Timedelta(days=10, seconds=2)), ("d2", "t1", "u3", T0 + pd.Timedelta(days=10, seconds=2)),
        ("d3", "t2", "u1", T0 + pd.Timedelta(hours=1, minutes=1)),  # a minute off: beyond the tolerance
        ("d3", "t2", "u2", T0 + pd.Timedelta(hours=1, minutes=1)),
    ]
    return pd.DataFrame(rows, columns=["decision_id", "task_id", "user_id", "assigned_at"]).iloc[::-1]


def test_join_truth_matches_the_nearest_decision_within_tolerance() -> None:
    frame = _ranking_frame()
    joined = join_truth(frame, _truth(), ["utility"])
    assert joined.index.equals(frame.index)
    by_row = dict(zip(zip(frame["decision_id"], frame["user_id"], strict=True), joined["utility"], strict=True))
    assert by_row[("d1", "u3")] == 0.9 and by_row[("d2", "u3")] == 5.0 and by_row[("d2", "u1")] == -5.0
    assert math.isnan(by_row[("d1", "u9")]) and math.isnan(by_row[("d3", "u1")])
    assert joined.loc[frame["decision_id"] == "d2", "assignment_seq"].tolist() == [1, 1]
    wide = join_truth(frame, _truth(), ["utility"], tolerance=pd.Timedelta(minutes=2))
    assert wide.loc[frame["decision_id"] == "d3", "utility"].tolist() == [0.4, 0.2]


def test_truth_relevance_grades_and_utility_scores_ndcg_one() -> None:
    frame = _ranking_frame()
    rel = truth_relevance(frame, _truth())
    d1 = frame["decision_id"] == "d1"
    # utilities u1..u5 = 0.5, 0.1, 0.9, 0.1, 0.3: strictly-lower counts 3, 0, 4, 0, 2 of n - 1 = 4.
    assert dict(zip(frame.loc[d1, "user_id"], rel[d1], strict=True)) == pytest.approx(
        {"u1": 3.0, "u2": 0.0, "u3": 4.0, "u4": 0.0, "u5": 2.0, "u9": np.nan}, nan_ok=True
    )
    assert rel[frame["decision_id"] == "d2"].tolist() == [4.0, 0.0]  # reversed frame: u3 then u1
    assert rel[frame["decision_id"] == "d3"].isna().all()
    scored = frame.assign(rel=rel, utility=join_truth(frame, _truth(), ["utility"])["utility"])
    report = ranking_report(scored, "utility", "rel")
    assert report["groups"] == 2
    assert all(report[k] == pytest.approx(1.0) for k in ("ndcg@1", "ndcg@3", "ndcg@5", "ndcg@10", "mrr"))
    assert ranking_report(scored.assign(neg=-scored["utility"]), "neg", "rel")["ndcg@1"] == pytest.approx(0.0)


def test_truth_relevance_utility_ties_and_random_groups_give_ndcg_one() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    groups = rng.integers(0, 150, n)
    utility = np.round(rng.normal(size=n), 1)  # many ties
    frame = pd.DataFrame(
        {
            "decision_id": groups,
            "task_id": groups.astype(str),
            "user_id": np.arange(n).astype(str),
            "assigned_at": T0 + pd.to_timedelta(groups, unit="h"),
        }
    )
    truth = frame[["task_id", "user_id", "assigned_at"]].assign(assignment_seq=0, utility=utility)
    rel = truth_relevance(frame.sample(frac=1.0, random_state=1), truth)
    scored = frame.assign(rel=rel, utility=utility)
    assert rel.between(0, 4).all()
    report = ranking_report(scored, "utility", "rel", ties="pessimistic")
    assert report["ndcg@3"] == pytest.approx(1.0) and report["mrr"] == pytest.approx(1.0)


# --------------------------------------------------------------------------- baselines


def _candidates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "decision_id": ["a", "a", "a", "a", "b", "b"],
            "open_estimated_hours": [10.0, 5.0, 5.0, np.nan, 3.0, 3.0],
            "open_tasks": [1, 3, 2, np.nan, 1, 1],
            "skill_match": [0.9, 0.1, np.nan, 0.5, 0.2, 0.8],
            "rel": [1, 0, 0, 0, 0, 1],
        }
    )


def test_baseline_scores() -> None:
    frame = _candidates()
    least = least_loaded_scores(frame)
    assert least.shape == (6,)
    assert np.argsort(-least[:4], kind="stable").tolist() == [3, 2, 1, 0]  # 0 h, then 5 h with 2 tasks, 3 tasks, 10 h
    assert least[4] == least[5]
    assert skill_overlap_scores(frame).tolist() == [0.9, 0.1, 0.0, 0.5, 0.2, 0.8]
    r = random_scores(frame, seed=7)
    assert r.shape == (6,) and np.array_equal(r, random_scores(frame, seed=7))
    assert not np.array_equal(r, random_scores(frame, seed=8))
    assert least_loaded_scores(frame.iloc[0:0]).shape == (0,)


def test_project_baselines_count_only_choices_made_before_each_decision() -> None:
    from maestro_ml.evaluation.ranking import project_history_scores

    at = pd.Timestamp("2026-11-01", tz="UTC")
    rows = [  # (decision, project, user, hours after `at`, chosen)
        ("d1", "P", "u1", 1, 1), ("d1", "P", "u2", 1, 0),
        ("d2", "P", "u1", 2, 0), ("d2", "P", "u2", 2, 1),
        ("d3", "P", "u1", 3, 0), ("d3", "P", "u2", 3, 0), ("d3", "P", "u3", 3, 1),
        ("d4", "Q", "u3", 3, 1), ("d4", "Q", "u1", 3, 0),
    ]
    history = pd.DataFrame(rows, columns=["decision_id", "project_id", "user_id", "h", "chosen"])
    history["assigned_at"] = at + pd.to_timedelta(history.pop("h"), unit="h")
    frame = history[history["decision_id"] == "d3"].reset_index(drop=True)
    scores = project_history_scores(frame, history)
    assert scores["project_frequency"].tolist() == [1.0, 1.0, 0.0], "d3's own choice does not count"
    assert scores["project_last_assignee"].tolist() == [0.0, 1.0, 0.0]
    first = project_history_scores(history[history["decision_id"] == "d1"], history)
    assert first["project_frequency"].tolist() == [0.0, 0.0] and first["project_last_assignee"].tolist() == [0.0, 0.0]
    reports = baseline_reports(frame.assign(relevance=frame["chosen"].astype(float)), "relevance", history=history)
    assert {"random", "project_frequency", "project_last_assignee"} <= set(reports)


def test_the_paired_bootstrap_brackets_the_mean_difference_and_shrinks_with_more_decisions() -> None:
    from maestro_ml.evaluation.ranking import ndcg_per_group, paired_bootstrap

    rng = np.random.default_rng(1)
    small_a, small_b = rng.random(50) + 0.1, rng.random(50)
    small = paired_bootstrap(small_a, small_b, seed=2)
    assert small["lo"] < small["diff"] < small["hi"] and small["n"] == 50
    big_a, big_b = rng.random(5_000) + 0.1, rng.random(5_000)
    big = paired_bootstrap(big_a, big_b, seed=2)
    assert big["hi"] - big["lo"] < small["hi"] - small["lo"] and big["lo"] > 0
    assert paired_bootstrap(np.array([np.nan]), np.array([1.0]))["n"] == 0
    frame = pd.DataFrame({"g": ["x", "x", "y", "y"], "s": [2.0, 1.0, 2.0, 1.0], "rel": [1, 0, 0, 0]})
    assert ndcg_per_group(frame, "s", "rel", "g", 5).tolist() == [1.0, 0.0], "a miss counts 0"


def test_baseline_reports() -> None:
    frame = _candidates()
    reports = baseline_reports(frame, "rel")
    assert set(reports) == {"random", "least_loaded", "skill_overlap"}
    assert reports["skill_overlap"]["mrr"] == pytest.approx(1.0)
    assert reports["least_loaded"]["mrr"] == pytest.approx((1 / 4 + 1 / 2) / 2)  # tie in "b": input order
    assert reports == baseline_reports(frame, "rel")
    assert set(baseline_reports(frame.drop(columns="skill_match"), "rel")) == {"random", "least_loaded"}


# --------------------------------------------------------------------------- duration


def test_duration_report_hand_example() -> None:
    y = [10.0, 20.0, 0.0, np.nan]
    pred = [12.0, 15.0, 1.0, 3.0]
    report = duration_report(
        y, pred, lower80=[9.0, 16.0, 0.5, 0.0], upper80=[11.0, 30.0, 2.0, 9.0],
        lower90=[8.0, 10.0, 0.0, 0.0], upper90=[12.0, 40.0, 2.0, 9.0],
    )
    assert report["n"] == 3
    assert report["mae"] == pytest.approx(8 / 3)
    assert report["mape"] == pytest.approx((0.2 + 0.25 + 1.0) / 3)  # |0 - 1| / max(0, 1 h)
    assert report["coverage80"] == pytest.approx(2 / 3)
    assert report["width80"] == pytest.approx((2 + 14 + 1.5) / 3)
    assert report["coverage90"] == pytest.approx(1.0)
    assert report["width90"] == pytest.approx((4 + 30 + 2) / 3)
    # The third row misses its 80 % interval by 0.5 h below: width 1.5 + 2 / 0.2 * 0.5.
    assert report["interval_score80"] == pytest.approx((2 + 14 + 6.5) / 3)
    assert report["interval_score90"] == pytest.approx(report["width90"])  # nothing missed: the width alone
    bare = duration_report([1.0, 2.0], [1.0, 4.0], mape_floor=0.5)
    assert bare == {"mae": 1.0, "mape": 0.5, "n": 2}
    with pytest.raises(ValueError):
        duration_report([1.0], [1.0, 2.0])


def test_slip_baseline_and_fallback() -> None:
    train = pd.DataFrame({"outcome_slip_ratio": [1.0, 1.5, np.nan, 3.0]})
    fallback = global_median_slip(train)
    assert fallback == 1.5
    assert global_median_slip(pd.DataFrame({"x": [1]})) == 1.0
    frame = pd.DataFrame({"estimated_hours": [4.0, 8.0], "avg_slip_ratio_90d": [2.0, np.nan]})
    assert slip_baseline(frame, fallback).tolist() == [8.0, 12.0]


def test_a_calibrated_interval_years_wide_scores_worse_than_a_sharp_one_that_misses_a_little() -> None:
    from maestro_ml.evaluation.duration import interval_score

    y = np.array([10.0, 20.0, 30.0, 40.0])
    wide = interval_score(y, y - 20_000.0, y + 20_000.0, alpha=0.1)  # always covers, about 4.5 years wide
    sharp = interval_score(y, y - 2.0, np.array([12.0, 22.0, 32.0, 39.0]), alpha=0.1)  # misses one by 1 h
    assert wide == pytest.approx(40_000.0) and sharp == pytest.approx((4 + 4 + 4 + 1 + 2 / 0.1 * 1) / 4)


def test_median_baselines_are_fitted_on_training_rows_and_fall_back_to_the_global_median() -> None:
    from maestro_ml.evaluation.duration import median_baselines

    train = pd.DataFrame({"outcome_duration_hours": [2.0, 4.0, 10.0, np.nan, 30.0],
                          "project_id": ["a", "a", "b", "b", "b"], "priority": [1, 1, 2, 2, 4]})
    frame = pd.DataFrame({"project_id": ["a", "b", "new"], "priority": [4, 3, 1]})
    guesses = median_baselines(train, frame)
    assert guesses["global_median"].tolist() == [7.0, 7.0, 7.0]
    assert guesses["project_median"].tolist() == [3.0, 20.0, 7.0]
    assert guesses["priority_median"].tolist() == [30.0, 7.0, 3.0]


def test_truth_mae() -> None:
    frame = pd.DataFrame(
        {
            "decision_id": ["d1", "d2", "d3"],
            "task_id": ["t1", "t1", "t2"],
            "user_id": ["u3", "u1", "u2"],
            "assigned_at": [T0, T0 + pd.Timedelta(days=10, seconds=1), T0 + pd.Timedelta(hours=1)],
            "outcome_duration_hours": [33.0, 10.0, np.nan],
        }
    )
    # |33 - 30| and |10 - 11|; d3 has no observed duration.
    assert truth_mae(frame, _truth()) == pytest.approx(2.0)


# --------------------------------------------------------------------------- splits


def _decisions(n_groups: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 6, n_groups)
    group = np.repeat(np.arange(n_groups), sizes)
    hours = np.repeat(np.sort(rng.integers(0, 30, n_groups)), sizes)  # ties in time across groups
    frame = pd.DataFrame({"decision_id": [f"d{g:03d}" for g in group], "assigned_at": T0 + pd.to_timedelta(hours, "h")})
    return frame.sample(frac=1.0, random_state=2).reset_index(drop=True)


def test_time_split_keeps_groups_whole_and_time_ordered() -> None:
    frame = _decisions()
    train, valid, test = time_split(frame, "assigned_at", 0.2, 0.2)
    assert len(train) + len(valid) + len(test) == len(frame)
    ids = [set(part["decision_id"]) for part in (train, valid, test)]
    assert not (ids[0] & ids[1] or ids[1] & ids[2] or ids[0] & ids[2])
    assert train["assigned_at"].max() < valid["assigned_at"].min()
    assert valid["assigned_at"].max() < test["assigned_at"].min()
    n = frame["decision_id"].nunique()
    assert 0 < len(ids[2]) <= round(0.2 * n)
    assert len(ids[1]) > 0
    again = time_split(frame, "assigned_at", 0.2, 0.2)
    assert all(a.equals(b) for a, b in zip((train, valid, test), again, strict=True))
    no_valid = time_split(frame, "assigned_at", 0.0, 0.25)
    assert no_valid[1].empty and len(no_valid[0]) + len(no_valid[2]) == len(frame)
    rows = time_split(frame.assign(assigned_at=T0 + pd.to_timedelta(np.arange(len(frame)), "s")), group_col=None)
    assert [len(p) for p in rows] == [len(frame) - 2 * round(0.15 * len(frame)), *[round(0.15 * len(frame))] * 2]
    with pytest.raises(ValueError):
        time_split(frame, "assigned_at", 0.5, 0.5)


def test_split_bounds_and_split_by_bounds() -> None:
    bounds = split_bounds("2026-03-01", datetime(2026, 3, 31, tzinfo=UTC), valid_days=5, test_days=5)
    assert bounds.train_start == datetime(2026, 3, 1, tzinfo=UTC)
    assert bounds.valid_start == datetime(2026, 3, 21, tzinfo=UTC)
    assert bounds.test_start == datetime(2026, 3, 26, tzinfo=UTC)
    assert bounds.end == datetime(2026, 3, 31, tzinfo=UTC)
    with pytest.raises(ValueError, match="too short"):
        split_bounds("2026-03-01", "2026-03-05", 2, 2)
    frame = pd.DataFrame(
        {
            "decision_id": ["a", "a", "b", "c", "d", "e"],
            "assigned_at": pd.to_datetime(
                ["2026-03-20 23:59", "2026-03-21 00:01", "2026-03-21 00:00", "2026-03-27 00:00", "2026-02-01 00:00", "2026-03-31 00:00"],
                utc=True,
            ),
        }
    )
    train, valid, test = split_by_bounds(frame, bounds)
    assert train["decision_id"].tolist() == ["a", "a"]  # a group's time is its earliest row
    assert valid["decision_id"].tolist() == ["b"] and test["decision_id"].tolist() == ["c"]
