"""The duration model's prior: the estimate alone against the estimate times the assignee's recent slip.

Both trained by the training CLI on the same training sets, with the same seeds, then judged the way
``promote_models`` judges a first champion: on the promotion holdout (the days after the training window,
ending at the outcome maturity), against the strongest baseline fitted on what was known before the holdout,
with the paired bootstrap of the per-task absolute error, and on interval coverage.

Needs a ``MAESTRO_HOME`` after ``make demo`` (or ``make up``): its newest duration training sets and its
newest duration promotion holdout.

Run: ``.venv/bin/python benchmarks/duration_prior.py --home .maestro/demo [--seeds 7 8 9]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))

PRIORS = ("estimate", "estimate_x_slip")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=str(REPO_ROOT / ".maestro" / "demo"), help="MAESTRO_HOME after make demo")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9], help="training seeds (one model each)")
    parser.add_argument("--epochs", type=int, default=30, help="training epochs (make demo's duration knob)")
    return parser.parse_args()


def newest(paths: list[Path], what: str) -> Path:
    if not paths:
        raise SystemExit(f"no {what} under MAESTRO_HOME: run make demo first")
    return max(paths, key=lambda p: p.stat().st_mtime)


def train(prior: str, seed: int, sets: Path, tracking_uri: str, epochs: int) -> str:
    cmd = [sys.executable, "-m", "maestro_ml.training", "task_duration", "--train-uri", str(sets / "train.parquet"),
           "--valid-uri", str(sets / "valid.parquet"), "--test-uri", str(sets / "test.parquet"),
           "--tracking-uri", tracking_uri, "--seed", str(seed), "--epochs", str(epochs), "--prior", prior,
           "--run-name", f"prior-{prior}-seed-{seed}"]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")})
    if done.returncode != 0:
        raise SystemExit(f"training failed ({prior}, seed {seed}):\n{done.stderr[-3000:]}")
    return str(json.loads(done.stdout.strip().splitlines()[-1])["run_id"])


def main() -> int:
    args = parse_args()
    os.environ["MAESTRO_HOME"] = args.home
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    import mlflow
    import numpy as np
    import pandas as pd

    from maestro_ml.promotion import gates as g
    from maestro_ml.promotion.evaluate import TARGET, duration_history, score_duration, strongest_baseline
    from maestro_ml.settings import get_settings

    settings = get_settings()
    lake = Path(settings.lake_uri)
    holdout_path = newest(list(lake.glob("_promotion/task_duration/*/holdout.parquet")), "duration promotion holdout")
    frame = pd.read_parquet(holdout_path)
    frame = frame[frame[TARGET].notna() & (frame[TARGET] > 0)].reset_index(drop=True)
    start = pd.Timestamp(frame["assigned_at"].min()).floor("D").to_pydatetime()
    # The sets the judged model was trained on: the newest whose test split ends before the holdout (a retraining
    # after it, as make demo's, has the holdout inside its window).
    before = [p.parent for p in lake.glob("training_sets/task_duration/*/test.parquet")
              if pd.read_parquet(p, columns=["assigned_at"])["assigned_at"].max() < pd.Timestamp(start)]
    sets = newest(before, "duration training sets before the holdout")
    end = pd.Timestamp(frame["assigned_at"].max()).ceil("D").to_pydatetime()
    history = duration_history(settings, start)
    baseline = strongest_baseline("task_duration", frame, settings, start, end, history=history)
    print(f"sets {sets.name}; holdout {start:%Y-%m-%d}..{end:%Y-%m-%d}, {len(frame)} completed assignments; "
          f"strongest baseline: {baseline.label}, MAE {np.mean(baseline.per_unit):.2f} h "
          f"({len(history)} earlier completions)")
    tracking = f"sqlite:///{tempfile.mkdtemp(prefix='duration-prior-')}/mlflow.db"
    mlflow.set_tracking_uri(tracking)
    rows = []
    for seed in args.seeds:
        for prior in PRIORS:
            run_id = train(prior, seed, sets, tracking, args.epochs)
            model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
            scored = score_duration(prior, model.predict(frame[model.metadata.get_input_schema().input_names()]), frame)
            gates = g.primary_gate(scored.per_unit, baseline.per_unit, higher_is_better=False, margin=0.0,
                                   against=baseline.label, metric="abs_error_hours")
            lo95 = next(gate for gate in gates if gate.name.endswith("_lo95"))
            rows.append({"prior": prior, "seed": seed, "mae_h": round(float(np.mean(scored.per_unit)), 3),
                         "vs_baseline_lo95": lo95.value, "beats_baseline": lo95.passed,
                         "coverage80": round(scored.report.get("coverage80", float("nan")), 3),
                         "coverage90": round(scored.report.get("coverage90", float("nan")), 3)})
            print(json.dumps(rows[-1]), flush=True)
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False))
    print(table.groupby("prior")[["mae_h", "coverage80", "coverage90"]].mean().round(3).to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
