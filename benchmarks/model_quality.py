"""Model quality against the baselines a sceptic would use, from the evaluation a training run logged.

Reads ``evaluation.json`` of the latest run of each model in a ``make demo`` home's MLflow store and
prints Markdown tables for ``benchmarks/README.md``:

* ranker: hits@1, hits@5, NDCG@5, MRR and candidate coverage of the model and of every baseline
  (misses count 0), and the paired bootstrap 95% interval of NDCG@5 minus the strongest baseline;
* duration: MAE of the model and of every baseline, interval coverage, mean width and interval score.

Run after ``MAESTRO_DEMO_HOME=/tmp/demo make demo`` (``MAESTRO_DEMO_PRESET=tracker`` for the tracker preset)::

    .venv/bin/python benchmarks/model_quality.py /tmp/demo [--split valid|test]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path, help="the MAESTRO_HOME of a finished make demo")
    parser.add_argument("--split", choices=("valid", "test"), default="test", help="which held-out split to report")
    return parser.parse_args()


def latest_evaluation(home: Path, experiment: str) -> dict[str, Any]:
    files = sorted((home / "mlflow" / "artifacts" / experiment).glob("*/artifacts/evaluation.json"),
                   key=lambda p: p.stat().st_mtime)
    if not files:
        raise SystemExit(f"no evaluation.json under {home}/mlflow/artifacts/{experiment}: run make demo first")
    result: dict[str, Any] = json.loads(files[-1].read_text())
    return result


def ranker_table(split: dict[str, Any]) -> list[str]:
    rows = ["| scorer | hits@1 | hits@5 | NDCG@5 | MRR | coverage | decisions |", "|---|---|---|---|---|---|---|"]
    names = ["ensemble", "lightgbm", "torch", *sorted(k for k in split if k.startswith("baseline_")
                                                     and not k.endswith("_truth"))]
    for name in names:
        r = split.get(name)
        if not isinstance(r, dict) or "ndcg@5" not in r:
            continue
        rows.append(f"| {name.removeprefix('baseline_')}{'' if name.startswith('baseline_') else ' (model)'} | "
                    f"{r['hits@1']:.3f} | {r['hits@5']:.3f} | {r['ndcg@5']:.3f} | {r['mrr']:.3f} | "
                    f"{r['coverage']:.3f} | {r.get('all_groups', r.get('groups'))} |")
    best = split.get("ensemble_vs_best_baseline") or {}
    if best:
        rows.append("")
        rows.append(f"NDCG@5 of the ensemble minus `{best['baseline']}`: {best['ndcg@5_diff']:+.3f}, paired bootstrap "
                    f"95% [{best['ndcg@5_diff_lo95']:+.3f}, {best['ndcg@5_diff_hi95']:+.3f}] over "
                    f"{best['decisions']} decisions.")
    return rows


def duration_table(split: dict[str, Any]) -> list[str]:
    rows = ["| predictor | MAE h | 80% cover | 90% cover | 90% width h | 90% interval score h | n |",
            "|---|---|---|---|---|---|---|"]
    for name in ["model", "model_observable", *sorted(k for k in split if k.startswith("baseline_")), "truth"]:
        r = split.get(name)
        if not isinstance(r, dict) or "mae" not in r:
            continue

        def cell(key: str, r: dict[str, Any] = r) -> str:
            value = r.get(key)
            return "" if value is None else f"{value:.3f}" if "coverage" in key else f"{value:.2f}"

        rows.append(f"| {name.removeprefix('baseline_')} | {r['mae']:.2f} | {cell('coverage80')} | {cell('coverage90')}"
                    f" | {cell('width90')} | {cell('interval_score90')} | {r.get('n', '')} |")
    return rows


def main() -> int:
    args = parse_args()
    ranker = latest_evaluation(args.home, "maestro-task_assignment")[args.split]
    duration = latest_evaluation(args.home, "maestro-task_duration")[args.split]
    print(f"### {args.home} ({args.split} split)\n")
    print("\n".join(ranker_table(ranker)))
    print()
    print("\n".join(duration_table(duration)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
