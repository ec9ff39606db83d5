"""maestro_ml.monitoring.drift gives Evidently 0.7's own numbers: normed Wasserstein, Jensen-Shannon, KS and the
small-sample chi-square and z p-values, with the stattest Evidently picks by default, computed through its public
API (``Report`` with ``DataDriftPreset`` and ``ValueDrift``) on synthetic columns with missing values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from maestro_ml.monitoring.drift import DEFAULT_GROUP, DriftThresholds, feature_drift

evidently = pytest.importorskip(
    "evidently", reason="evidently is not installed (pip install evidently==0.7.23, listed in requirements.txt)"
)

# Evidently's display names of its stattests -> ours.
METHODS = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
}
NUMERIC = ["normal", "shifted", "wide", "few_values", "constant"]
CATEGORICAL = ["team", "new_category", "flag"]


def _frames(n_reference: int, n_current: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(n: int, moved: bool) -> pd.DataFrame:
        normal = rng.normal(0.0, 1.0, n)
        normal[rng.random(n) < 0.1] = np.nan
        return pd.DataFrame({
            "normal": normal,
            "shifted": rng.normal(1.0 if moved else 0.0, 1.0, n),
            "wide": rng.gamma(2.0, 3.0 if moved else 2.0, n).astype("float32"),
            "few_values": rng.integers(0, 4, n).astype(float),
            "constant": np.full(n, 2.5),
            "team": rng.choice(["a", "b", "c", "d"], n, p=[0.1, 0.2, 0.3, 0.4] if moved else [0.25] * 4),
            "new_category": rng.choice(["x", "y", "z"] if moved else ["x", "y"], n),
            "flag": rng.choice(["yes", "no"], n, p=[0.3, 0.7] if moved else [0.5, 0.5]),
        })

    return frame(n_reference, False), frame(n_current, True)


def _evidently_values(reference: pd.DataFrame, current: pd.DataFrame, *metrics: object) -> dict[str, tuple[str, float]]:
    """column -> (our statistic name, Evidently's value), from a Report's snapshot."""
    from evidently import DataDefinition, Dataset, Report

    definition = DataDefinition(numerical_columns=NUMERIC, categorical_columns=CATEGORICAL)
    snapshot = Report(list(metrics)).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    values = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":ValueDrift"):
            values[config["column"]] = (METHODS.get(config["method"], config["method"]), float(metric["value"]))
    return values


def _ours(report: pd.DataFrame) -> dict[str, tuple[str, float]]:
    return {row.feature: (row.statistic, float(row.value)) for row in report.itertuples()}


def _assert_same(ours: dict[str, tuple[str, float]], theirs: dict[str, tuple[str, float]]) -> None:
    assert set(theirs) <= set(ours)
    for column, (method, value) in theirs.items():
        assert ours[column][0] == method, column
        assert ours[column][1] == pytest.approx(value, rel=1e-6, abs=1e-9), column


@pytest.mark.parametrize(("n_reference", "n_current"), [(5000, 3000), (800, 400)], ids=["large", "small"])
def test_default_stattests_and_values_equal_evidentlys_data_drift_preset(n_reference, n_current):
    from evidently.presets import DataDriftPreset

    reference, current = _frames(n_reference, n_current)
    theirs = _evidently_values(reference, current, DataDriftPreset())
    ours = _ours(feature_drift(reference, current, categorical=CATEGORICAL))
    assert set(theirs) == set(NUMERIC + CATEGORICAL)
    expected = {"large": {"normal": "wasserstein", "team": "jensenshannon", "few_values": "jensenshannon"},
                "small": {"normal": "ks", "team": "chisquare", "flag": "z"}}
    size = "large" if n_reference > 1000 else "small"
    assert {c: theirs[c][0] for c in expected[size]} == expected[size]
    _assert_same(ours, theirs)


@pytest.mark.parametrize("method", ["wasserstein", "jensenshannon", "ks"])
def test_each_statistic_chosen_explicitly_equals_evidentlys_value_drift(method):
    from evidently.metrics import ValueDrift

    reference, current = _frames(4000, 2500, seed=11)
    columns = NUMERIC if method != "jensenshannon" else NUMERIC + CATEGORICAL
    theirs = _evidently_values(reference, current, *(ValueDrift(column=c, method=method) for c in columns))
    thresholds = DriftThresholds(groups={DEFAULT_GROUP: (method, 0.1)})  # type: ignore[dict-item]
    ours = _ours(feature_drift(reference, current, thresholds, features=columns, categorical=CATEGORICAL))
    assert set(theirs) == set(columns)
    _assert_same(ours, theirs)
