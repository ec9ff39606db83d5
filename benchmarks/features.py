"""Feature-store benchmarks: online retrieval latency for one real scoring request, and training-set build time.

Phases (each in its own process, so imports, caches and peak memory are its own):

* ``prepare``: simulate a preset, ingest every hour (``ingest_hours``) and build the offline
  feature tables (``build_features``), timed.
* ``online``: for the embedded store (SQLite) and the server-backed one (Redis online store, SQL
  registry on PostgreSQL, a throwaway project, database and keys, removed afterwards), apply and
  materialize, then time one scoring request of the ``--service`` (default ``task_assignment_v2``)
  service, 1 task x 50 candidate users, p50/p99 over ``--requests`` requests after a warm-up, three
  ways interleaved request by request: ``FeatureStore.get_online_features(...).to_df()``,
  ``maestro_ml.feast_ext.online.get_service_features`` (the same frame, checked equal on the first
  requests) and the raw read of the same keys from the same online store (the stock statement per view
  on SQLite, one pipeline of ``HMGET``s on Redis; keys serialized beforehand, nothing decoded). Also
  reported: the bulk read alone inside ``get_service_features`` (``read_serialized``). After setup the
  process runs ``gc.collect(); gc.freeze()``, as a serving process would.
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
    parser.add_argument("--service", default="task_assignment_v2", help="feature service of the online phase")
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


def _raw_reader(store, service, payloads: list[list[dict]]):
    """The raw read of each request's keys (serialized beforehand) from the store: (read function, inputs)."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import compute_table_id
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    from maestro_ml.features.point_in_time import resolve_service

    by_view, _ = resolve_service(store, service)
    online_store = store._get_provider().online_store
    config = store.config

    def keys_of(view, rows: list[dict]) -> list[bytes]:
        names = sorted(view.join_keys)
        distinct = dict.fromkeys(tuple(row[k] for k in names) for row in rows)
        return [
            serialize_entity_key(EntityKey(join_keys=names, entity_values=[Value(string_val=v) for v in values]), 3)
            for values in distinct
        ]

    inputs = [[(view, features, keys_of(view, rows)) for view, features in by_view] for rows in payloads]
    if hasattr(online_store, "_get_conn"):  # SQLite: the stock statement (without event_ts), per view
        conn = online_store._get_conn(config)
        tables = {view.name: compute_table_id(config.project, view, False) for view, _ in by_view}

        def read(request) -> int:
            n = 0
            for view, _, keys in request:
                sql = (f'SELECT entity_key, feature_name, value FROM "{tables[view.name]}" '
                       f"WHERE entity_key IN ({','.join('?' * len(keys))})")
                n += len(conn.execute(sql, keys).fetchall())
            return n

        return read, inputs
    client = online_store._get_client(config.online_store)  # Redis: one pipeline of HMGETs, as stock reads
    project = config.project.encode()
    fields = {view.name: online_store._generate_hset_keys_for_features(view, list(features))[1][:-1]
              for view, features in by_view}

    def read(request) -> int:
        with client.pipeline(transaction=False) as pipe:
            for view, _, keys in request:
                for key in keys:
                    pipe.hmget(key + project, fields[view.name])
            return sum(len(reply) for reply in pipe.execute())

    return read, inputs


def _percentiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    return {"p50_ms": round(float(np.percentile(values, 50)), 2), "p99_ms": round(float(np.percentile(values, 99)), 2)}


