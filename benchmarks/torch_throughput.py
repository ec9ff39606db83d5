"""PyTorch training throughput of both models, per device: the 2-core CPU against a CUDA GPU where there is one.

Same models, data, batches and loop as the training entrypoint (``maestro_ml.training.loop.fit``:
AdamW, mixed precision on CUDA): the ranker's listwise scorer on padded decision groups and the
duration model's quantile MLP. Each device trains ``--epochs`` epochs (no early stopping) after one
warm-up epoch; the figure is training rows per second. Without a set (``--ranking-uri`` /
``--duration-uri``) it draws random data of the bench sets' shape, which is enough for throughput.

Run: ``.venv/bin/python benchmarks/torch_throughput.py [--ranking-uri .../train.parquet] [--devices cpu,cuda]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranking-uri", default=None)
    parser.add_argument("--duration-uri", default=None)
    parser.add_argument("--devices", default="cpu,cuda", help="those absent here are reported as not available")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--groups", type=int, default=26_000, help="random ranker groups (no --ranking-uri)")
    parser.add_argument("--group-size", type=int, default=47)
    parser.add_argument("--rows", type=int, default=26_000, help="random duration rows (no --duration-uri)")
    parser.add_argument("--features", type=int, default=69)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    return parser.parse_args()


def ranker_data(args: argparse.Namespace):
    import numpy as np

    from maestro_ml.training.ranker import padded_groups

    if args.ranking_uri:
        from maestro_ml.evaluation.ranking import observed_relevance
        from maestro_ml.training import data

        frame = data.read_frame(args.ranking_uri)
        features = data.feature_columns(frame)
        x = data.Standardizer.fit(frame, features).transform(frame)
        return padded_groups(x, observed_relevance(frame).to_numpy(dtype=np.float32), data.group_sizes(frame))
    rng = np.random.default_rng(0)
    sizes = np.full(args.groups, args.group_size)
    x = rng.standard_normal((int(sizes.sum()), args.features)).astype(np.float32)
    y = np.zeros(len(x), dtype=np.float32)
    y[np.cumsum(sizes) - 1] = 1.0
    return padded_groups(x, y, sizes)


def duration_data(args: argparse.Namespace):
    import numpy as np

    if args.duration_uri:
        from maestro_ml.training import data

        frame = data.read_frame(args.duration_uri)
        frame = frame[frame["outcome_duration_hours"] > 0]
        features = data.feature_columns(frame)
        x = data.Standardizer.fit(frame, features).transform(frame)
        return x, np.log(frame["outcome_duration_hours"].to_numpy(dtype=np.float32))
    rng = np.random.default_rng(0)
    return (rng.standard_normal((args.rows, args.features)).astype(np.float32),
            rng.standard_normal(args.rows).astype(np.float32))


def measure(model_name: str, device: str, args: argparse.Namespace, tensors: tuple) -> dict:
    import numpy as np
    import torch

    from maestro_ml.training.duration import QuantileMLP, pinball_loss
    from maestro_ml.training.loop import LoopConfig, fit
    from maestro_ml.training.ranker import ListwiseScorer, listwise_loss

    torch.set_num_threads(args.threads)
    if model_name == "ranker":
        xs, ys, mask = tensors
        model: torch.nn.Module = ListwiseScorer(xs.shape[-1])
        rows = int(mask.sum())

        def batches(rng: np.random.Generator) -> list:
            order = rng.permutation(len(xs))
            return [(torch.from_numpy(xs[i]), torch.from_numpy(ys[i]), torch.from_numpy(mask[i]))
                    for i in (order[s : s + args.batch_size] for s in range(0, len(order), args.batch_size))]

        def loss_fn(net: torch.nn.Module, batch: tuple) -> torch.Tensor:
            return listwise_loss(net(batch[0]), batch[1], batch[2])
    else:
        x, y = tensors
        model = QuantileMLP(x.shape[1])
        rows = len(x)

        def batches(rng: np.random.Generator) -> list:
            order = rng.permutation(len(x))
            return [(torch.from_numpy(x[i]), torch.from_numpy(y[i]))
                    for i in (order[s : s + args.batch_size] for s in range(0, len(order), args.batch_size))]

        def loss_fn(net: torch.nn.Module, batch: tuple) -> torch.Tensor:
            return pinball_loss(net(batch[0]), batch[1])

    def run(epochs: int) -> float:
        config = LoopConfig(epochs=epochs, patience=epochs + 1, device=device, seed=7)
        started = time.perf_counter()
        fit(model, batches, loss_fn, lambda _net: 0.0, config, data_digest="benchmark")
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started

    run(1)  # warm-up: CUDA context, kernels, allocator
    seconds = run(args.epochs)
    return {"model": model_name, "device": device, "rows": rows, "epochs": args.epochs,
            "seconds": round(seconds, 2), "rows_per_s": round(rows * args.epochs / seconds)}


def main() -> None:
    import torch

    args = parse_args()
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"# torch {torch.__version__}, Python {platform.python_version()}, CUDA device: {name}", flush=True)
    data = {"ranker": ranker_data(args), "duration": duration_data(args)}
    results = []
    for device in args.devices.split(","):
        for model_name, tensors in data.items():
            if device == "cuda" and not torch.cuda.is_available():
                results.append({"model": model_name, "device": device, "rows_per_s": None,
                                "note": "no CUDA device here"})
                continue
            results.append(measure(model_name, device, args, tensors))
            print(json.dumps(results[-1]), flush=True)
    cpu = {r["model"]: r["rows_per_s"] for r in results if r["device"] == "cpu"}
    print("\n| model | device | training rows/s | vs CPU |\n|---|---|---|---|")
    for r in results:
        ratio = f"{r['rows_per_s'] / cpu[r['model']]:.1f}x" if r["rows_per_s"] and cpu.get(r["model"]) else "-"
        print(f"| {r['model']} | {r['device']} | {r['rows_per_s'] or r.get('note')} | {ratio} |")


if __name__ == "__main__":
    main()
