"""Feature-store benchmarks: online retrieval latency for one real scoring request, and training-set build time.

Phases (each in its own process, so imports, caches and peak memory are its own):

* ``prepare``: simulate a preset, ingest every hour (``ingest_hours``) and build the offline
  feature tables (``build_features``), timed.
* ``online``: for the embedded store (SQLite) and the server-backed one (Redis online store, SQL
  registry on PostgreSQL, a throwaway project and database), apply and materialize, then time
  ``FeatureStore.get_online_features`` for the ``task_assignment_v1`` service on 1 task x 50
  candidate users (one call), p50/p99 over ``--requests`` requests after a warm-up. Baseline in
  the same run: the same 50 candidates fetched with 50 single-row calls.
* ``training``: ``training_set`` (the default in-process join, ``maestro_ml.features.point_in_time``)
  for the ranking and duration sets over ``--train-days`` days, rows/s; baseline in the same run:
  the same point-in-time join written directly in pandas (``merge_asof`` per view, no on-demand
  features). ``benchmarks/training.py --phase sets`` compares it with Feast's file offline store.

Run: ``.venv/bin/python benchmarks/features.py --preset demo`` (or ``bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))

START = datetime(2026, 10, 1, tzinfo=UTC)
PG = "postgresql+psycopg://postgres@127.0.0.1:5432"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="demo", choices=["tiny", "demo", "bench"])
    parser.add_argument("--home", default=None, help="MAESTRO_HOME (default: a temporary directory)")
    parser.add_argument("--phase", default="all", choices=["all", "prepare", "online", "training"])
    parser.add_argument("--store", default="both", choices=["both", "local", "server"])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--train-days", type=int, default=2, help="days of decisions in the ranking set")
    return parser.parse_args()


def emit(payload: dict) -> None:
    payload["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(payload), flush=True)


def _window_end() -> datetime:
    from maestro_ml.settings import get_settings
    from maestro_ml.storage import read_json

    summary = read_json(f"{get_settings().truth_uri}/summary.json")
    return datetime.fromisoformat(summary["window_end"].replace("Z", "+00:00"))


def phase_prepare(preset: str) -> None:
    from maestro_ml.features.steps import build_features
    from maestro_ml.ingestion import ingest_hours
    from maestro_ml.settings import get_settings
    from maestro_ml.simulation import config_for_preset, simulate

    settings = get_settings()
    started = time.perf_counter()
    summary = simulate(config_for_preset(preset, start=START), settings.landing_uri, settings.truth_uri)
    simulated = time.perf_counter()
    end = _window_end()
    hours = [START + timedelta(hours=i) for i in range(int((end - START).total_seconds() // 3600) + 3)]
    ingest_hours(hours, settings)
    ingested = time.perf_counter()
    built = build_features(START, end + timedelta(days=1))
    emit(
        {
            "phase": "prepare",
            "events": summary.events_written,
            "simulate_s": round(simulated - started, 1),
            "ingest_s": round(ingested - simulated, 1),
            "build_features_s": round(time.perf_counter() - ingested, 1),
            "feature_rows": built["rows"],
        }
    )


def _store_env(kind: str) -> tuple[dict[str, str], str | None]:
    project = f"maestro_bench_{uuid.uuid4().hex[:8]}"
    env = {"MAESTRO_FEAST_PROJECT": project}
    database = None
    if kind == "server":
        import psycopg

        database = f"{project}_registry"
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        env.update({"MAESTRO_FEAST_ENV": "server", "MAESTRO_FEAST_REGISTRY_SQL_URI": f"{PG}/{database}"})
    else:
        home = os.environ["MAESTRO_HOME"]
        env.update(
            {
                "MAESTRO_FEAST_REGISTRY_PATH": f"{home}/{project}/registry.db",
                "MAESTRO_FEAST_ONLINE_PATH": f"{home}/{project}/online.db",
            }
        )
    return env, database


def phase_online(kind: str, requests: int, candidates: int) -> None:
    import numpy as np

    from maestro_ml.feast_ext.steps import materialize_all
    from maestro_ml.feast_ext.store import apply_if_changed, get_store
    from maestro_ml.features.offline import read_view
    from maestro_ml.settings import get_settings

    env, database = _store_env(kind)
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    try:
        apply_if_changed(settings)
        end = _window_end()
        started = time.perf_counter()
        materialized = materialize_all({"start": START.isoformat(), "end": (end + timedelta(days=1)).isoformat()})
        materialize_s = time.perf_counter() - started
        store = get_store(settings)
        service = store.get_feature_service("task_assignment_v1")

        tasks = read_view(settings.features_uri, "task_features")
        tasks = tasks[tasks["event_timestamp"] >= end - timedelta(hours=12)].drop_duplicates("task_id", keep="last")
        users = read_view(settings.features_uri, "user_profile_features").drop_duplicates("user_id", keep="last")
        rng = np.random.default_rng(0)
        now = int(end.timestamp())

        def request(i: int) -> list[dict]:
            task = tasks.iloc[i % len(tasks)]
            picked = users["user_id"].to_numpy()[rng.choice(len(users), size=candidates, replace=False)]
            return [
                {"task_id": task.task_id, "project_id": task.project_id, "user_id": u, "request_time_unix": now}
                for u in picked
            ]

        payloads = [request(i) for i in range(requests + 50)]
        for rows in payloads[:50]:  # warm-up: registry cache, connections, code paths
            store.get_online_features(features=service, entity_rows=rows)
        latencies = []
        for rows in payloads[50:]:
            t0 = time.perf_counter()
            result = store.get_online_features(features=service, entity_rows=rows).to_dict()
            latencies.append((time.perf_counter() - t0) * 1000)
        filled = float(np.mean([v is not None for v in result["skill_match"]]))
        single = []
        for rows in payloads[50 : 50 + max(requests // 10, 20)]:
            t0 = time.perf_counter()
            for row in rows:
                store.get_online_features(features=service, entity_rows=[row])
            single.append((time.perf_counter() - t0) * 1000)
        emit(
            {
                "phase": "online",
                "store": kind,
                "requests": len(latencies),
                "rows_per_request": candidates,
                "features_per_row": len(result) - 4,
                "filled_share": round(filled, 3),
                "p50_ms": round(float(np.percentile(latencies, 50)), 2),
                "p99_ms": round(float(np.percentile(latencies, 99)), 2),
                "baseline_single_row_calls_p50_ms": round(float(np.percentile(single, 50)), 1),
                "baseline_single_row_calls_p99_ms": round(float(np.percentile(single, 99)), 1),
                "materialize_s": round(materialize_s, 1),
                "materialized_rows": {k: v.get("rows") for k, v in materialized.items()},
            }
        )
        store.teardown()
    finally:
        if database:
            import psycopg

            with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _pandas_join(entities, settings):  # the baseline: the same point-in-time join, by hand
    import pandas as pd

    from maestro_ml.contracts.features import VIEWS
    from maestro_ml.features.offline import read_view

    frame = entities.reset_index(drop=True).reset_index().sort_values("event_timestamp")
    for name, key in (
        ("user_profile_features", "user_id"),
        ("user_activity_features", "user_id"),
        ("task_features", "task_id"),
        ("project_features", "project_id"),
    ):
        rows = read_view(settings.features_uri, name).rename(columns={"event_timestamp": f"_{name}_ts"})
        rows = rows.drop(columns=[c for c in rows.columns if c in frame.columns and c != key])
        rows = rows.sort_values(f"_{name}_ts")
        frame = pd.merge_asof(frame, rows, left_on="event_timestamp", right_on=f"_{name}_ts", by=key)
        stale = frame["event_timestamp"] - frame[f"_{name}_ts"] > VIEWS[name].ttl
        frame.loc[stale, [c for c in rows.columns if c not in (key, f"_{name}_ts")]] = None
    return frame.sort_values("index")


def phase_training(train_days: int) -> None:
    from maestro_ml.feast_ext.store import apply_if_changed, get_store
    from maestro_ml.features.training_sets import (
        attach_outcomes,
        duration_entities,
        ranking_entities,
        training_set,
    )
    from maestro_ml.settings import get_settings

    env, _ = _store_env("local")
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    apply_if_changed(settings)
    store = get_store(settings)
    end = _window_end()
    lo = START + timedelta(days=1)
    sets = {"ranking": (lo, min(lo + timedelta(days=train_days), end)), "duration": (lo, end)}
    for kind, (start, stop) in sets.items():
        t0 = time.perf_counter()
        frame = training_set(kind, start, stop, store=store)
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        if kind == "ranking":
            entities = ranking_entities(settings.lake_uri, start, stop)
        else:
            entities = duration_entities(settings.lake_uri, settings.features_uri, start, stop)
        baseline = _pandas_join(attach_outcomes(entities, settings.features_uri), settings)
        baseline_s = time.perf_counter() - t0
        emit(
            {
                "phase": "training",
                "kind": kind,
                "window": f"{start:%Y-%m-%d}..{stop:%Y-%m-%d}",
                "rows": len(frame),
                "columns": frame.shape[1],
                "seconds": round(seconds, 1),
                "rows_per_s": round(len(frame) / seconds),
                "baseline_pandas_seconds": round(baseline_s, 1),
                "baseline_rows": len(baseline),
            }
        )


def run_phase(args: argparse.Namespace, phase: str, extra: list[str]) -> list[dict]:
    cmd = [sys.executable, __file__, "--phase", phase, "--preset", args.preset, "--requests", str(args.requests),
           "--candidates", str(args.candidates), "--train-days", str(args.train_days), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-6000:])
        raise SystemExit(f"phase {phase} failed")
    return [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]


def main() -> None:
    args = parse_args()
    if args.phase == "prepare":
        return phase_prepare(args.preset)
    if args.phase == "online":
        return phase_online(args.store, args.requests, args.candidates)
    if args.phase == "training":
        return phase_training(args.train_days)

    home = args.home or tempfile.mkdtemp(prefix="maestro-bench-features-")
    os.environ["MAESTRO_HOME"] = home
    os.environ.setdefault("MAESTRO_PII_KEY", "benchmark-only-key")
    print(f"# feature benchmarks, preset {args.preset}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
          f"{os.cpu_count()} cores, Python {platform.python_version()}, MAESTRO_HOME={home}", flush=True)
    results = run_phase(args, "prepare", [])
    stores = ["local", "server"] if args.store == "both" else [args.store]
    for kind in stores:
        results += run_phase(args, "online", ["--store", kind])
    results += run_phase(args, "training", [])
    for r in results:
        print(json.dumps(r))
    print("\n| measure | store / set | result | baseline (same run) | peak RSS MB |\n|---|---|---|---|---|")
    for r in results:
        if r["phase"] == "online":
            print(f"| online `task_assignment_v1`, 1 task x {r['rows_per_request']} users, {r['features_per_row']} "
                  f"features | {r['store']} | p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms ({r['requests']} requests) | "
                  f"50 single-row calls: p50 {r['baseline_single_row_calls_p50_ms']} ms, "
                  f"p99 {r['baseline_single_row_calls_p99_ms']} ms | {r['peak_rss_mb']} |")
        elif r["phase"] == "training":
            print(f"| training set `{r['kind']}` {r['window']} | offline tables | {r['rows']:,} rows x "
                  f"{r['columns']} in {r['seconds']} s ({r['rows_per_s']:,} rows/s), in-process join | pandas merge_asof: "
                  f"{r['baseline_pandas_seconds']} s | {r['peak_rss_mb']} |")
        else:
            print(f"| prepare {args.preset}: {r['events']:,} events | - | simulate {r['simulate_s']} s, ingest "
                  f"{r['ingest_s']} s, build_features {r['build_features_s']} s | - | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
