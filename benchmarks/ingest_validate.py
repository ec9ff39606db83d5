"""Ingestion and validation benchmark on the ``bench`` preset (>= 1M events), with the floor measured in the same run.

Phases, each in its own process so peak memory (max RSS) is its own:

* ``floor``: a bare ``pyarrow.json`` read of every landing file plus a bare Parquet write of the result.
* ``ingest``: our parse + quarantine + PII + dedupe + atomic commit (+ state fold) of every hour
  through ``ingest_hours`` (a catch-up: one process, each hour its own commit and manifest).
* ``ingest_overlap``: the same with ``overlap=True`` (next hour parsed, previous hour's state folded
  in other threads), into a lake of its own.
* ``validate``: the Great Expectations event suite on all committed events as one batch.
* ``hours``: the cost of re-ingesting and validating hour 1 and the last hour, to show that
  hour N costs what hour 1 does however long the history.

Run: ``.venv/bin/python benchmarks/ingest_validate.py [--home DIR] [--dirt]``.
The clean preset is the default, because the floor's bare reader stops at the first malformed line;
``--dirt`` measures our path on dirty data too.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))

START = datetime(2026, 10, 1, tzinfo=UTC)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", default=None, help="MAESTRO_HOME for the run (default: a temporary directory)")
    parser.add_argument("--dirt", action="store_true", help="simulate with the default dirt rates")
    parser.add_argument("--phase", default="all",
                        choices=["all", "simulate", "floor", "ingest", "ingest_overlap", "validate", "hours"])
    return parser.parse_args()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(payload: dict) -> None:
    print("RESULT " + json.dumps(payload), flush=True)


def phase_simulate(dirt: bool) -> None:
    from maestro_ml.settings import get_settings
    from maestro_ml.simulation import DirtRates, config_for_preset, simulate

    settings = get_settings()
    overrides = {} if dirt else {"dirt": DirtRates.off()}
    started = time.perf_counter()
    summary = simulate(config_for_preset("bench", start=START, **overrides), settings.landing_uri, settings.truth_uri)
    emit({"phase": "simulate", "events": summary.events_written, "files": summary.files,
          "seconds": round(time.perf_counter() - started, 2)})


def _hours() -> list[datetime]:
    from maestro_ml.settings import get_settings
    from maestro_ml.storage import read_json

    summary = read_json(f"{get_settings().truth_uri}/summary.json")
    end = datetime.fromisoformat(summary["window_end"].replace("Z", "+00:00"))
    return [START + timedelta(hours=i) for i in range(int((end - START).total_seconds() // 3600))]


def phase_floor() -> None:
    import gzip

    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    from maestro_ml.settings import get_settings
    from maestro_ml.storage import glob, read_bytes

    settings = get_settings()
    files = glob(f"{settings.landing_uri}/events/dt=*/hour=*/*.jsonl.gz")
    out = Path(settings.home) / "floor"
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = 0
    for i, uri in enumerate(files):
        table = pj.read_json(pa.BufferReader(gzip.decompress(read_bytes(uri))))
        pq.write_table(table, out / f"{i}.parquet")
        rows += table.num_rows
    emit({"phase": "floor", "rows": rows, "files": len(files), "seconds": round(time.perf_counter() - started, 3),
          "peak_rss_mb": round(peak_rss_mb())})


def phase_ingest(overlap: bool = False) -> None:
    """All hours through ``ingest_hours`` (a catch-up): each hour its own commit and manifest."""
    from maestro_ml.ingestion import ingest_hours

    hours = _hours()
    steps: dict[str, float] = {}
    started, cpu = time.perf_counter(), time.process_time()
    manifests = ingest_hours(hours, overlap=overlap)
    work, cpu = time.perf_counter() - started, time.process_time() - cpu
    for manifest in manifests:
        for step, seconds in manifest["timings_s"].items():
            steps[step] = steps.get(step, 0.0) + seconds
    emit({"phase": "ingest_overlap" if overlap else "ingest", "hours": len(manifests),
          "lines_in": sum(m["lines_in"] for m in manifests), "rows_valid": sum(m["rows_valid"] for m in manifests),
          "seconds": round(work, 3), "cpu_seconds": round(cpu, 3), "peak_rss_mb": round(peak_rss_mb()),
          "ms_per_hour": {k: round(1000 * v / len(manifests), 1) for k, v in steps.items()}})


def phase_validate() -> None:
    from maestro_ml.contracts.events import EVENT_TYPES
    from maestro_ml.lake import read_events, read_state
    from maestro_ml.settings import get_settings
    from maestro_ml.validation import validate_events

    settings = get_settings()
    hours = _hours()
    tables = {t: read_events(settings.lake_uri, t) for t in EVENT_TYPES}
    rows = sum(t.num_rows for t in tables.values())
    known = {e: read_state(settings.lake_uri, e) for e in ("users", "projects", "tasks")}
    base_rss = peak_rss_mb()
    # One warm-up on a slice so the figure is the suite, not the one-off GX import.
    validate_events({t: tb.slice(0, 100) for t, tb in tables.items()}, hours[0], hours[-1] + timedelta(hours=1),
                    trailing_volumes=[], known_ids=known, settings=settings, run_name="bench-warmup")
    started = time.perf_counter()
    outcome = validate_events(tables, hours[0], hours[-1] + timedelta(hours=1), trailing_volumes=[],
                              known_ids=known, settings=settings, run_name="bench-all")
    emit({"phase": "validate", "rows": rows, "seconds": round(time.perf_counter() - started, 3),
          "expectations": outcome.statistics.get("expectations"), "success": outcome.success,
          "critical": len(outcome.critical_failures), "peak_rss_mb": round(peak_rss_mb()),
          "rss_before_mb": round(base_rss)})


def phase_hours() -> None:
    from maestro_ml.ingestion import ingest_hour
    from maestro_ml.ingestion.steps import validate_current_state

    hours = _hours()
    picks = {"first": hours[1], "last": hours[-1]}
    ingest_hour(hours[0])  # warm imports
    validate_current_state(hours[0].isoformat())
    result = {}
    for name, hour in picks.items():
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            ingest_hour(hour)
            validate_current_state(hour.isoformat())
            runs.append(time.perf_counter() - started)
        result[name] = round(sorted(runs)[1], 3)
    emit({"phase": "hours", "median_s": result, "hours": {k: v.isoformat() for k, v in picks.items()}})


def run_phase(phase: str, env: dict[str, str], dirt: bool) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase] + (["--dirt"] if dirt else [])
    if phase == "ingest_overlap":  # its own lake: the same landing files, ingested a second time
        home = env["MAESTRO_HOME"]
        env = {**env, "MAESTRO_LAKE_URI": f"{home}/lake-overlap", "MAESTRO_QUARANTINE_URI": f"{home}/quarantine-overlap"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"phase {phase} failed")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    args = parse_args()
    if args.phase != "all":
        {"simulate": lambda: phase_simulate(args.dirt), "floor": phase_floor, "ingest": phase_ingest,
         "ingest_overlap": lambda: phase_ingest(overlap=True), "validate": phase_validate,
         "hours": phase_hours}[args.phase]()
        return
    home = args.home or tempfile.mkdtemp(prefix="maestro-bench-")
    env = {**os.environ, "MAESTRO_HOME": home, "MAESTRO_PII_KEY": os.environ.get("MAESTRO_PII_KEY", "bench-key"),
           "PYTHONPATH": str(REPO_ROOT / "plugins")}
    for name in ("MAESTRO_LANDING_URI", "MAESTRO_LAKE_URI", "MAESTRO_QUARANTINE_URI", "MAESTRO_REPORTS_URI"):
        env.pop(name, None)
    phases = ("simulate", "floor", "ingest", "ingest_overlap", "validate", "hours")
    results = {p: run_phase(p, env, args.dirt) for p in phases}
    sim, floor, ingest, overlap, val, hours = (results[p] for p in phases)
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {platform.python_version()}, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, dirt={'on' if args.dirt else 'off'}")
    print(f"simulated {sim['events']:,} events in {sim['files']} files ({sim['seconds']} s)")
    print("| step | rows | seconds | rows/s | peak RSS MB |")
    print("|---|---|---|---|---|")
    print(f"| floor: pyarrow.json read + Parquet write | {floor['rows']:,} | {floor['seconds']} | "
          f"{floor['rows'] / floor['seconds']:,.0f} | {floor['peak_rss_mb']} |")
    for name, run in (("", ingest), (", overlap=True", overlap)):
        print(f"| ours: parse+quarantine+PII+dedupe+commit+state, ingest_hours({run['hours']} hours{name}) | "
              f"{run['lines_in']:,} | {run['seconds']} | {run['lines_in'] / run['seconds']:,.0f} | "
              f"{run['peak_rss_mb']} |")
    print(f"| GX event suite, one batch | {val['rows']:,} | {val['seconds']} | {val['rows'] / val['seconds']:,.0f} | "
          f"{val['peak_rss_mb']} |")
    print(f"ratio ours/floor (ingest): {ingest['seconds'] / floor['seconds']:.2f}x; "
          f"overlap=True: {overlap['seconds'] / floor['seconds']:.2f}x")
    for name, run in (("ingest", ingest), ("overlap", overlap)):
        print(f"{name}: CPU {run['cpu_seconds']} s for {run['seconds']} s wall; ms per hour by step "
              f"(summed over threads): {run['ms_per_hour']}")
    print(f"ingest + validate total work: {ingest['seconds'] + val['seconds']:.1f} s")
    print(f"hour cost (ingest + state validation, median of 3): first {hours['median_s']['first']} s, "
          f"last {hours['median_s']['last']} s")


if __name__ == "__main__":
    main()
