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
from maestro_ml.training.serving import DURATION_COLUMNS, DurationModel, EnsembleRanker

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
