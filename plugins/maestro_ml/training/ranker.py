"""The task-assignment ranker: LightGBM LambdaMART, a PyTorch listwise scorer, and their weighted ensemble.

Groups are assignment decisions (``decision_id``): one task, every eligible candidate at that
moment. Labels are graded relevance from observed outcomes (``maestro_ml.evaluation.ranking.
observed_relevance``): 2 when the candidate was chosen and delivered on time, 1 when chosen and
late or moved away, 0 when not chosen. The ensemble adds the two models' scores after z-scoring
each within its group, with the LightGBM weight chosen on the validation set (NDCG@5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    import lightgbm as lgb

ENSEMBLE_WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))


@dataclass
class LightGBMConfig:
    num_leaves: int = 31
    learning_rate: float = 0.08
    num_boost_round: int = 300
    early_stopping_rounds: int = 30
    min_data_in_leaf: int = 50
    feature_fraction: float = 0.9
    max_bin: int = 63
    num_threads: int = 0  # 0: all cores
    seed: int = 7
    extra: dict[str, Any] = field(default_factory=dict)

    def params(self) -> dict[str, Any]:
        return {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [1, 3, 5, 10],
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "max_bin": self.max_bin,
            "num_threads": self.num_threads or os.cpu_count() or 1,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
            **self.extra,
        }


def train_lightgbm(
    x_train: np.ndarray,
    y_train: np.ndarray,
    groups_train: np.ndarray,
    x_valid: np.ndarray,
    y_valid: np.ndarray,
    groups_valid: np.ndarray,
    feature_names: list[str],
    config: LightGBMConfig,
) -> tuple[lgb.Booster, dict[str, list[float]]]:
    """LambdaMART with early stopping on validation NDCG; returns the booster and the NDCG@k curves."""
    # Imported here, not at the top: serving (the duration pyfunc included) imports this module.
    import lightgbm as lgb

    train_set = lgb.Dataset(x_train, label=y_train, group=groups_train, feature_name=feature_names,
                            free_raw_data=False)
    valid_set = lgb.Dataset(x_valid, label=y_valid, group=groups_valid, reference=train_set)
    curves: dict[str, Any] = {}
    booster = lgb.train(
        config.params(),
        train_set,
        num_boost_round=config.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[
            lgb.early_stopping(config.early_stopping_rounds, first_metric_only=False, verbose=False),
            lgb.record_evaluation(curves),
        ],
    )
    return booster, {k: list(v) for k, v in curves.get("valid", {}).items()}


class ListwiseScorer(nn.Module):
    """An MLP scoring one (task, candidate) row; trained with a listwise softmax loss per group."""

    def __init__(self, n_features: int, hidden: int = 64, dropout: float = 0.1) -> None:
        super().__init__()
        # Saved beside the state_dict, so the served model rebuilds the module without unpickling code.
        self.init_kwargs = {"n_features": n_features, "hidden": hidden, "dropout": dropout}
        self.net = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def padded_groups(x: np.ndarray, y: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows as [groups, max_size, features] with a mask, so a listwise loss is one batched op."""
    width = int(sizes.max()) if len(sizes) else 1
    n = len(sizes)
    xs = np.zeros((n, width, x.shape[1]), dtype=np.float32)
    ys = np.zeros((n, width), dtype=np.float32)
    mask = np.zeros((n, width), dtype=bool)
    group = np.repeat(np.arange(n), sizes)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    position = np.arange(len(x)) - np.repeat(offsets, sizes)
    xs[group, position] = x
    ys[group, position] = y
    mask[group, position] = True
    return xs, ys, mask


def listwise_loss(scores: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """ListNet: cross-entropy between softmax(scores) and the groups' label distribution (2^rel - 1 gains)."""
    neg = torch.finfo(scores.dtype).min / 4
    scores = scores.masked_fill(~mask, neg)
    gains = (torch.pow(2.0, labels) - 1.0).masked_fill(~mask, 0.0)
    total = gains.sum(dim=1, keepdim=True)
    keep = total.squeeze(1) > 0  # a group without any relevant candidate teaches nothing
    target = gains / total.clamp(min=1e-9)
    log_p = torch.log_softmax(scores, dim=1)
    loss = -(target * log_p).sum(dim=1)
    return loss[keep].mean() if bool(keep.any()) else scores.sum() * 0.0


def group_zscore(scores: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Scores standardized within each group, so two models' scales can be mixed."""
    group = np.repeat(np.arange(len(sizes)), sizes)
    counts = sizes.astype(np.float64)
    means = np.bincount(group, weights=scores, minlength=len(sizes)) / counts
    centred = scores - means[group]
    var = np.bincount(group, weights=centred**2, minlength=len(sizes)) / counts
    return centred / np.sqrt(np.where(var > 1e-12, var, 1.0))[group]


def blend(lgb_scores: np.ndarray, torch_scores: np.ndarray, sizes: np.ndarray, weight: float) -> np.ndarray:
    return weight * group_zscore(lgb_scores, sizes) + (1.0 - weight) * group_zscore(torch_scores, sizes)