def phase_online(kind: str, requests: int, candidates: int, service_name: str) -> None:
    import gc

    import numpy as np
    import pandas as pd

    from maestro_ml.contracts.features import REQUEST_TIME_FIELD
    from maestro_ml.feast_ext.online import CellRead, get_service_features, retriever_for
    from maestro_ml.feast_ext.steps import materialize_all
    from maestro_ml.feast_ext.store import apply_if_changed, get_store
    from maestro_ml.features.offline import read_view
    from maestro_ml.settings import get_settings

    env, database = _store_env(kind)
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    store = None
    try:
        apply_if_changed(settings)
        end = _window_end()
        started = time.perf_counter()
        materialized = materialize_all({"start": START.isoformat(), "end": (end + timedelta(days=1)).isoformat()})
        materialize_s = time.perf_counter() - started
        store = get_store(settings)
        service = store.get_feature_service(service_name)

        tasks = read_view(settings.features_uri, "task_features")
        tasks = tasks[tasks["event_timestamp"] >= end - timedelta(hours=12)].drop_duplicates("task_id", keep="last")
        users = read_view(settings.features_uri, "user_profile_features").drop_duplicates("user_id", keep="last")
        # A task's reporter: who created it (the lake's task state); candidates with and without history with them.
        from maestro_ml import lake

        reporters = lake.read_state(settings.lake_uri, "tasks").select(["task_id", "reporter_id"]).to_pandas()
        tasks = tasks.merge(reporters, on="task_id", how="left")
        rng = np.random.default_rng(0)
        now = int(end.timestamp())

        def request(i: int) -> list[dict]:
            task = tasks.iloc[i % len(tasks)]
            picked = users["user_id"].to_numpy()[rng.choice(len(users), size=candidates, replace=False)]
            return [
                {"task_id": task.task_id, "project_id": task.project_id, "reporter_id": task.reporter_id,
                 "user_id": u, REQUEST_TIME_FIELD: now}
                for u in picked
            ]

        warm = 50
        payloads = [request(i) for i in range(requests + warm)]
        raw_read, raw_inputs = _raw_reader(store, service, payloads)
        retriever = retriever_for(store)
        online_store = store._get_provider().online_store
        bulk_inputs = []
        for rows in payloads:  # the bulk reads get_service_features makes, for timing them alone
            columnar = {k: [row[k] for row in rows] for k in rows[0]}
            plan = retriever._plan(service, tuple(columnar))
            distinct: dict = {}
            reads = []
            for view in plan.views:
                keys, _ = retriever._entity_keys(view, columnar, len(rows), plan.version, distinct)
                reads.append(CellRead(view.table, keys, view.features))
            bulk_inputs.append(reads)

        equal = 0
        for i in range(warm):  # warm-up: registry cache, plans, connections, code paths; equality checked
            expected = store.get_online_features(features=service, entity_rows=payloads[i]).to_df()
            got = get_service_features(store, service_name, payloads[i])
            pd.testing.assert_frame_equal(got, expected, check_exact=True)
            equal += 1
            raw_read(raw_inputs[i])
            online_store.read_serialized(store.config, bulk_inputs[i])
        gc.collect()
        gc.freeze()

        load_before = os.getloadavg()
        timings: dict[str, list[float]] = {"feast": [], "fast": [], "raw": [], "bulk": []}
        calls = {
            "feast": lambda i: store.get_online_features(features=service, entity_rows=payloads[i]).to_df(),
            "fast": lambda i: get_service_features(store, service_name, payloads[i]),
            "raw": lambda i: raw_read(raw_inputs[i]),
            "bulk": lambda i: online_store.read_serialized(store.config, bulk_inputs[i]),
        }
        order = list(calls)
        for i in range(warm, warm + requests):
            order = order[1:] + order[:1]  # rotate, so that no path always runs right after another
            for name in order:
                t0 = time.perf_counter()
                calls[name](i)
                timings[name].append((time.perf_counter() - t0) * 1000)
        gc.unfreeze()
        last = get_service_features(store, service_name, payloads[-1])
        raw_cells = raw_read(raw_inputs[-1])
        emit(
            {
                "phase": "online",
                "store": kind,
                "service": service_name,
                "requests": requests,
                "rows_per_request": candidates,
                "columns": last.shape[1],
                "filled_share": round(float(last.notna().to_numpy().mean()), 3),
                "stored_cells_per_request": raw_cells,
                "equal_frames_checked": equal,
                "get_online_features": _percentiles(timings["feast"]),
                "get_service_features": _percentiles(timings["fast"]),
                "raw_read": _percentiles(timings["raw"]),
                "bulk_read": _percentiles(timings["bulk"]),
                "ratio_to_raw_p50": round(float(np.percentile(timings["fast"], 50) / np.percentile(timings["raw"], 50)), 2),
                "ratio_to_raw_p99": round(float(np.percentile(timings["fast"], 99) / np.percentile(timings["raw"], 99)), 2),
                "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
                "materialize_s": round(materialize_s, 1),
                "materialized_rows": {k: v.get("rows") for k, v in materialized.items()},
            }
        )
    finally:
        if store is not None:
            store.teardown()  # the throwaway project's tables or Redis keys
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
           "--candidates", str(args.candidates), "--train-days", str(args.train_days), "--service", args.service,
           *extra]
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
        return phase_online(args.store, args.requests, args.candidates, args.service)
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
            fast, feast, raw = r["get_service_features"], r["get_online_features"], r["raw_read"]
            print(f"| online `{r['service']}`, 1 task x {r['rows_per_request']} users, {r['columns']} columns | "
                  f"{r['store']} | `get_service_features` p50 {fast['p50_ms']} ms, p99 {fast['p99_ms']} ms; "
                  f"`get_online_features` p50 {feast['p50_ms']} ms, p99 {feast['p99_ms']} ms ({r['requests']} "
                  f"requests) | raw read p50 {raw['p50_ms']} ms, p99 {raw['p99_ms']} ms "
                  f"({r['ratio_to_raw_p50']}x / {r['ratio_to_raw_p99']}x) | {r['peak_rss_mb']} |")
        elif r["phase"] == "training":
            print(f"| training set `{r['kind']}` {r['window']} | offline tables | {r['rows']:,} rows x "
                  f"{r['columns']} in {r['seconds']} s ({r['rows_per_s']:,} rows/s), in-process join | pandas merge_asof: "
                  f"{r['baseline_pandas_seconds']} s | {r['peak_rss_mb']} |")
        else:
            print(f"| prepare {args.preset}: {r['events']:,} events | - | simulate {r['simulate_s']} s, ingest "
                  f"{r['ingest_s']} s, build_features {r['build_features_s']} s | - | {r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
