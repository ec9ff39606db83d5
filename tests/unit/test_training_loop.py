"""The PyTorch training loop is reproducible: the same seed gives the same weights on CPU."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from maestro_ml.training.loop import LoopConfig, fit, seed_everything


def _train(seed: int) -> dict[str, torch.Tensor]:
    seed_everything(seed)
    data = np.random.default_rng(0)
    x = torch.from_numpy(data.normal(size=(512, 8)).astype(np.float32))
    y = x @ torch.arange(8, dtype=torch.float32) + 0.1 * torch.from_numpy(data.normal(size=512).astype(np.float32))
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 1))

    def batches(rng: np.random.Generator) -> list[tuple[torch.Tensor, ...]]:
        order = torch.from_numpy(rng.permutation(len(x)))
        return [(x[order[i : i + 64]], y[order[i : i + 64]]) for i in range(0, len(x), 64)]

    def loss(m: nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return nn.functional.mse_loss(m(batch[0]).squeeze(-1), batch[1])

    def score(m: nn.Module) -> float:
        return -float(loss(m, (x, y)))

    config = LoopConfig(epochs=4, patience=10, device="cpu", seed=seed)
    fit(model, batches, loss, score, config, data_digest="d")
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_the_same_seed_trains_the_same_weights_on_cpu() -> None:
    first, again, other = _train(7), _train(7), _train(8)
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
