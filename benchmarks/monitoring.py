"""Monitoring against the simulator's truth (issue 14): detection delay, false alarms, and the cost of a run.

For each scenario, one simulated world (``--days`` days; the scenario's onset at ``--onset`` days), ingested and
its features built in this process; a ranker (the demo's training knobs) trained on the days before
``--train-end`` and made champion. Then, day by day from the training end, the monitor's drift rule as
``monitor_models`` runs it (``monitoring.steps``: the champion's training sample against the last day's
decisions, built point in time; ``drift.drift_rule_state`` over the days so far, default ``MonitoringRules``):

* **false alarms**: the days the rule fires in the ``none`` world (goal: 0 over 30 days);
* **detection delay**: days from the onset to the first firing (goal: <= 2 days for ``reorg``, ``estimate_bias``);
* **cost**: seconds of one day's drift step (build the day's decisions + compare), and the same-run baseline:
  the same statistics (``feature_drift``) on the same frames already in memory.

Realised-performance recovery after a retrain is not measured here (see benchmarks/README.md).

Run: ``.venv/bin/python benchmarks/monitoring.py --scenario none --days 40 --onset 10 --train-end 8``
(one scenario per process; a fresh ``--home`` each time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default="/tmp/maestro-monitoring-bench", help="a fresh MAESTRO_HOME (wiped)")
    parser.add_argument("--scenario", default="none", choices=["none", "reorg", "workload_surge", "estimate_bias"])
    parser.add_argument("--days", type=int, default=40, help="simulated days")
    parser.add_argument("--onset", type=int, default=20, help="the scenario's onset, in days from the start")
    parser.add_argument("--train-end", type=int, default=10, help="the champion trains on the days before this")
    parser.add_argument("--seed", type=int, default=7, help="the simulation's seed")
    parser.add_argument("--thresholds", default="calibrated", choices=["calibrated", "default"],
                        help="per-feature thresholds from the training days (monitor_models'), or Evidently's")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    home = Path(args.home)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    os.environ.update({"MAESTRO_HOME": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db",
                       "MAESTRO_PII_KEY": os.environ.get("MAESTRO_PII_KEY", "benchmark-only-pii-key"),
                       "MAESTRO_START_DATE": start.isoformat()})
    from maestro_ml.feast_ext.store import apply_if_changed
    from maestro_ml.features.steps import build_features, build_sets, training_window
    from maestro_ml.ingestion.steps import ingest_hours
    from maestro_ml.monitoring import drift as d
    from maestro_ml.monitoring.steps import MonitoringRules, current_sample, reference_sample
    from maestro_ml.registry import model_inputs, register_challenger
    from maestro_ml.registry.aliases import alias_state, promote
    from maestro_ml.scoring.champions import load_champion, resolve_champions
    from maestro_ml.settings import get_settings

    settings = get_settings()
    apply_if_changed(settings)
    marks: dict[str, float] = {}
    began = time.perf_counter()
    sim = [sys.executable, "-m", "maestro_ml.simulation", "--preset", "demo", "--start",
           start.strftime("%Y-%m-%dT%H:%M:%SZ"), "--days", str(args.days), "--seed", str(args.seed), "--no-dirt"]
    if args.scenario != "none":
        sim += ["--scenario", args.scenario, "--scenario-day", str(args.onset)]
    subprocess.run(sim, check=True, env={**os.environ, "PYTHONPATH": str(REPO / "plugins")}, capture_output=True)
    end = start + timedelta(days=args.days)
    ingest_hours([start + timedelta(hours=h) for h in range(args.days * 24)], settings)
    build_features(start, end, settings)
    marks["prepare_seconds"] = round(time.perf_counter() - began, 1)

    train_end = start + timedelta(days=args.train_end)
    window = training_window(end=train_end, train_days=5, valid_days=1.5, test_days=1.5)
    sets = build_sets("task_assignment", window, "bench")
    cmd = [sys.executable, "-m", "maestro_ml.training", "task_assignment", "--train-uri", sets["uris"]["train"],
           "--valid-uri", sets["uris"]["valid"], "--tracking-uri", settings.mlflow_tracking_uri,
           "--epochs", "8", "--lgb-num-boost-round", "100", "--run-tags", "dag_id=bench,run_id=bench"]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "plugins")})
    run_id = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][0])["run_id"]
    version = register_challenger("task_assignment", run_id, settings)["version"]
    promote("task_assignment", version, alias_state("task_assignment", settings), settings)
    champion = resolve_champions(settings)["task_assignment"]
    inputs = model_inputs(load_champion(champion, settings))
    rules = MonitoringRules()
    reference = reference_sample(champion, rules.reference_rows, settings)
    assert reference is not None
    thresholds, group_of = d.DEFAULT_DRIFT_THRESHOLDS, d.feature_group
    if args.thresholds == "calibrated":
        from maestro_ml.monitoring.calibration import calibrated_thresholds

        thresholds, group_of = calibrated_thresholds(reference, inputs)

    history: dict = {}
    days = []
    fired_days = []
    onset = start + timedelta(days=args.onset)
    for offset in range(args.train_end, args.days):
        day = (start + timedelta(days=offset)).date()
        lap = time.perf_counter()
        current = current_sample("task_assignment", day, rules.reference_rows, settings)
        built = time.perf_counter() - lap
        if current is None:
            continue
        lap = time.perf_counter()
        report = d.feature_drift(reference.reindex(columns=inputs), current.reindex(columns=inputs), thresholds,
                                 features=inputs, group_of=group_of)
        compared = time.perf_counter() - lap
        # The same-run baseline: the same statistics on the same frames, already in memory (the floor).
        lap = time.perf_counter()
        d.feature_drift(reference.reindex(columns=inputs), current.reindex(columns=inputs), thresholds,
                        features=inputs, group_of=group_of)
        floor = time.perf_counter() - lap
        history[day] = d.drifted_count(report)
        state = d.drift_rule_state(history, min_features=rules.drift_min_features, min_days=rules.drift_min_days)
        if state.fires:
            fired_days.append(day.isoformat())
            history = {}  # a request resets the count (the cool-down, then a retrain, in production)
        days.append({"day": day.isoformat(), "drifted": int(report["drifted"].sum()), "fires": bool(state.fires),
                     "rows": len(current), "seconds": round(built + compared, 2), "floor_seconds": round(floor, 3)})
        print(json.dumps(days[-1]), flush=True)
    first_after = next((f for f in fired_days if f >= onset.date().isoformat()), None)
    result = {
        "scenario": args.scenario, "thresholds": args.thresholds, "days_watched": len(days), "onset": onset.date().isoformat(),
        "fired_days": fired_days,
        "false_alarms": len([f for f in fired_days if args.scenario == "none" or f < onset.date().isoformat()]),
        "detection_delay_days": ((datetime.fromisoformat(first_after).date() - onset.date()).days
                                 if first_after and args.scenario != "none" else None),
        "median_day_seconds": sorted(x["seconds"] for x in days)[len(days) // 2] if days else None,
        "median_floor_seconds": sorted(x["floor_seconds"] for x in days)[len(days) // 2] if days else None,
        **marks,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
