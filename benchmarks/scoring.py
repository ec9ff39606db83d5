"""Scoring benchmarks (issue 13): every open task scored end to end, and one task's recommendations read online.

Phases (each in its own process, so imports, caches and peak memory are its own), on a home whose lake and
offline features ``benchmarks/features.py --preset bench --phase prepare`` built:

* ``models``: the champions. A ranker and a duration model trained by the training CLI
  (``python -m maestro_ml.training``) on small training sets built by ``training_set`` over a few days
  before the lake's newest hour, registered (``register_challenger``) and made ``champion``
  (``registry.aliases.promote``) in a registry of their own (SQLite under ``<home>/scoring-bench``); the
  scoring Feast project (embedded SQLite, its own registry and online file under ``<home>/scoring-bench``)
  applied and materialized over the lake's whole window, up to the scoring time. Nothing else in the home
  is written but the lake's scores table.
* ``score``: every open task of the lake at its newest hour, as ``score_open_tasks`` does: champions
  resolved and loaded, open tasks and their candidates (``open_tasks``, ``candidate_pairs``),
  ``score.score_tasks`` (online read, predict with top-k and reasons, duration forecast, per phase through
  its ``Timings``), ``publish.write_scores`` (the lake file) and ``publish.push_scores`` (the online
  store). Baseline in the same run, the floor: the bare ``pyfunc.predict`` of both champions on the very
  feature matrices the run passed them (recorded by a proxy, re-predicted right after the run). ``--repeats``
  pairs (run, floor), medians reported. Also reported, below the floor: the models' own ``predict`` on the
  same frames without MLflow's input-schema enforcement, and the LightGBM contributions' share of "predict".
* ``reads``: one task's recommendations through Feast,
  ``store.get_online_features(features=store.get_feature_service("task_recommendations_v1"),
  entity_rows=[{"task_id": t}])`` (alone, and with ``.to_dict()``; and with the ``FeatureService`` fetched
  once and held, as a serving process would), for random task ids of the scored hour,
  on a throwaway project of the embedded store (SQLite) or of the server store (Redis online store, SQL
  registry in a throwaway PostgreSQL database), the hour's lake file pushed there first
  (``push_scores``). Baseline in the same run, request by request in rotating order: the raw read of the
  same key from the same store (SQLite: the ``SELECT`` of that entity key's rows from the view's online
  table; Redis: ``HGETALL`` of the key Feast wrote, found by the stock store's own key function). The
  project's tables or keys and the database are removed afterwards.

Run: ``.venv/bin/python benchmarks/scoring.py --home /tmp/bench`` (the home of
``MAESTRO_HOME=/tmp/bench .venv/bin/python benchmarks/features.py --preset bench --phase prepare``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))

PG = "postgresql+psycopg://postgres@127.0.0.1:5432"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SERVICE = "task_recommendations_v1"
BENCH_DIR = "scoring-bench"
PROJECT = "maestro_scoring_bench"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="MAESTRO_HOME holding the bench lake and offline features")
    parser.add_argument("--phase", default="all", choices=["all", "models", "score", "reads"])
    parser.add_argument("--store", default="both", choices=["both", "local", "server"])
    parser.add_argument("--reads", type=int, default=2000, help="timed reads per store (after 100 warm-up reads)")
    parser.add_argument("--ranking-train-days", type=float, default=1.0)
    parser.add_argument("--duration-train-days", type=float, default=7.0)
    parser.add_argument("--valid-days", type=float, default=1.0)
    parser.add_argument("--max-rows", type=int, default=100_000, help="ranker training rows (--max-rows)")
    parser.add_argument("--valid-max-rows", type=int, default=50_000, help="ranker validation rows")
    parser.add_argument("--skip-models", action="store_true", help="reuse the champions of an earlier run")
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end runs, each followed by its floor")
    return parser.parse_args()


def emit(payload: dict) -> None:
    payload["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(payload, default=float), flush=True)


def bench_dir(home: str) -> Path:
    return Path(home) / BENCH_DIR


def scoring_env(home: str) -> dict[str, str]:
    """The scoring project's registry, Feast project and online store: all under ``<home>/scoring-bench``."""
    base = bench_dir(home)
    return {
        "MAESTRO_HOME": home,
        "MLFLOW_TRACKING_URI": f"sqlite:///{base / 'mlflow' / 'mlflow.db'}",
        "MAESTRO_FEAST_PROJECT": PROJECT,
        "MAESTRO_FEAST_REGISTRY_PATH": str(base / "feast" / "registry.db"),
        "MAESTRO_FEAST_ONLINE_PATH": str(base / "feast" / "online.db"),
    }


