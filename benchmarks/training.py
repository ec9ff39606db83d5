"""Training benchmarks on the ``bench`` preset: training-set build, ranker speed and overhead, and the quality table.

Phases (each in its own process, so imports and peak memory are its own):

* ``sets``: the train / validation / test sets of both models through
  ``maestro_ml.features.steps.build_sets`` (the DAG's own step: the in-process point-in-time
  join), timed; baseline in the same run: Feast's ``get_historical_features`` on the file offline
  store (``engine="feast"``) for the first ``--feast-hours`` hours of decisions, rows/s.
* ``bare``: ``lightgbm.train`` alone on the training arrays (loaded beforehand, untimed), with
  the entrypoint's own parameters and early stopping: the floor.
* ``entrypoint``: ``python -m maestro_ml.training task_assignment --ranker-models lightgbm`` on the
  same files, wall time of the whole process (imports, loading, MLflow logging, evaluation, models).
  The ratio entrypoint / bare is the overhead.
* ``quality``: the full ranker (LightGBM + PyTorch ensemble) and the duration model, as the DAGs run
  them, with the simulator's truth; the table compares them with the baselines and the truth.

Run: ``.venv/bin/python benchmarks/training.py --home /tmp/bench/home`` on a home prepared by
``benchmarks/features.py --preset bench --phase prepare`` (``--phase prepare`` here does the same).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))

RUN_KEY = "benchmark"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="MAESTRO_HOME holding the bench lake and features")
    parser.add_argument("--phase", default="all", choices=["all", "sets", "bare", "entrypoint", "quality"])
    parser.add_argument("--train-days", type=float, default=5.0)
    parser.add_argument("--valid-days", type=float, default=2.0)
    parser.add_argument("--test-days", type=float, default=2.0)
    parser.add_argument("--feast-hours", type=float, default=2.0, help="decisions the Feast baseline joins")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--skip-sets", action="store_true", help="reuse the sets of an earlier run")
    return parser.parse_args()


def emit(payload: dict) -> None:
    payload["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(payload, default=float), flush=True)


def _sets_file() -> Path:
    from maestro_ml.settings import get_settings

    return Path(get_settings().home) / "benchmark-sets.json"


def phase_sets(args: argparse.Namespace) -> None:
    from maestro_ml.contracts.models import MODELS
    from maestro_ml.feast_ext.store import apply_if_changed, get_store
    from maestro_ml.features.steps import build_sets, training_window
    from maestro_ml.features.training_sets import training_set
    from maestro_ml.settings import get_settings
    from maestro_ml.storage import read_json

    settings = get_settings()
    apply_if_changed(settings)
    end = datetime.fromisoformat(read_json(f"{settings.truth_uri}/summary.json")["window_end"].replace("Z", "+00:00"))
    window = training_window(end=end, train_days=args.train_days, valid_days=args.valid_days,
                              test_days=args.test_days)
    written = {}
    for model, spec in MODELS.items():
        started = time.perf_counter()
        sets = build_sets(model, window, RUN_KEY, settings=settings)
        seconds = time.perf_counter() - started
        rows = sum(sets["rows"].values())
        written[model] = sets
        emit({"phase": "sets", "model": model, "engine": "local", "rows": sets["rows"], "groups": sets["groups"],
              "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds)})
        # Stock Feast on the first hours of the same training window: same service, same rows.
        lo = datetime.fromisoformat(window["train_start"])
        hi = lo + timedelta(hours=args.feast_hours)
        store = get_store(settings)
        started = time.perf_counter()
        frame = training_set(spec.training_set, lo, hi, store=store, engine="feast")
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        local = training_set(spec.training_set, lo, hi, store=store, engine="local")
        local_seconds = time.perf_counter() - started
        emit({"phase": "sets", "model": model, "engine": "feast", "window": f"{lo:%Y-%m-%d %H:%M}+{args.feast_hours}h",
              "rows": len(frame), "seconds": round(seconds, 1), "rows_per_s": round(len(frame) / seconds),
              "local_same_rows_seconds": round(local_seconds, 2), "same_rows": len(local) == len(frame)})
    _sets_file().write_text(json.dumps(written, indent=2))


def _ranker_arrays():
    import numpy as np

    from maestro_ml.evaluation.ranking import observed_relevance
    from maestro_ml.training import data

    uris = json.loads(_sets_file().read_text())["task_assignment"]["uris"]
    train, valid = data.read_frame(uris["train"]), data.read_frame(uris["valid"])
    features = data.feature_columns(train)
    return (
        train[features].to_numpy(dtype=np.float64), observed_relevance(train).to_numpy(dtype=np.float64),
        data.group_sizes(train), valid[features].to_numpy(dtype=np.float64),
        observed_relevance(valid).to_numpy(dtype=np.float64), data.group_sizes(valid), features,
    )


def phase_bare(args: argparse.Namespace) -> None:
    from maestro_ml.training.cli import parse_args as cli_args
    from maestro_ml.training.ranker import train_lightgbm
    from maestro_ml.training.train_ranker import lightgbm_config

    x_train, y_train, g_train, x_valid, y_valid, g_valid, features = _ranker_arrays()
    # The entrypoint's own settings for the same flags, so both sides train the same model.
    config = lightgbm_config(cli_args(["task_assignment", "--train-uri", "-", "--valid-uri", "-",
                                       "--threads", str(args.threads)]))
    started = time.perf_counter()
    booster, _ = train_lightgbm(x_train, y_train, g_train, x_valid, y_valid, g_valid, features, config)
    seconds = time.perf_counter() - started
    emit({"phase": "bare", "rows": len(x_train), "features": len(features), "groups": len(g_train),
          "seconds": round(seconds, 1), "best_iteration": booster.best_iteration, "trees": booster.num_trees()})


def _entrypoint(args: argparse.Namespace, model: str, *extra: str) -> dict:
    from maestro_ml.settings import get_settings

    sets = json.loads(_sets_file().read_text())[model]["uris"]
    tracking = f"sqlite:///{Path(get_settings().home) / 'benchmark-mlflow.db'}"
    cmd = [sys.executable, "-m", "maestro_ml.training", model, "--train-uri", sets["train"],
           "--valid-uri", sets["valid"], "--test-uri", sets["test"], "--truth-uri", get_settings().truth_uri,
           "--tracking-uri", tracking, "--threads", str(args.threads), "--run-tags", "dag_id=benchmark", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")}
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-6000:])
        raise SystemExit(f"training {model} failed")
    result = json.loads([line for line in out.stdout.splitlines() if line.startswith("{")][-1])
    from mlflow import MlflowClient

    run = MlflowClient(tracking_uri=tracking).get_run(result["run_id"])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_seconds": round(wall, 1), "in_process_seconds": result["seconds"], "peak_rss_mb": round(peak),
            "run_id": result["run_id"], "metrics": dict(run.data.metrics), "params": dict(run.data.params)}


def phase_entrypoint(args: argparse.Namespace) -> None:
    run = _entrypoint(args, "task_assignment", "--ranker-models", "lightgbm")
    m = run.pop("metrics")
    run.pop("params")
    print("RESULT " + json.dumps({"phase": "entrypoint", **run, **{k: round(m[k], 2) for k in (
        "lightgbm_train_seconds", "evaluation_seconds", "model_logging_seconds", "training_seconds",
        "lgb_best_iteration")}}), flush=True)


def phase_quality(args: argparse.Namespace) -> None:
    for model in ("task_assignment", "task_duration"):
        run = _entrypoint(args, model, "--epochs", str(args.epochs))
        print("RESULT " + json.dumps({"phase": "quality", "model": model, **run}, default=float), flush=True)


def run_phase(args: argparse.Namespace, phase: str) -> list[dict]:
    cmd = [sys.executable, __file__, "--home", args.home, "--phase", phase, "--train-days", str(args.train_days),
           "--valid-days", str(args.valid_days), "--test-days", str(args.test_days), "--feast-hours",
           str(args.feast_hours), "--threads", str(args.threads), "--epochs", str(args.epochs)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-6000:])
        raise SystemExit(f"phase {phase} failed")
    results = [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    for r in results:
        print(json.dumps({k: v for k, v in r.items() if k not in ("metrics", "params")}, default=float), flush=True)
    return results


def _quality_table(results: list[dict]) -> str:
    rows = ["| model | split | metric | model value | best baseline | truth / optimum |", "|---|---|---|---|---|---|"]
    for r in results:
        if r["phase"] != "quality":
            continue
        m = r["metrics"]
        for split in ("valid", "test"):
            if r["model"] == "task_assignment":
                baselines = {b: m.get(f"{split}_baseline_{b}_truth_ndcg_at_5", float("nan"))
                             for b in ("random", "least_loaded", "skill_overlap")}
                best = max(baselines, key=lambda b: baselines[b])
                for name in ("ensemble", "lightgbm", "torch"):
                    value = m.get(f"{split}_{name}_truth_ndcg_at_5", float("nan"))
                    rows.append(f"| ranker ({name}) | {split} | NDCG@5 vs truth | {value:.3f} | {best} "
                                f"{baselines[best]:.3f} ({value / baselines[best] - 1:+.0%}) | 1.000 |")
                rows.append(f"| ranker (ensemble) | {split} | NDCG@5 observed | "
                            f"{m.get(f'{split}_ensemble_ndcg_at_5', float('nan')):.3f} | - | - |")
            else:
                mae, slip, truth = (m.get(f"{split}_{k}", float("nan")) for k in
                                    ("model_mae", "baseline_slip_mae", "truth_mae"))
                rows.append(f"| duration | {split} | MAE hours | {mae:.2f} ({mae / truth:.2f}x truth) | slip "
                            f"{slip:.2f} | {truth:.2f} |")
                rows.append(f"| duration | {split} | coverage 80% / 90% | "
                            f"{m.get(f'{split}_model_coverage80', float('nan')):.3f} / "
                            f"{m.get(f'{split}_model_coverage90', float('nan')):.3f} | - | 0.80 / 0.90 |")
    return "\n".join(rows)


def main() -> None:
    args = parse_args()
    os.environ["MAESTRO_HOME"] = args.home
    os.environ.setdefault("MAESTRO_PII_KEY", "benchmark-only-key")
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{Path(args.home) / 'benchmark-mlflow.db'}")
    phases = {"sets": phase_sets, "bare": phase_bare, "entrypoint": phase_entrypoint, "quality": phase_quality}
    if args.phase != "all":
        return phases[args.phase](args)
    print(f"# training benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, MAESTRO_HOME={args.home}", flush=True)
    results: list[dict] = []
    for phase in (["bare", "entrypoint", "quality"] if args.skip_sets else list(phases)):
        results += run_phase(args, phase)
    bare = next((r for r in results if r["phase"] == "bare"), None)
    entry = next((r for r in results if r["phase"] == "entrypoint"), None)
    if bare and entry:
        print(f"\nranker: bare lightgbm.train {bare['seconds']} s on {bare['rows']:,} rows x {bare['features']}; "
              f"entrypoint {entry['wall_seconds']} s wall ({entry['lightgbm_train_seconds']} s of it LightGBM): "
              f"overhead {entry['wall_seconds'] / bare['seconds']:.2f}x")
    print("\n" + _quality_table(results))


if __name__ == "__main__":
    main()
