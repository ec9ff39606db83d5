"""Materialization cost against the length of history (issue 12): a 14-day window over 1 month and over 1 year.

A feature view laid out as ``build_features`` writes it (one Parquet file per day, one row per entity and
day, ``--features`` float64 features) holds ``--history-days`` days; ``MaestroComputeEngine`` materializes
the newest 14 days into a fresh Maestro SQLite online store. ``read_days`` on (the engine reads only the
window's day files) against off (every chunk goes through Feast's Dask file store, which reads every file
of the directory), each measurement in its own process, ``--repeat`` times alternating, median reported.

Run: ``.venv/bin/python benchmarks/materialize_history.py [--entities N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))

END = datetime(2026, 11, 1, tzinfo=UTC)
WINDOW = timedelta(days=14)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=2_000, help="entities (one row each per day)")
    parser.add_argument("--features", type=int, default=10, help="float64 features per row")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case, alternating")
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--root", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--read-days", default="1", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def write_history(root: Path, days: int, entities: int, features: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(7)
    folder = root / "view"
    folder.mkdir(parents=True)
    ids = pa.array([f"u{i:06d}" for i in range(entities)])
    for k in range(days):
        day = END - timedelta(days=days - k)
        stamps = [day + timedelta(seconds=int(s)) for s in rng.integers(0, 86_400, entities)]
        columns = {"user_id": ids, "event_timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC"))}
        columns |= {f"f{i}": pa.array(rng.normal(size=entities)) for i in range(features)}
        pq.write_table(pa.table(columns), folder / f"{day:%Y-%m-%d}.parquet")


def phase_materialize(root: Path, read_days: bool, features: int) -> None:
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.types import Float64

    from maestro_ml.feast_ext.materialize import materialize_window

    store_dir = Path(tempfile.mkdtemp(dir=root))
    user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)
    view = FeatureView(
        name="user_history", entities=[user], ttl=timedelta(days=30),
        schema=[Field(name=f"f{i}", dtype=Float64) for i in range(features)],
        source=FileSource(path=str(root / "view"), timestamp_field="event_timestamp"),
    )
    config = RepoConfig(
        project="bench_history", provider="local", registry=str(store_dir / "registry.db"),
        online_store={"type": "maestro_ml.feast_ext.sqlite_store.MaestroSqliteOnlineStore",
                      "path": str(store_dir / "online.db")},
        offline_store={"type": "file"},
        batch_engine={"type": "maestro_ml.feast_ext.engine.MaestroComputeEngine", "read_days": read_days},
        entity_key_serialization_version=3,
    )
    fs = FeatureStore(config=config)
    fs.apply([user, view])
    started = time.perf_counter()
    result = materialize_window(fs, END - WINDOW, END)
    seconds = time.perf_counter() - started
    print("RESULT " + json.dumps({"seconds": round(seconds, 3), "rows": result["user_history"]["rows"]}))


def run(root: Path, read_days: bool, features: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--phase", "materialize", "--root", str(root), "--read-days", str(int(read_days)),
         "--features", str(features)],
        capture_output=True, text=True, check=True,
    ).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("RESULT ")][-1][7:])


def main() -> int:
    args = parse_args()
    if args.phase == "materialize":
        phase_materialize(Path(args.root), args.read_days == "1", args.features)
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        roots = {}
        for days in (30, 365):
            roots[days] = Path(tmp) / f"history-{days}"
            write_history(roots[days], days, args.entities, args.features)
        cases = [(days, read_days) for read_days in (True, False) for days in (30, 365)]
        seconds: dict[tuple[int, bool], list[float]] = {case: [] for case in cases}
        rows: dict[tuple[int, bool], int] = {}
        for _ in range(args.repeat):
            for days, read_days in cases:
                result = run(roots[days], read_days, args.features)
                seconds[(days, read_days)].append(result["seconds"])
                rows[(days, read_days)] = result["rows"]
    print(f"machine: {platform.node()}, Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
          f"{args.entities} entities x {args.features} features per day, window 14 days, median of {args.repeat}")
    print("| engine read | history | rows written | runs (s) | median s |")
    print("|---|---|---|---|---|")
    for days, read_days in cases:
        runs = seconds[(days, read_days)]
        label = "window's day files (`read_days`)" if read_days else "Dask file store, every file"
        print(f"| {label} | {days} days | {rows[(days, read_days)]:,} | {', '.join(f'{r:.2f}' for r in runs)} | "
              f"{statistics.median(runs):.2f} |")
    for read_days in (True, False):
        ratio = statistics.median(seconds[(365, read_days)]) / statistics.median(seconds[(30, read_days)])
        print(f"1 year / 1 month, read_days={read_days}: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
