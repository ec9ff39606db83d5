"""The ensemble ranker as an MLflow pyfunc: what the scoring DAG loads by alias (``models:/...@champion``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class EnsemblePyfunc(PythonModel):  # type: ignore[misc]
    """Input: one row per (decision, candidate) with ``decision_id`` and the feature columns; output: scores."""

    def load_context(self, context: Any) -> None:
        import lightgbm as lgb
        import torch

        from maestro_ml.training.data import Standardizer
        from maestro_ml.training.train_ranker import EnsembleRanker

        bundle = Path(context.artifacts["bundle"])
        meta = json.loads((bundle / "ensemble.json").read_text())
        booster = lgb.Booster(model_file=str(bundle / "lightgbm.txt"))
        # No scorer nor standardizer when the ranker was trained with --ranker-models lightgbm.
        scorer, standardizer, std = None, None, meta["standardizer"]
        if std is not None:
            standardizer = Standardizer(tuple(std["columns"]), np.array(std["medians"]), np.array(std["means"]),
                                        np.array(std["scales"]))
        if (bundle / "scorer.pt").exists():
            scorer = torch.load(bundle / "scorer.pt", weights_only=False)
            scorer.eval()
        self.ensemble = EnsembleRanker(booster, scorer, standardizer, meta["features"], meta["weight"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        return self.ensemble.predict(model_input)
