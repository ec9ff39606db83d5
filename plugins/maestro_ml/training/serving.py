"""The served models and their MLflow pyfunc wrappers: what scoring loads by alias (``models:/<name>@champion``).

Each model travels as a bundle directory the trainers write and the pyfuncs read back:

* ``task_assignment`` (``EnsembleRanker``): ``lightgbm.txt`` (LightGBM's own text format),
  ``scorer.pt`` (the PyTorch scorer's ``state_dict``) and ``ensemble.json`` (features, blend weight,
  standardiser, the scorer's constructor arguments). Input: one row per (decision, candidate) with
  ``decision_id`` and the feature columns; output: one score per row.
* ``task_duration`` (``DurationModel``): ``weights.pt`` (``state_dict``) and ``duration.json``
  (features, standardiser, conformal margins, constructor arguments). Input: raw feature rows;
  output: the median and the calibrated 80% and 90% interval bounds, in hours.

Torch weights are ``state_dict``s loaded with ``weights_only=True``: no pickled module, no code runs
on load. Missing feature columns (an export without a field) are imputed like missing values.
The trainers import this module; it never imports them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from mlflow.pyfunc import PythonModel
from torch import nn

from maestro_ml.training import data
from maestro_ml.training.duration import Calibration, QuantileMLP, predict_log_quantiles
from maestro_ml.training.loop import outputs
from maestro_ml.training.ranker import ListwiseScorer, blend

DURATION_COLUMNS = ("p50_hours", "p80_lower_hours", "p80_upper_hours", "p90_lower_hours", "p90_upper_hours")


def feature_matrix(frame: pd.DataFrame, features: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """``frame``'s feature columns as floats, a missing column as all-missing (the models impute it)."""
    missing = [c for c in features if c not in frame.columns]
    if missing:
        frame = frame.assign(**{c: np.nan for c in missing})
    return frame[list(features)].apply(pd.to_numeric, errors="coerce")


def save_module(module: nn.Module, path: Path) -> dict[str, Any]:
    """Write ``module``'s ``state_dict`` to ``path``; returns its constructor arguments for the bundle's JSON."""
    torch.save(module.state_dict(), path)
    return dict(module.init_kwargs)  # type: ignore[arg-type]


def load_module(cls: type[nn.Module], init_kwargs: dict[str, Any], path: Path) -> nn.Module:
    module = cls(**init_kwargs)
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return module.eval()


# --------------------------------------------------------------------------- task assignment


class EnsembleRanker:
    """The served ranker: standardize, score with both models, blend within the request's group."""

    def __init__(self, booster: Any, scorer: Any, standardizer: data.Standardizer | None, features: list[str],
                 weight: float) -> None:
        self.booster, self.scorer, self.standardizer = booster, scorer, standardizer
        self.features, self.weight = features, weight
        if scorer is not None:
            scorer.eval()  # serving never trains: no dropout

    def torch_scores(self, frame: pd.DataFrame) -> np.ndarray:
        assert self.scorer is not None and self.standardizer is not None  # trained together
        return outputs(self.scorer, self.standardizer.transform(feature_matrix(frame, self.standardizer.columns)))\
            .astype(np.float64)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        x_raw = feature_matrix(frame, self.features).to_numpy(dtype=np.float64)
        lgb_scores = np.asarray(self.booster.predict(x_raw), dtype=np.float64)
        if self.scorer is None:  # trained with --ranker-models lightgbm
            return lgb_scores
        torch_scores = self.torch_scores(frame)
        groups = frame[data.GROUP_COLUMN] if data.GROUP_COLUMN in frame else pd.Series(np.zeros(len(frame)))
        sizes = groups.groupby(groups, sort=False).size().to_numpy() if len(frame) else np.zeros(0, dtype=np.int64)
        order = np.argsort(pd.factorize(groups)[0], kind="stable")
        blended = np.empty(len(frame))
        blended[order] = blend(lgb_scores[order], torch_scores[order], sizes, self.weight)
        return blended

    def save(self, bundle: Path) -> Path:
        bundle.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(bundle / "lightgbm.txt"))
        scorer = save_module(self.scorer, bundle / "scorer.pt") if self.scorer is not None else None
        (bundle / "ensemble.json").write_text(json.dumps(
            {"weight": self.weight, "features": self.features, "scorer": scorer,
             "standardizer": self.standardizer.to_dict() if self.standardizer else None}, indent=2))
        return bundle

    @classmethod
    def load(cls, bundle: Path) -> EnsembleRanker:
        import lightgbm as lgb

        meta = json.loads((bundle / "ensemble.json").read_text())
        booster = lgb.Booster(model_file=str(bundle / "lightgbm.txt"))
        # No scorer nor standardizer when the ranker was trained with --ranker-models lightgbm.
        scorer, standardizer = None, None
        if meta["scorer"] is not None:
            scorer = load_module(ListwiseScorer, meta["scorer"], bundle / "scorer.pt")
            standardizer = data.Standardizer.from_dict(meta["standardizer"])
        return cls(booster, scorer, standardizer, meta["features"], meta["weight"])


