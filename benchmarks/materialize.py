"""Feast materialization benchmark (issue 4): stock ``LocalComputeEngine`` + stock online store against
``MaestroComputeEngine`` + the Maestro online store, for SQLite and Redis, on the same data in one run.

* Data: ``--rows`` entities (default 200,000), one row each, 10 float64 features, event and created
  timestamps spread over 7 days; the window is those 7 days (one chunk with the engine's defaults).
* Every measurement runs in its own process on a fresh store (new SQLite file, new Redis project), times
  ``FeatureStore.materialize`` only (not imports or ``apply``) and reports its peak RSS. Stock and ours
  alternate ``--repeat`` times and the median is reported, because the CI machine kind is noisy.
* Floors: reading the window from the offline store alone, which any engine pays: the store's
  ``pull_latest_from_table_or_query``, and ``pull_all_from_table_or_query`` + the Arrow latest-per-entity
  step that ``MaestroComputeEngine`` uses on the file store (``pull: auto``).
* Write floors: the Maestro store's own write of the pre-encoded window (SQLite ``executemany`` + commit,
  Redis Lua calls), i.e. what would remain if the engine's Python work cost nothing.
* Equality: after the last pair, ``get_online_features`` for ``--sample`` random entities (values and
  event timestamps) must be identical between the stock and Maestro stores.

Run: ``.venv/bin/python benchmarks/materialize.py [--rows N] [--repeat R] [--no-redis]``. Redis comes from
``--redis`` (default ``MAESTRO_TEST_REDIS`` or 127.0.0.1:6379); its keys are deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=7)
FEATURES = [f"f{i}" for i in range(10)]
ENGINE = "maestro_ml.feast_ext.engine.MaestroComputeEngine"
STORES = {
    ("sqlite", "stock"): "sqlite",
    ("sqlite", "ours"): "maestro_ml.feast_ext.sqlite_store.MaestroSqliteOnlineStore",
    ("redis", "stock"): "redis",
    ("redis", "ours"): "maestro_ml.feast_ext.redis_store.MaestroRedisOnlineStore",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sample", type=int, default=2_000)
    parser.add_argument("--redis", default=os.environ.get("MAESTRO_TEST_REDIS", "127.0.0.1:6379"))
    parser.add_argument("--no-redis", action="store_true")
    parser.add_argument("--workdir", default=None, help="where data and stores go (default: a temporary dir)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one measurement, JSON out
    return parser.parse_args()


# --------------------------------------------------------------------------------------------- the repo


def write_data(path: Path, rows: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    offsets = rng.integers(0, 7 * 86_400 * 10**6, rows)
    stamps = pa.array(int(START.timestamp() * 10**6) + offsets, pa.timestamp("us", tz="UTC"))
    table = {
        "user_id": pa.array([f"u{i:07d}" for i in range(rows)]),
        "event_timestamp": stamps,
        "created": stamps,
        **{name: pa.array(rng.random(rows)) for name in FEATURES},
    }
    pq.write_table(pa.table(table), path)


def make_store(root: Path, data: Path, backend: str, path: str, redis_url: str, project: str) -> Any:
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.types import Float64

    online: dict[str, Any] = {"type": STORES[(backend, path)]}
    if backend == "sqlite":
        online["path"] = str(root / "online.db")
    else:
        online.update(connection_string=redis_url, key_ttl_seconds=1_209_600)
    config = RepoConfig(
        project=project,
        provider="local",
        registry=str(root / "registry.db"),
        online_store=online,
        offline_store={"type": "file"},
        batch_engine={"type": ENGINE} if path == "ours" else "local",
        entity_key_serialization_version=3,
    )
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name="bench",
        entities=[user],
        ttl=timedelta(days=30),
        schema=[Field(name=name, dtype=Float64) for name in FEATURES],
        source=FileSource(path=str(data), timestamp_field="event_timestamp", created_timestamp_column="created"),
    )
    store = FeatureStore(config=config)
    return store, [user, view]


# --------------------------------------------------------------------------------------------- one process


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """One measurement in this process: materialize into a fresh store, or the offline pull floor."""
    root, data = Path(spec["root"]), Path(spec["data"])
    root.mkdir(parents=True, exist_ok=True)
    if spec["kind"] in ("floor_latest", "floor_all"):
        from feast.infra.offline_stores.dask import DaskOfflineStore

        from maestro_ml.feast_ext.engine import latest_per_entity

        store, objects = make_store(root, data, "sqlite", "stock", spec["redis"], "bench_floor")
        pull = (DaskOfflineStore.pull_latest_from_table_or_query if spec["kind"] == "floor_latest"
                else DaskOfflineStore.pull_all_from_table_or_query)
        started = time.perf_counter()
        job = pull(
            config=store.config, data_source=objects[1].batch_source, join_key_columns=["user_id"],
            feature_name_columns=FEATURES, timestamp_field="event_timestamp", created_timestamp_column="created",
            start_date=START, end_date=END,
        )
        table = job.to_arrow()
        if spec["kind"] == "floor_all":
            table = latest_per_entity(table, ["user_id"], "event_timestamp", "created")
        return {"seconds": time.perf_counter() - started, "rows": table.num_rows, "peak_rss_mb": peak_rss_mb()}
    store, objects = make_store(root, data, spec["backend"], spec["path"], spec["redis"], spec["project"])
    store.apply(objects)
    if spec["kind"] == "floor_write":
        return {"seconds": time_write_only(store, objects[1]), "peak_rss_mb": peak_rss_mb()}
    started = time.perf_counter()
    store.materialize(START, END)
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def time_write_only(store: Any, view: Any) -> float:
    """Seconds the Maestro store itself needs for the whole window, everything else prepared beforehand.

    SQLite: the ``executemany`` + commit of the pre-built statement parameters. Redis: the Lua calls
    (records built, pipelined, executed). This is what remains if the engine's Python work cost nothing.
    """
    from feast.infra.offline_stores.dask import DaskOfflineStore
    from feast.value_type import ValueType

    from maestro_ml.feast_ext import encoding, redis_store, sqlite_store
    from maestro_ml.feast_ext.engine import latest_per_entity

    config = store.config
    table = DaskOfflineStore.pull_all_from_table_or_query(
        config=config, data_source=view.batch_source, join_key_columns=["user_id"], feature_name_columns=FEATURES,
        timestamp_field="event_timestamp", created_timestamp_column="created", start_date=START, end_date=END,
    ).to_arrow()
    table = latest_per_entity(table, ["user_id"], "event_timestamp", "created").combine_chunks()
    batch = encoding.encode_batch(
        table.to_batches()[0], join_keys={"user_id": ValueType.STRING},
        features=dict.fromkeys(FEATURES, ValueType.DOUBLE), timestamp_field="event_timestamp",
        created_timestamp_column="created", entity_key_serialization_version=3,
    )
    if config.online_store.type.endswith("SqliteOnlineStore"):
        sqlite = sqlite_store.MaestroSqliteOnlineStore()
        conn = sqlite._get_conn(config)
        sql = sqlite_store._upsert_sql(f"{config.project}_{view.name}", FEATURES, True)
        params = sqlite_store._params(batch, batch.features, encoding.sqlite_timestamps(batch.event_us),
                                      encoding.sqlite_timestamps(batch.created_us))
        started = time.perf_counter()
        with conn:
            conn.executemany(sql, params)
        return time.perf_counter() - started
    redis = redis_store.MaestroRedisOnlineStore()
    client = redis._get_client(config.online_store)
    _, hset_keys = redis._generate_hset_keys_for_features(view, list(FEATURES), fv_name_override=view.name)
    keys = redis._redis_keys(config, batch.entity_keys)
    ts_cells, _, _ = encoding.redis_timestamps(batch.event_us)
    started = time.perf_counter()
    redis._write_lua(client, keys, ts_cells, batch, hset_keys[:-1], hset_keys[-1], 1_209_600, True, 2000)
    return time.perf_counter() - started


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--one", json.dumps(spec)], capture_output=True, text=True, cwd=REPO_ROOT
    )
    if out.returncode != 0:
        raise RuntimeError(f"{spec} failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


# --------------------------------------------------------------------------------------------- checks


def online_sample(root: Path, data: Path, backend: str, path: str, redis_url: str, project: str,
                  ids: list[str]) -> dict[str, Any]:
    store, _ = make_store(root, data, backend, path, redis_url, project)
    refs = [f"bench:{name}" for name in FEATURES]
    rows = [{"user_id": i} for i in ids]
    return store.get_online_features(features=refs, entity_rows=rows).to_dict(include_event_timestamps=True)


def delete_redis_project(redis_url: str, project: str, rows: int) -> None:
    import pyarrow as pa
    import redis
    from feast.value_type import ValueType

    from maestro_ml.feast_ext.encoding import reference_entity_keys

    host, _, port = redis_url.partition(":")
    client = redis.Redis(host=host, port=int(port or 6379))
    suffix = project.encode()
    for start in range(0, rows, 50_000):
        ids = pa.array([f"u{i:07d}" for i in range(start, min(rows, start + 50_000))])
        keys = reference_entity_keys({"user_id": ids}, {"user_id": ValueType.STRING}, 3)
        client.delete(*[k + suffix for k in keys])


def redis_available(redis_url: str) -> str | None:
    import redis

    host, _, port = redis_url.partition(":")
    try:
        return str(redis.Redis(host=host, port=int(port or 6379), socket_connect_timeout=2).info()["redis_version"])
    except Exception:  # unreachable or refused: the Redis rows are skipped and the report says so
        return None


# --------------------------------------------------------------------------------------------- main


def seconds(runs: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['seconds']:.2f}" for r in runs)


def main() -> None:
    args = parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(json.loads(args.one))), flush=True)
        return
    import random
    import sqlite3

    import feast

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="maestro-bench-materialize-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "bench.parquet"
    started = time.perf_counter()
    write_data(data, args.rows)
    print(f"data: {args.rows:,} rows x {len(FEATURES)} float features in {time.perf_counter() - started:.1f}s",
          file=sys.stderr)
    redis_version = None if args.no_redis else redis_available(args.redis)
    backends = ["sqlite"] + (["redis"] if redis_version else [])
    tag = uuid.uuid4().hex[:8]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    last_project: dict[tuple[str, str], tuple[Path, str]] = {}
    projects: list[str] = []
    try:
        floors: dict[str, list[dict[str, Any]]] = {
            kind: [measure({"kind": kind, "root": str(work / f"{kind}{r}"), "data": str(data), "redis": args.redis})
                   for r in range(args.repeat)]
            for kind in ("floor_latest", "floor_all")
        }
        for backend in backends:
            for rep in range(args.repeat):
                project = f"bench_{tag}_{backend}_floor_{rep}"
                if backend == "redis":
                    projects.append(project)
                spec = {"kind": "floor_write", "backend": backend, "path": "ours", "data": str(data),
                        "root": str(work / f"{backend}-floor-{rep}"), "redis": args.redis, "project": project}
                floors.setdefault(f"write_{backend}", []).append(measure(spec))
                shutil.rmtree(work / f"{backend}-floor-{rep}", ignore_errors=True)
            for rep in range(args.repeat):
                for path in ("stock", "ours"):
                    root = work / f"{backend}-{path}-{rep}"
                    project = f"bench_{tag}_{backend}_{path}_{rep}"
                    if backend == "redis":
                        projects.append(project)
                    spec = {"kind": "run", "backend": backend, "path": path, "root": str(root), "data": str(data),
                            "redis": args.redis, "project": project}
                    result = measure(spec)
                    print(f"{backend} {path} run {rep + 1}: {result['seconds']:.2f}s", file=sys.stderr)
                    results.setdefault((backend, path), []).append(result)
                    previous = last_project.get((backend, path))
                    if previous and backend == "sqlite":
                        shutil.rmtree(previous[0], ignore_errors=True)
                    if previous and backend == "redis":
                        delete_redis_project(args.redis, previous[1], args.rows)
                        projects.remove(previous[1])
                    last_project[(backend, path)] = (root, project)
        ids = random.Random(1).sample([f"u{i:07d}" for i in range(args.rows)], min(args.sample, args.rows))
        equal = {}
        for backend in backends:
            samples = []
            for path in ("stock", "ours"):
                root, project = last_project[(backend, path)]
                samples.append(online_sample(root, data, backend, path, args.redis, project, ids))
            equal[backend] = samples[0] == samples[1] and all(v is not None for v in samples[0]["f0"])
    finally:
        for project in projects:
            delete_redis_project(args.redis, project, args.rows)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Feast {feast.__version__}, SQLite {sqlite3.sqlite_version}, Redis {redis_version or 'not reachable'}; "
          f"{args.rows:,} entity rows x {len(FEATURES)} float64 features, median of {args.repeat} runs each.\n")
    print("| store | path | runs (s) | median s | rows/s | speedup | peak RSS MB | equal online values |")
    print("|---|---|---|---|---|---|---|---|")
    floor_labels = {
        "floor_latest": ("-", "floor: offline `pull_latest_from_table_or_query` alone"),
        "floor_all": ("-", "floor: offline `pull_all_from_table_or_query` + Arrow latest-per-entity (ours)"),
        "write_sqlite": ("sqlite", "floor: the Maestro store's write alone (`executemany` + commit, rows pre-built)"),
        "write_redis": ("redis", "floor: the Maestro store's write alone (Lua calls, rows pre-encoded)"),
    }
    for kind, runs in floors.items():
        median = statistics.median(r["seconds"] for r in runs)
        store_name, label = floor_labels[kind]
        print(f"| {store_name} | {label} | {seconds(runs)} | {median:.2f} | {args.rows / median:,.0f} | - | "
              f"{max(r['peak_rss_mb'] for r in runs):,.0f} | - |")
    for backend in backends:
        stock_s = statistics.median(r["seconds"] for r in results[(backend, "stock")])
        for path in ("stock", "ours"):
            runs = results[(backend, path)]
            median = statistics.median(r["seconds"] for r in runs)
            label = "stock `LocalComputeEngine` + stock store" if path == "stock" else (
                "`MaestroComputeEngine` + Maestro store")
            speedup = f"**{stock_s / median:.1f}x**" if path == "ours" else "1.0x"
            same = ("yes" if equal[backend] else "**NO**") if path == "ours" else "-"
            print(f"| {backend} | {label} | {seconds(runs)} | {median:.2f} | "
                  f"{args.rows / median:,.0f} | {speedup} | {max(r['peak_rss_mb'] for r in runs):,.0f} | {same} |")
    if not redis_version and not args.no_redis:
        print(f"\nRedis at {args.redis} was not reachable: Redis rows skipped.")


if __name__ == "__main__":
    main()