def _use_env(env: dict[str, str]) -> Any:
    from maestro_ml.settings import get_settings

    os.environ.update(env)
    get_settings.cache_clear()
    return get_settings()


# --- models -------------------------------------------------------------------------------------------------


def phase_models(args: argparse.Namespace) -> None:
    from maestro_ml.contracts.models import model_spec
    from maestro_ml.feast_ext.steps import materialize_all
    from maestro_ml.feast_ext.store import apply_if_changed, get_store
    from maestro_ml.features.training_sets import training_set
    from maestro_ml.lake import committed_hours
    from maestro_ml.registry import ensure_experiment, register_challenger
    from maestro_ml.registry.aliases import alias_state, promote
    from maestro_ml.scoring.open_tasks import scoring_time

    base = bench_dir(args.home)
    (base / "mlflow").mkdir(parents=True, exist_ok=True)
    (base / "sets").mkdir(parents=True, exist_ok=True)
    settings = _use_env(scoring_env(args.home))
    apply_if_changed(settings)
    store = get_store(settings)
    at = scoring_time(settings.lake_uri)
    first = min(committed_hours(settings.lake_uri))
    out: dict[str, Any] = {"phase": "models", "at": at.isoformat()}

    valid_end = at - timedelta(days=1)  # the newest day is not trained on
    windows = {
        "ranking": (valid_end - timedelta(days=args.valid_days + args.ranking_train_days),
                    valid_end - timedelta(days=args.valid_days), valid_end),
        "duration": (valid_end - timedelta(days=args.valid_days + args.duration_train_days),
                     valid_end - timedelta(days=args.valid_days), valid_end),
    }
    uris = {}
    for kind, (lo, split, hi) in windows.items():
        started = time.perf_counter()
        train = training_set(kind, lo, split, store=store, settings=settings)
        valid = training_set(kind, split, hi, store=store, settings=settings,
                             max_rows=args.valid_max_rows if kind == "ranking" else None)
        uris[kind] = (str(base / "sets" / f"{kind}_train.parquet"), str(base / "sets" / f"{kind}_valid.parquet"))
        train.to_parquet(uris[kind][0])
        valid.to_parquet(uris[kind][1])
        out[f"{kind}_set"] = {"window": f"{lo:%Y-%m-%dT%H}..{split:%Y-%m-%dT%H}..{hi:%Y-%m-%dT%H}",
                              "train_rows": len(train), "valid_rows": len(valid),
                              "seconds": round(time.perf_counter() - started, 1)}
        print(f"# {kind} sets: {out[f'{kind}_set']}", flush=True)

    knobs = {"task_assignment": ["--epochs", "2", "--lgb-num-boost-round", "100", "--max-rows", str(args.max_rows)],
             "task_duration": ["--epochs", "5"]}
    versions = {}
    for model, extra in knobs.items():
        kind = model_spec(model).training_set
        ensure_experiment(model, settings)  # artifacts under the home, not ./mlruns
        cmd = ["nice", "-n", "5", sys.executable, "-m", "maestro_ml.training", model, "--train-uri", uris[kind][0],
               "--valid-uri", uris[kind][1], "--tracking-uri", settings.mlflow_tracking_uri,
               "--run-tags", f"dag_id=scoring_benchmark,run_id=manual__bench,window_end={valid_end.isoformat()}",
               "--threads", "2", *extra]
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")})
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
            raise SystemExit(f"training {model} failed")
        run_id = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][0])["run_id"]
        version = register_challenger(model, run_id, settings)["version"]
        promote(model, version, alias_state(model, settings), settings)
        versions[model] = version
        out[f"{model}_training_s"] = round(time.perf_counter() - started, 1)
        print(f"# {model}: v{version} champion ({out[f'{model}_training_s']} s)", flush=True)
    out["versions"] = versions

    started = time.perf_counter()
    window = {"start": first.isoformat() if hasattr(first, "isoformat") else str(first), "end": at.isoformat()}
    materialized = materialize_all(window, settings)
    out["materialize_s"] = round(time.perf_counter() - started, 1)
    out["materialized_rows"] = {k: v.get("rows") for k, v in materialized.items()}
    out["materialize_window"] = window
    emit(out)


