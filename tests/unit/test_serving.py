"""The served models round-trip through their bundles: state_dicts and JSON, no pickled modules."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import torch

from maestro_ml.training import data
from maestro_ml.training.duration import Calibration, QuantileMLP
from maestro_ml.training.ranker import ListwiseScorer
from maestro_ml.training.serving import DURATION_COLUMNS, DurationModel, EnsembleRanker, log_estimate, log_prior

FEATURES = ["estimated_hours", "load", "skill_match"]


def _frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "decision_id": np.repeat([f"d{i}" for i in range(n // 6)], 6),
        "estimated_hours": rng.uniform(1, 20, n),
        "load": rng.uniform(0, 1, n),
        "skill_match": rng.uniform(0, 1, n),
    })


def _duration_model(frame: pd.DataFrame) -> DurationModel:
    torch.manual_seed(0)
    return DurationModel(QuantileMLP(len(FEATURES), hidden=8), data.Standardizer.fit(frame, FEATURES),
                         Calibration({80: 0.1, 90: 0.25}))


def test_the_duration_bundle_predicts_what_the_trained_model_predicts(tmp_path: Path) -> None:
    frame = _frame()
    model = _duration_model(frame)
    loaded = DurationModel.load(model.save(tmp_path / "duration"))
    expected = model.predict(frame)
    assert list(expected.columns) == list(DURATION_COLUMNS)
    pd.testing.assert_frame_equal(loaded.predict(frame), expected)
    assert (expected["p80_lower_hours"] < expected["p80_upper_hours"]).all()
    assert (expected["p90_lower_hours"] <= expected["p80_lower_hours"]).all()
    assert not any(p.suffix == ".pkl" for p in (tmp_path / "duration").iterdir())


def test_the_duration_model_takes_raw_rows_with_missing_fields_and_extra_columns(tmp_path: Path) -> None:
    frame = _frame()
    model = _duration_model(frame)
    raw = frame.drop(columns=["load"]).assign(title="free text", estimated_hours=frame["estimated_hours"].astype(object))
    raw.loc[0, "estimated_hours"] = None
    predicted = model.predict(raw)
    assert len(predicted) == len(raw) and np.isfinite(predicted.to_numpy()).all()


def test_the_duration_prior_is_the_slip_baseline_clipped_with_the_training_slip_where_a_user_has_no_history() -> None:
    frame = pd.DataFrame({"estimated_hours": [4.0, 4.0, 4.0, None, 4.0],
                          "avg_slip_ratio_90d": [1.5, None, 50.0, 2.0, 0.0]})
    prior = np.exp(log_prior(frame, missing=np.log(9.0), fallback_slip=1.2))
    np.testing.assert_allclose(prior, [6.0, 4.8, 16.0, 9.0, 4.8])  # slip, fallback, clipped to 4x, no estimate
    np.testing.assert_allclose(log_prior(frame, np.log(9.0), None), log_estimate(frame, np.log(9.0)))
    no_column = np.exp(log_prior(frame.drop(columns="avg_slip_ratio_90d"), np.log(9.0), 1.2))
    np.testing.assert_allclose(no_column, [4.8, 4.8, 4.8, 9.0, 4.8])


def test_a_duration_bundle_keeps_its_prior_and_one_saved_before_the_slip_prior_loads_on_the_estimate(
    tmp_path: Path,
) -> None:
    import json

    frame = _frame().assign(avg_slip_ratio_90d=np.linspace(0.5, 3.0, 60))
    base = _duration_model(frame)
    with_slip = DurationModel(base.net, base.standardizer, base.calibration, 1.0, fallback_slip=1.3)
    loaded = DurationModel.load(with_slip.save(tmp_path / "slip"))
    assert loaded.fallback_slip == 1.3
    pd.testing.assert_frame_equal(loaded.predict(frame), with_slip.predict(frame))
    assert not np.allclose(with_slip.predict(frame).to_numpy(), base.predict(frame).to_numpy())
    old = base.save(tmp_path / "old")
    meta = json.loads((old / "duration.json").read_text())
    meta.pop("fallback_slip")  # a bundle written before the slip prior existed
    (old / "duration.json").write_text(json.dumps(meta))
    assert DurationModel.load(old).fallback_slip is None
    pd.testing.assert_frame_equal(DurationModel.load(old).predict(frame), base.predict(frame))


def test_torch_weights_load_without_unpickling_code(tmp_path: Path) -> None:
    frame = _frame()
    model = _duration_model(frame)
    model.save(tmp_path / "duration")
    state = torch.load(tmp_path / "duration" / "weights.pt", weights_only=True)
    assert set(state) == set(model.net.state_dict())


@pytest.mark.parametrize("with_scorer", [True, False])
def test_the_ranker_bundle_scores_what_the_trained_ensemble_scores(tmp_path: Path, with_scorer: bool) -> None:
    frame = _frame(seed=1)
    labels = (frame["skill_match"] > 0.5).astype(int)
    train = lgb.Dataset(frame[FEATURES].to_numpy(), label=labels, group=[6] * 10, feature_name=FEATURES)
    booster = lgb.train({"objective": "lambdarank", "verbosity": -1, "min_data_in_leaf": 2, "seed": 7}, train,
                        num_boost_round=5)
    scorer = ListwiseScorer(len(FEATURES), hidden=8) if with_scorer else None
    standardizer = data.Standardizer.fit(frame, FEATURES) if with_scorer else None
    ensemble = EnsembleRanker(booster, scorer, standardizer, FEATURES, 0.6 if with_scorer else 1.0)
    loaded = EnsembleRanker.load(ensemble.save(tmp_path / "ensemble"))
    np.testing.assert_allclose(loaded.predict(frame), ensemble.predict(frame))
    assert (loaded.scorer is None) == (not with_scorer)
