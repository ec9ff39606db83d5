"""Device-agnostic PyTorch training: seeds, CUDA with mixed precision when present, early stopping, checkpoints.

A retried pod resumes from the last checkpoint in ``checkpoint_dir`` (model, optimizer, epoch,
best score and the patience counter), so a preempted GPU node costs one epoch, not the run.
The checkpoint carries the digest of the training data: a checkpoint of other data is ignored.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def deterministic_kernels(device: torch.device) -> None:
    """Deterministic CUDA kernels where they exist; warn (not fail) where an op has none.

    Only on CUDA: the CPU kernels these MLPs use (linear, activations, layer norm, AdamW) are
    already deterministic for a fixed thread count, and the switch imports torch's compiler
    stack (2–3 s of every run). Before the first CUDA call, which reads the cuBLAS setting.
    """
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


@dataclass
class LoopConfig:
    epochs: int = 30
    patience: int = 5
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    batch_size: int = 256
    device: str = "auto"
    checkpoint_dir: str | None = None
    seed: int = 7


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of a PyTorch model trained by ``fit`` (both models have one)."""
    group = parser.add_argument_group("PyTorch")
    group.add_argument("--epochs", type=int, default=30, help="most epochs (early stopping may end sooner)")
    group.add_argument("--patience", type=int, default=5, help="epochs without a better validation score before stopping")
    group.add_argument("--hidden", type=int, default=64, help="width of the MLP's hidden layers")
    group.add_argument("--dropout", type=float, default=0.1, help="dropout after the first hidden layer")
    group.add_argument("--learning-rate", type=float, default=2e-3, help="AdamW learning rate")
    group.add_argument("--batch-size", type=int, default=512, help="rows (duration) or groups (ranker) per batch")


@dataclass
class LoopResult:
    best_score: float
    best_epoch: int
    epochs_run: int
    history: list[dict[str, float]]
    resumed_from_epoch: int | None
    device: str


def outputs(model: nn.Module, x: np.ndarray, batch: int = 65_536) -> np.ndarray:
    """``model(x)`` as float32 numpy on whatever device the model is on (validation runs mid-training, on the GPU)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        parts = [model(torch.from_numpy(x[i : i + batch]).to(device)).float().cpu().numpy()
                 for i in range(0, len(x), batch)]
    return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)


def fit(
    model: nn.Module,
    batches: Callable[[np.random.Generator], list[tuple[torch.Tensor, ...]]],
    loss_fn: Callable[[nn.Module, tuple[torch.Tensor, ...]], torch.Tensor],
    validate: Callable[[nn.Module], float],
    config: LoopConfig,
    data_digest: str,
) -> LoopResult:
    """Train ``model`` until validation (higher is better) stops improving; the best weights are loaded at the end.

    ``batches(rng)`` returns the epoch's batches (the rng orders them deterministically per epoch).
    """
    device = pick_device(config.device)
    deterministic_kernels(device)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    use_amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best_score, best_epoch, stale = 0, -np.inf, -1, 0
    best_state: dict[str, Any] | None = None
    history: list[dict[str, float]] = []
    checkpoint = Path(config.checkpoint_dir) / "checkpoint.pt" if config.checkpoint_dir else None
    resumed = None
    if checkpoint is not None and checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=True)
        if state.get("data_digest") == data_digest:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start_epoch, best_score, best_epoch, stale = state["epoch"] + 1, state["best_score"], state["best_epoch"], state["stale"]
            best_state, history = state["best_model"], state["history"]
            resumed = state["epoch"]
            log.info("resumed from checkpoint after epoch %d", resumed)
        else:
            log.warning("ignoring checkpoint of other data (%s)", checkpoint)

    epoch = start_epoch - 1
    for epoch in range(start_epoch, config.epochs):
        if stale >= config.patience:
            break
        rng = np.random.default_rng(config.seed + epoch)
        model.train()
        losses = []
        for batch in batches(rng):
            batch = tuple(t.to(device, non_blocking=True) for t in batch)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                loss = loss_fn(model, batch)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
        model.eval()
        with torch.no_grad():
            score = float(validate(model))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                        "valid_score": score})
        if score > best_score + 1e-6:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            tmp = checkpoint.with_suffix(".tmp")
            torch.save(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                 "best_score": best_score, "best_epoch": best_epoch, "stale": stale, "best_model": best_state,
                 "history": history, "data_digest": data_digest},
                tmp,
            )
            os.replace(tmp, checkpoint)  # a pod killed mid-save keeps the previous checkpoint
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu").eval()
    return LoopResult(float(best_score), best_epoch, epoch + 1, history, resumed, device.type)