# --- score --------------------------------------------------------------------------------------------------


class Recording:
    """A pyfunc that records every frame it is asked to predict and how long the predict took."""

    def __init__(self, pyfunc: Any) -> None:
        self._pyfunc = pyfunc
        self.frames: list[Any] = []
        self.seconds = 0.0

    def predict(self, frame: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        out = self._pyfunc.predict(frame, *args, **kwargs)
        self.seconds += time.perf_counter() - started
        self.frames.append(frame)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pyfunc, name)


def _score_once(settings: Any) -> dict[str, Any]:
    """One end-to-end run (a first run of the hour), then the floor on the very frames it predicted."""
    import gc

    from maestro_ml.contracts.scores import DEFAULT_TOP_K
    from maestro_ml.feast_ext.store import get_store
    from maestro_ml.scoring import publish
    from maestro_ml.scoring import score as score_module
    from maestro_ml.scoring.champions import load_champion, resolve_champions
    from maestro_ml.scoring.open_tasks import candidate_pairs, open_tasks, scoring_time
    from maestro_ml.scoring.score import Timings, score_tasks, serve

    shutil.rmtree(publish.table_uri(settings), ignore_errors=True)  # a first run of the hour, every time
    gc.collect()
    timings = Timings()
    wall = time.perf_counter()

    started = time.perf_counter()
    at = scoring_time(settings.lake_uri)
    store = get_store(settings)
    served = {model: serve(champion, load_champion(champion, settings), store)
              for model, champion in resolve_champions(settings).items()}
    timings.add("load_champions", started)
    recorders = {}
    for model, s in served.items():
        recorders[model] = s.pyfunc = Recording(s.pyfunc)
    # Instrumentation only: the LightGBM contributions of the top-k rows (the reasons), timed inside "predict".
    contrib_s = [0.0]
    contributions = score_module.contributions

    def timed_contributions(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return contributions(*a, **k)
        finally:
            contrib_s[0] += time.perf_counter() - t0

    score_module.contributions = timed_contributions
    try:
        started = time.perf_counter()
        tasks = open_tasks(settings.lake_uri, at)
        pairs = candidate_pairs(settings.lake_uri, tasks[tasks["assigned"] == 0], at,
                                manager_min_assignments=settings.manager_min_assignments)
        timings.add("open_tasks", started)
        scores = score_tasks(tasks, pairs, at, store, served.get("task_assignment"), served.get("task_duration"),
                             top_k=DEFAULT_TOP_K, timings=timings)
        started = time.perf_counter()
        written = publish.write_scores(scores, at, settings)
        timings.add("write_lake", started)
        started = time.perf_counter()
        pushed = publish.push_scores(written["hour"], store, settings)
        timings.add("push_online", started)
    finally:
        score_module.contributions = contributions
    wall = time.perf_counter() - wall
    seconds = dict(timings.seconds)

    # The floor: the bare predict of each champion on the very frames the run passed it, right after the run.
    floor = {}
    for model, rec in recorders.items():
        t0 = time.perf_counter()
        for frame in rec.frames:
            rec._pyfunc.predict(frame)
        floor[model] = time.perf_counter() - t0
    floor_total = sum(floor.values())
    # Below the floor, for reference: the models' own predict on the same frames, without MLflow's input
    # schema enforcement (the signature declares every numeric input AnyType: MLflow checks it value by value).
    model_only = {}
    for model, rec in recorders.items():
        python_model = rec._pyfunc.unwrap_python_model()
        t0 = time.perf_counter()
        for frame in rec.frames:
            python_model.predict(None, frame)
        model_only[model] = time.perf_counter() - t0
    work = sum(seconds[k] for k in ("open_tasks", "online_read", "predict", "assemble", "write_lake",
                                    "push_online") if k in seconds)
    unassigned = int((tasks["assigned"] == 0).sum())
    return {
        "at": at.isoformat(),
        "hour": written["hour"],
        "open_tasks": len(tasks),
        "unassigned": unassigned,
        "candidate_rows": len(pairs),
        "candidates_per_unassigned_task": round(len(pairs) / max(unassigned, 1), 1),
        "duration_rows": sum(len(f) for f in recorders["task_duration"].frames) if "task_duration" in recorders else 0,
        "ranker_columns": int(recorders["task_assignment"].frames[0].shape[1]) if "task_assignment" in recorders else 0,
        "lake_rows": written["rows"],
        "pushed": pushed.get("pushed"),
        "features_missing": int(scores["features_missing"].sum()),
        "versions": {model: s.version for model, s in served.items()},
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "predict_calls_in_run_s": {m: round(r.seconds, 2) for m, r in recorders.items()},
        "contributions_in_run_s": round(contrib_s[0], 2),
        "wall_s": round(wall, 2),
        "end_to_end_s": round(work, 2),
        "floor_predict_s": {m: round(v, 2) for m, v in floor.items()},
        "floor_s": round(floor_total, 2),
        "model_predict_without_schema_enforcement_s": {m: round(v, 2) for m, v in model_only.items()},
        "ratio_end_to_end_to_floor": round(work / floor_total, 2),
        "ratio_wall_to_floor": round(wall / floor_total, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


def phase_score(args: argparse.Namespace) -> None:
    import statistics

    settings = _use_env(scoring_env(args.home))
    runs = []
    for i in range(args.repeats):
        runs.append(_score_once(settings))
        print(f"# score run {i + 1}: end to end {runs[-1]['end_to_end_s']} s, floor {runs[-1]['floor_s']} s, "
              f"ratio {runs[-1]['ratio_end_to_end_to_floor']}x, load {runs[-1]['load_average_1m_after']}", flush=True)
    summary = dict(runs[-1])
    for key in ("end_to_end_s", "wall_s", "floor_s", "ratio_end_to_end_to_floor", "ratio_wall_to_floor"):
        summary[f"median_{key}"] = round(statistics.median(r[key] for r in runs), 2)
    summary["median_seconds"] = {k: round(statistics.median(r["seconds"][k] for r in runs), 2)
                                 for k in runs[0]["seconds"]}
    emit({"phase": "score", "repeats": args.repeats, **summary, "runs": runs})


# --- reads --------------------------------------------------------------------------------------------------


def _percentiles(values: list[float]) -> dict[str, float]:
    import numpy as np

    return {"p50_ms": round(float(np.percentile(values, 50)), 3), "p99_ms": round(float(np.percentile(values, 99)), 3),
            "max_ms": round(float(np.max(values)), 3)}


def _raw_reader(store: Any, kind: str) -> tuple[Any, Any]:
    """(key of a task id, raw read of a key) on the store's own online store."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import compute_table_id
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    config = store.config
    online_store = store._get_provider().online_store
    view = store.get_feature_view("task_recommendations")
    version = config.entity_key_serialization_version

    def entity(task_id: str) -> EntityKey:
        return EntityKey(join_keys=["task_id"], entity_values=[Value(string_val=task_id)])

    if kind == "local":
        conn = online_store._get_conn(config)
        table = compute_table_id(config.project, view, False)
        sql = f'SELECT entity_key, feature_name, value, event_ts FROM "{table}" WHERE entity_key = ?'

        def key_of(task_id: str) -> bytes:
            return serialize_entity_key(entity(task_id), entity_key_serialization_version=version)

        return key_of, lambda key: conn.execute(sql, (key,)).fetchall()
    client = online_store._get_client(config.online_store)

    def redis_key(task_id: str) -> bytes:
        # The stock Redis store's own key function: the key Feast wrote and reads.
        return online_store._generate_redis_keys_for_entities(config, [entity(task_id)])[0]

    return redis_key, client.hgetall


def phase_reads(args: argparse.Namespace, kind: str) -> None:
    import gc

    import numpy as np

    from maestro_ml.feast_ext.store import apply_if_changed, get_store
    from maestro_ml.scoring import publish

    base = scoring_env(args.home)
    settings = _use_env(base)
    hours = publish.scored_hours(settings)
    if not hours:
        raise SystemExit("no scored hour in the lake: run --phase score first")
    hour = hours[-1]
    task_ids = publish.read_hour(hour, settings)["task_id"].astype(str).tolist()

    project = f"maestro_reads_{uuid.uuid4().hex[:8]}"
    env = {"MAESTRO_FEAST_PROJECT": project}
    database = None
    if kind == "server":
        import psycopg

        database = f"{project}_registry"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        env.update({"MAESTRO_FEAST_ENV": "server", "MAESTRO_FEAST_REGISTRY_SQL_URI": f"{PG}/{database}"})
    else:
        folder = bench_dir(args.home) / project
        env.update({"MAESTRO_FEAST_REGISTRY_PATH": str(folder / "registry.db"),
                    "MAESTRO_FEAST_ONLINE_PATH": str(folder / "online.db")})
    settings = _use_env(env)
    store = None
    try:
        started = time.perf_counter()
        apply_if_changed(settings)
        apply_s = time.perf_counter() - started
        store = get_store(settings)
        started = time.perf_counter()
        pushed = publish.push_scores(hour, store, settings)
        push_s = time.perf_counter() - started

        key_of, raw = _raw_reader(store, kind)
        rng = np.random.default_rng(0)
        warm = 100
        picked = [task_ids[i] for i in rng.integers(0, len(task_ids), size=args.reads + warm)]
        keys = [key_of(t) for t in picked]

        def feast_call(i: int) -> Any:
            return store.get_online_features(features=store.get_feature_service(SERVICE),
                                             entity_rows=[{"task_id": picked[i]}])

        def feast_dict(i: int) -> Any:
            return feast_call(i).to_dict()

        service = store.get_feature_service(SERVICE)  # held, as a serving process would hold it

        def held_dict(i: int) -> Any:
            return store.get_online_features(features=service, entity_rows=[{"task_id": picked[i]}]).to_dict()

        checked = 0
        for i in range(warm):  # warm-up: registry cache, connections, code paths; answers checked against raw
            got = feast_dict(i)
            cells = raw(keys[i])
            assert got["task_id"] == [picked[i]] and len(cells) > 0, (picked[i], got, cells)
            assert held_dict(i) == got
            assert got["scoring_hour"] == [hour], got["scoring_hour"]
            checked += 1
        gc.collect()
        gc.freeze()
        load_before = os.getloadavg()
        calls = {"get_online_features": feast_call, "get_online_features_to_dict": feast_dict,
                 "service_held_to_dict": held_dict, "raw": lambda i: raw(keys[i])}
        timings: dict[str, list[float]] = {name: [] for name in calls}
        order = list(calls)
        for i in range(warm, warm + args.reads):
            order = order[1:] + order[:1]  # rotate: no path always runs right after another
            for name in order:
                t0 = time.perf_counter()
                calls[name](i)
                timings[name].append((time.perf_counter() - t0) * 1000)
        gc.unfreeze()
        sample = raw(keys[-1])
        emit({
            "phase": "reads",
            "store": kind,
            "hour": hour,
            "tasks_in_hour": len(task_ids),
            "reads": args.reads,
            "answers_checked": checked,
            "stored_cells_per_key": len(sample),
            "apply_s": round(apply_s, 2),
            "push_s": round(push_s, 2),
            "pushed": pushed.get("pushed"),
            **{name: _percentiles(values) for name, values in timings.items()},
            "ratio_to_raw_p50": round(float(np.percentile(timings["get_online_features_to_dict"], 50)
                                            / np.percentile(timings["raw"], 50)), 1),
            "ratio_to_raw_p99": round(float(np.percentile(timings["get_online_features_to_dict"], 99)
                                            / np.percentile(timings["raw"], 99)), 1),
            "ratio_held_to_raw_p50": round(float(np.percentile(timings["service_held_to_dict"], 50)
                                                 / np.percentile(timings["raw"], 50)), 1),
            "ratio_held_to_raw_p99": round(float(np.percentile(timings["service_held_to_dict"], 99)
                                                 / np.percentile(timings["raw"], 99)), 1),
            "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        })
    finally:
        if store is not None:
            store.teardown()  # the throwaway project's tables or Redis keys
        if kind == "server":
            import redis

            left = list(redis.Redis(host="127.0.0.1", port=6379).scan_iter(match=f"*{project}"))
            print(f"# redis keys left for {project}: {len(left)}", flush=True)
        if database:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        if kind == "local":
            shutil.rmtree(bench_dir(args.home) / project, ignore_errors=True)


# --- driver -------------------------------------------------------------------------------------------------


def run_phase(args: argparse.Namespace, phase: str, extra: list[str]) -> list[dict]:
    cmd = [sys.executable, __file__, "--home", args.home, "--phase", phase, "--reads", str(args.reads),
           "--ranking-train-days", str(args.ranking_train_days), "--duration-train-days",
           str(args.duration_train_days), "--valid-days", str(args.valid_days), "--max-rows", str(args.max_rows),
           "--valid-max-rows", str(args.valid_max_rows), "--repeats", str(args.repeats), *extra]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-8000:])
        raise SystemExit(f"phase {phase} failed")
    for line in out.stdout.splitlines():
        if line.startswith("#"):
            print(line, flush=True)
    results = [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    for r in results:
        r["process_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(r), flush=True)
    return results


def main() -> None:
    args = parse_args()
    os.environ.setdefault("MAESTRO_PII_KEY", "benchmark-only-key")
    if args.phase == "models":
        return phase_models(args)
    if args.phase == "score":
        return phase_score(args)
    if args.phase == "reads" and args.store != "both":
        return phase_reads(args, args.store)

    print(f"# scoring benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, MAESTRO_HOME={args.home}", flush=True)
    results = []
    if args.phase == "all":
        if not args.skip_models:
            results += run_phase(args, "models", [])
        results += run_phase(args, "score", [])
    stores = ["local", "server"] if args.store == "both" else [args.store]
    for kind in stores:
        results += run_phase(args, "reads", ["--store", kind])

    for r in results:
        if r["phase"] == "score":
            print(f"\nscore: {r['open_tasks']:,} open tasks ({r['unassigned']:,} unassigned, {r['candidate_rows']:,} "
                  f"candidate rows, {r['duration_rows']:,} duration rows) at {r['at']}, {r['repeats']} runs")
            print("| phase | " + " | ".join(f"run {i + 1}" for i in range(len(r["runs"]))) + " | median |")
            print("|---|" + "---|" * (len(r["runs"]) + 1))
            for k in r["median_seconds"]:
                print(f"| {k} | " + " | ".join(str(run["seconds"][k]) for run in r["runs"])
                      + f" | {r['median_seconds'][k]} |")
            for key, label in (("end_to_end_s", "end to end (open_tasks .. push_online)"),
                               ("floor_s", "floor: bare pyfunc.predict, both models"),
                               ("ratio_end_to_end_to_floor", "ratio end to end / floor")):
                print(f"| {label} | " + " | ".join(str(run[key]) for run in r["runs"])
                      + f" | **{r['median_' + key]}** |")
        elif r["phase"] == "reads":
            f, d, w = r["get_online_features"], r["get_online_features_to_dict"], r["raw"]
            h = r["service_held_to_dict"]
            print(f"| {r['store']} | {r['reads']} | get_online_features p50 {f['p50_ms']} / p99 {f['p99_ms']} ms; "
                  f"+ to_dict p50 {d['p50_ms']} / p99 {d['p99_ms']} ms; service held + to_dict p50 {h['p50_ms']} / "
                  f"p99 {h['p99_ms']} ms | raw p50 {w['p50_ms']} / p99 {w['p99_ms']} ms "
                  f"| {r['ratio_to_raw_p50']}x / {r['ratio_to_raw_p99']}x (held {r['ratio_held_to_raw_p50']}x / "
                  f"{r['ratio_held_to_raw_p99']}x) |")


if __name__ == "__main__":
    main()