class EnsemblePyfunc(PythonModel):  # type: ignore[misc]
    """Input: one row per (decision, candidate) with ``decision_id`` and the feature columns; output: scores."""

    def load_context(self, context: Any) -> None:
        self.ensemble = EnsembleRanker.load(Path(context.artifacts["bundle"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        return self.ensemble.predict(model_input)


class TorchScorerPyfunc(PythonModel):  # type: ignore[misc]
    """The ranker's PyTorch scorer alone, on raw feature rows (the ensemble's standardiser applied): for analysis."""

    def load_context(self, context: Any) -> None:
        self.ensemble = EnsembleRanker.load(Path(context.artifacts["bundle"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        return self.ensemble.torch_scores(model_input)


# --------------------------------------------------------------------------- task duration


def log_estimate(frame: pd.DataFrame, missing: float = 0.0) -> np.ndarray:
    """log of the task's estimate in hours; ``missing`` (log-hours) where there is no positive estimate.

    The duration network learns log(duration) minus this offset; for the tasks without an estimate (most
    tasks in real trackers) the trainer passes the training median log duration of such tasks, so the
    network learns departures from a typical duration instead of a second, far-off scale.
    """
    if "estimated_hours" not in frame:
        return np.full(len(frame), missing)
    estimate = pd.to_numeric(frame["estimated_hours"], errors="coerce").to_numpy(dtype=np.float64)
    known = np.isfinite(estimate) & (estimate > 0)
    return np.where(known, np.log(np.where(known, estimate, 1.0)), missing)


# The assignee's recent slip enters the prior clipped: one task 10x over its estimate in an otherwise empty
# history is not a rule for the next one.
SLIP_PRIOR_BOUNDS = (0.25, 4.0)


def log_prior(frame: pd.DataFrame, missing: float = 0.0, fallback_slip: float | None = None) -> np.ndarray:
    """log of the duration expected before the model speaks, in hours: what the network learns departures from.

    With ``fallback_slip`` None: the task's estimate (``log_estimate``). Otherwise the estimate times the
    assignee's recent slip (``avg_slip_ratio_90d``, clipped to ``SLIP_PRIOR_BOUNDS``; ``fallback_slip``, the
    training median, where they have none): the slip baseline, so a network that learns nothing is that
    baseline, and one trained on a few weeks need not rediscover, from a standardised ratio, a rule that holds
    as histories grow. ``missing`` (log-hours) where there is no positive estimate.
    """
    base = log_estimate(frame, missing)
    if fallback_slip is None:
        return base
    estimate = _floats(frame, "estimated_hours")
    known = np.isfinite(estimate) & (estimate > 0)
    slip = _floats(frame, "avg_slip_ratio_90d")
    slip = np.clip(np.where(np.isfinite(slip) & (slip > 0), slip, fallback_slip), *SLIP_PRIOR_BOUNDS)
    return np.where(known, base + np.log(slip), base)


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)


class DurationModel:
    """The served duration model: hours from assignment to completion, the median and calibrated intervals."""

    def __init__(self, net: nn.Module, standardizer: data.Standardizer, calibration: Calibration,
                 missing_estimate_log_hours: float = 0.0, fallback_slip: float | None = None) -> None:
        self.net, self.standardizer, self.calibration = net, standardizer, calibration
        self.missing_estimate_log_hours = missing_estimate_log_hours
        self.fallback_slip = fallback_slip  # None: a model trained on the estimate alone (before the slip prior)

    @property
    def features(self) -> list[str]:
        return list(self.standardizer.columns)

    def log_quantiles(self, frame: pd.DataFrame) -> np.ndarray:
        """The network's 5 quantiles of log-hours (the log prior added back), before calibration."""
        x = self.standardizer.transform(feature_matrix(frame, self.standardizer.columns))
        prior = log_prior(frame, self.missing_estimate_log_hours, self.fallback_slip)
        return predict_log_quantiles(self.net, x) + prior[:, None]

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        q = self.log_quantiles(frame)
        intervals = self.calibration.intervals(q)
        columns = [np.exp(q[:, 2]), *intervals[80], *intervals[90]]
        return pd.DataFrame(dict(zip(DURATION_COLUMNS, columns, strict=True)), index=frame.index)

    def save(self, bundle: Path) -> Path:
        bundle.mkdir(parents=True, exist_ok=True)
        net = save_module(self.net, bundle / "weights.pt")
        (bundle / "duration.json").write_text(json.dumps(
            {"net": net, "standardizer": self.standardizer.to_dict(),
             "margins": {str(k): v for k, v in self.calibration.margins.items()},
             "missing_estimate_log_hours": self.missing_estimate_log_hours,
             "fallback_slip": self.fallback_slip}, indent=2))
        return bundle

    @classmethod
    def load(cls, bundle: Path) -> DurationModel:
        meta = json.loads((bundle / "duration.json").read_text())
        net = load_module(QuantileMLP, meta["net"], bundle / "weights.pt")
        calibration = Calibration({int(k): float(v) for k, v in meta["margins"].items()})
        fallback = meta.get("fallback_slip")
        return cls(net, data.Standardizer.from_dict(meta["standardizer"]), calibration,
                   float(meta.get("missing_estimate_log_hours", 0.0)), None if fallback is None else float(fallback))


class DurationPyfunc(PythonModel):  # type: ignore[misc]
    """Input: raw feature rows (the model's feature columns, ``estimated_hours`` among them); output: hours."""

    def load_context(self, context: Any) -> None:
        self.model = DurationModel.load(Path(context.artifacts["bundle"]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.model.predict(model_input)
