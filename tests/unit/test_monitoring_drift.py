"""maestro_ml.monitoring.drift: per-feature drift statistics, thresholds by group, prediction drift and the
N-features-K-days rule."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from maestro_ml.monitoring.drift import (
    DEFAULT_GROUP,
    PREDICTION_GROUP,
    REPORT_COLUMNS,
    TIMESTAMP_GROUP,
    DriftThresholds,
    default_statistic,
    drift_rule_state,
    drifted_count,
    feature_drift,
    feature_group,
    prediction_drift,
)

N = 5000


def _row(report: pd.DataFrame, feature: str) -> pd.Series:
    return report.set_index("feature").loc[feature]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def test_report_has_one_row_per_feature_with_the_documented_columns(rng):
    reference = pd.DataFrame({"x": rng.normal(size=N), "team_id": rng.choice(["a", "b"], N)})
    report = feature_drift(reference, reference.copy())
    assert list(report.columns) == list(REPORT_COLUMNS)
    assert list(report["feature"]) == ["x", "team_id"]
    assert report["drifted"].dtype == bool
    assert list(report["kind"]) == ["numeric", "categorical"]


def test_identical_samples_show_no_drift_and_values_near_zero(rng):
    reference = pd.DataFrame({
        "x": rng.normal(size=N),
        "count": rng.integers(0, 4, N),
        "team_id": rng.choice(["a", "b", "c"], N),
    })
    report = feature_drift(reference, reference.copy())
    assert not report["drifted"].any()
    assert np.allclose(report["value"], 0.0, atol=1e-9)
    assert np.allclose(report["psi"], 0.0, atol=1e-9)
    assert list(report["statistic"]) == ["wasserstein", "jensenshannon", "jensenshannon"]
    assert drifted_count(report) == 0


def test_two_draws_of_one_distribution_stay_under_the_default_thresholds(rng):
    reference = pd.DataFrame({"x": rng.normal(size=N), "team_id": rng.choice(["a", "b", "c"], N)})
    current = pd.DataFrame({"x": rng.normal(size=N), "team_id": rng.choice(["a", "b", "c"], N)})
    report = feature_drift(reference, current)
    assert not report["drifted"].any()
    assert (report["psi"] < 0.02).all()


def test_numeric_shifted_by_one_std_drifts_under_normed_wasserstein_and_psi(rng):
    reference = pd.DataFrame({"x": rng.normal(10, 2, N)})
    current = pd.DataFrame({"x": rng.normal(12, 2, N)})
    row = _row(feature_drift(reference, current), "x")
    assert row["statistic"] == "wasserstein" and row["threshold"] == 0.1
    assert row["value"] == pytest.approx(1.0, abs=0.1)  # a shift of one reference std
    assert row["drifted"]
    assert row["psi"] > 0.2

    by_psi = DriftThresholds(groups={DEFAULT_GROUP: ("psi", 0.2)})
    row = _row(feature_drift(reference, current, by_psi), "x")
    assert row["statistic"] == "psi" and row["value"] == row["psi"] and row["drifted"]


def test_categorical_with_changed_proportions_drifts_under_jensen_shannon(rng):
    reference = pd.DataFrame({"status": rng.choice(["todo", "done", "blocked"], N, p=[0.6, 0.3, 0.1])})
    current = pd.DataFrame({"status": rng.choice(["todo", "done", "blocked"], N, p=[0.2, 0.3, 0.5])})
    row = _row(feature_drift(reference, current), "status")
    assert row["kind"] == "categorical" and row["statistic"] == "jensenshannon"
    assert row["value"] > 0.1 and row["drifted"]
    assert row["psi"] > 0.2


def test_a_new_category_in_current_counts_in_psi_and_jensen_shannon(rng):
    reference = pd.DataFrame({"project_id": rng.choice(["p1", "p2"], N)})
    current = pd.DataFrame({"project_id": rng.choice(["p1", "p2", "p3"], N)})
    row = _row(feature_drift(reference, current), "project_id")
    assert row["drifted"] and row["psi"] > 0.2


def test_constant_columns_do_not_crash_and_an_unchanged_constant_does_not_drift():
    reference = pd.DataFrame({"c": np.full(N, 3.0), "s": ["x"] * N})
    report = feature_drift(reference, reference.copy())
    assert not report["drifted"].any()
    assert np.allclose(report[["value", "psi"]].to_numpy(dtype=float), 0.0)

    explicit = DriftThresholds(groups={DEFAULT_GROUP: ("wasserstein", 0.1)})  # std 0: normed by Evidently's 0.001
    assert _row(feature_drift(reference, reference.copy(), explicit), "c")["value"] == 0.0


def test_a_constant_that_moves_to_another_value_drifts():
    reference = pd.DataFrame({"c": np.full(N, 3.0)})
    current = pd.DataFrame({"c": np.full(N, 4.0)})
    row = _row(feature_drift(reference, current), "c")
    assert row["drifted"] and row["psi"] > 1.0  # the "above the reference's range" bin
    explicit = DriftThresholds(groups={DEFAULT_GROUP: ("wasserstein", 0.1)})
    assert _row(feature_drift(reference, current, explicit), "c")["value"] == pytest.approx(1.0 / 0.001)


def test_all_nan_columns_are_judged_by_psi_on_the_missing_bin(rng):
    values = rng.normal(size=N)
    reference = pd.DataFrame({"gone": values, "never": np.full(N, np.nan), "back": np.full(N, np.nan)})
    current = pd.DataFrame({"gone": np.full(N, np.nan), "never": np.full(N, np.nan), "back": values})
    report = feature_drift(reference, current).set_index("feature")
    assert (report["statistic"] == "psi").all()
    assert report.loc["never", "value"] == 0.0 and not report.loc["never", "drifted"]
    assert report.loc["never", ["n_reference", "n_current"]].tolist() == [0, 0]
    assert report.loc["gone", "drifted"] and report.loc["gone", "missing_current"] == 1.0
    assert report.loc["back", "drifted"] and report.loc["back", "missing_reference"] == 1.0


def test_a_rise_in_missing_values_shows_in_psi_and_missing_shares(rng):
    reference = pd.DataFrame({"x": rng.normal(size=N)})
    current_values = rng.normal(size=N)
    current_values[: N // 2] = np.nan
    row = _row(feature_drift(reference, pd.DataFrame({"x": current_values})), "x")
    assert row["psi"] > 0.2
    assert row["missing_current"] == 0.5 and row["n_current"] == N // 2
    assert not row["drifted"]  # Wasserstein sees the values present only, as Evidently does


def test_infinities_count_as_missing(rng):
    values = rng.normal(size=N)
    current = values.copy()
    current[:10] = np.inf
    row = _row(feature_drift(pd.DataFrame({"x": values}), pd.DataFrame({"x": current})), "x")
    assert row["n_current"] == N - 10 and np.isfinite(row["value"])


def test_a_feature_missing_from_current_counts_as_all_missing(rng):
    report = feature_drift(pd.DataFrame({"x": rng.normal(size=N)}), pd.DataFrame({"y": rng.normal(size=N)}))
    row = _row(report, "x")
    assert row["n_current"] == 0 and row["drifted"]


def test_small_samples_use_evidentlys_p_value_tests(rng):
    reference = pd.DataFrame({
        "x": rng.normal(size=500),
        "few": rng.integers(0, 4, 500),
        "flag": rng.integers(0, 2, 500),
        "team_id": rng.choice(["a", "b", "c"], 500),
    })
    current = pd.DataFrame({
        "x": rng.normal(1.0, 1.0, 300),
        "few": rng.integers(0, 4, 300),
        "flag": rng.integers(0, 2, 300),
        "team_id": rng.choice(["a", "b", "c"], 300),
    })
    report = feature_drift(reference, current).set_index("feature")
    assert report["statistic"].to_dict() == {"x": "ks", "few": "chisquare", "flag": "z", "team_id": "chisquare"}
    assert (report["threshold"] == 0.05).all()
    assert report.loc["x", "value"] < 1e-6 and report.loc["x", "drifted"]  # p-value: small means drift
    assert not report.loc[["few", "flag", "team_id"], "drifted"].any()


def test_default_statistic_follows_evidentlys_choice():
    assert default_statistic("numeric", 1000, 50) == "ks"
    assert default_statistic("numeric", 1001, 50) == "wasserstein"
    assert default_statistic("numeric", 1001, 5) == "jensenshannon"
    assert default_statistic("numeric", 10, 4) == "chisquare"
    assert default_statistic("numeric", 10, 2) == "z"
    assert default_statistic("categorical", 5000, 2) == "jensenshannon"
    assert default_statistic("categorical", 500, 3) == "chisquare"


def test_feature_group_is_the_view_timestamps_apart():
    assert feature_group("team_id") == "user_profile_features"
    assert feature_group("open_tasks") == "user_activity_features"
    assert feature_group("project_velocity_7d") == "project_features"
    assert feature_group("created_at_unix") == TIMESTAMP_GROUP
    assert feature_group("skill_match") == DEFAULT_GROUP


def test_all_time_counts_and_tenure_are_reported_but_never_counted_by_default(rng):
    from maestro_ml.monitoring.drift import CUMULATIVE_GROUP

    assert feature_group("up_assignments_all") == feature_group("tenure_days") == CUMULATIVE_GROUP
    grown = pd.DataFrame({"up_assignments_all": rng.poisson(30, 5_000).astype(float)})
    report = feature_drift(pd.DataFrame({"up_assignments_all": rng.poisson(10, 5_000).astype(float)}), grown)
    assert report.loc[0, "value"] > report.loc[0, "threshold"] and not report.loc[0, "drifted"]


def test_timestamps_are_reported_but_never_drifted_by_default(rng):
    reference = pd.DataFrame({"created_at_unix": rng.integers(1_700_000_000, 1_700_100_000, N)})
    current = reference + 10_000_000
    row = _row(feature_drift(reference, current), "created_at_unix")
    assert row["group"] == TIMESTAMP_GROUP and row["value"] > 0.1 and not row["drifted"]
    assert _row(feature_drift(reference, current, DriftThresholds(ignored_groups=frozenset())),
                "created_at_unix")["drifted"]


def test_thresholds_are_set_per_group_and_numeric_statistics_leave_categoricals_on_auto(rng):
    reference = pd.DataFrame({"open_tasks": rng.poisson(3.0, N) * 1.0, "team_id": rng.choice(["a", "b"], N)})
    current = pd.DataFrame({"open_tasks": rng.poisson(3.3, N) * 1.0, "team_id": rng.choice(["a", "b"], N)})
    lax = DriftThresholds(groups={"user_activity_features": ("wasserstein", 0.5),
                                  "user_profile_features": ("wasserstein", 0.5)})
    report = feature_drift(reference, current, lax).set_index("feature")
    assert report.loc["open_tasks", ["statistic", "threshold"]].tolist() == ["wasserstein", 0.5]
    assert not report.loc["open_tasks", "drifted"]
    assert report.loc["team_id", ["statistic", "threshold"]].tolist() == ["jensenshannon", 0.1]
    strict = DriftThresholds(groups={"user_activity_features": ("wasserstein", 0.05)})
    assert _row(feature_drift(reference, current, strict), "open_tasks")["drifted"]


def test_unknown_statistics_are_rejected():
    with pytest.raises(ValueError, match="unknown statistic"):
        DriftThresholds(groups={"x": ("kl", 0.1)})  # type: ignore[dict-item]


def test_default_features_skip_datetimes_and_lists_and_categorical_can_be_forced(rng):
    reference = pd.DataFrame({
        "x": rng.normal(size=10),
        "event_timestamp": pd.date_range("2026-01-01", periods=10, tz="UTC"),
        "title_vector": [np.zeros(3)] * 10,
        "priority": rng.integers(1, 5, 10),
    })
    report = feature_drift(reference, reference.copy(), categorical=["priority"])
    assert list(report["feature"]) == ["x", "priority"]
    assert _row(report, "priority")["kind"] == "categorical"


def test_prediction_drift_compares_model_outputs(rng):
    reference = rng.normal(size=N)
    shifted = prediction_drift(reference, rng.normal(1.0, 1.0, N))
    first = shifted[["feature", "group", "statistic"]].iloc[0].tolist()
    assert first == ["prediction", PREDICTION_GROUP, "wasserstein"]
    assert shifted["drifted"].all()
    same = prediction_drift(pd.Series(reference, name="score"), pd.Series(rng.normal(size=N), name="score"))
    assert same["feature"].tolist() == ["score"] and not same["drifted"].any()

    outputs = pd.DataFrame({"score": reference, "duration_p50": rng.gamma(2.0, 5.0, N)})
    later = pd.DataFrame({"score": rng.normal(size=N), "duration_p50": rng.gamma(2.0, 8.0, N)})
    report = prediction_drift(outputs, later, DriftThresholds(groups={PREDICTION_GROUP: ("psi", 0.2)}))
    assert report.set_index("feature")["drifted"].to_dict() == {"score": False, "duration_p50": True}


def test_seventy_features_of_twenty_thousand_rows_are_each_judged_shuffled_rows_never_drift(rng):
    """A shuffle of the same rows is the same distribution (its speed is benchmarks/monitoring.py's figure)."""
    n = 20_000
    columns: dict[str, object] = {f"num_{i}": rng.normal(size=n) for i in range(60)}
    columns.update({f"int_{i}": rng.integers(0, 4, n) for i in range(5)})
    columns.update({f"cat_{i}": rng.choice(["a", "b", "c", "d"], n) for i in range(5)})
    reference = pd.DataFrame(columns)
    current = reference.sample(frac=1.0, random_state=1).reset_index(drop=True)
    report = feature_drift(reference, current)
    assert len(report) == 70 and not report["drifted"].any()


# --------------------------------------------------------------------------- the N-features-K-days rule

DAY0 = date(2026, 3, 1)


def _history(*counts: int, start: date = DAY0) -> dict[date, int]:
    return {start + timedelta(days=i): count for i, count in enumerate(counts)}


def test_rule_fires_exactly_on_the_kth_consecutive_day_not_one_day_before():
    before = drift_rule_state(_history(0, 5, 6), min_features=5, min_days=3)
    assert not before.fires and before.since_day is None and before.streak_days == 2
    assert before.streak_start == DAY0 + timedelta(days=1)
    crossed = drift_rule_state(_history(0, 5, 6, 5), min_features=5, min_days=3)
    assert crossed.fires and crossed.since_day == DAY0 + timedelta(days=3) == crossed.as_of
    later = drift_rule_state(_history(0, 5, 6, 5, 9), min_features=5, min_days=3)
    assert later.fires and later.since_day == DAY0 + timedelta(days=3) and later.streak_days == 4


def test_rule_needs_at_least_n_features_each_day():
    assert not drift_rule_state(_history(5, 4, 5), min_features=5, min_days=2).fires
    assert drift_rule_state(_history(5, 4, 5, 5), min_features=5, min_days=2).fires


def test_rule_resets_on_a_clean_day():
    state = drift_rule_state(_history(5, 5, 5, 0), min_features=5, min_days=3)
    assert not state.fires and state.streak_days == 0 and state.streak_start is None
    again = drift_rule_state(_history(5, 5, 5, 0, 5, 5), min_features=5, min_days=3)
    assert not again.fires and again.streak_days == 2


def test_rule_treats_a_missing_day_as_a_break_and_ignores_input_order():
    gap = {DAY0: 5, DAY0 + timedelta(days=1): 5, DAY0 + timedelta(days=3): 5}
    assert not drift_rule_state(gap, min_features=5, min_days=3).fires
    shuffled = dict(reversed(list(_history(5, 5, 5).items())))
    assert drift_rule_state(shuffled, min_features=5, min_days=3).since_day == DAY0 + timedelta(days=2)


def test_rule_with_one_day_fires_on_the_day_and_empty_history_never_fires():
    assert drift_rule_state(_history(7), min_features=1, min_days=1).fires
    empty = drift_rule_state({}, min_features=1, min_days=1)
    assert not empty.fires and empty.as_of is None
    with pytest.raises(ValueError):
        drift_rule_state(_history(1), min_features=0, min_days=1)


def test_psi_is_finite_even_with_empty_bins(rng):
    reference = pd.DataFrame({"x": rng.uniform(0, 1, N)})
    current = pd.DataFrame({"x": rng.uniform(5, 6, N)})
    row = _row(feature_drift(reference, current), "x")
    assert math.isfinite(row["psi"]) and row["psi"] > 1.0
