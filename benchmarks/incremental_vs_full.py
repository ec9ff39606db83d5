"""An incremental feature build against a full rebuild: the number of differing values.

For each of a few days of a ``make demo`` home's lake, the features of that day computed alone (as the
hourly ``build_features`` run computes them) are compared, value for value, with the same day's rows
of one build over the whole window. Every view, every column; nulls equal nulls.

    .venv/bin/python benchmarks/incremental_vs_full.py /tmp/demo_trk [--days 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from maestro_ml import lake
from maestro_ml.contracts.features import TIMESTAMP_COLUMN
from maestro_ml.features.compute import compute_features, load_inputs


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path, help="the MAESTRO_HOME of a finished make demo")
    parser.add_argument("--days", type=int, default=6, help="days compared, evenly spaced over the window")
    return parser.parse_args()


def differing(left: pd.DataFrame, right: pd.DataFrame) -> int:
    """Values that differ between two frames of the same view (rows missing on either side count whole)."""
    if len(left) != len(right) or list(left.columns) != list(right.columns):
        return max(len(left), len(right)) * len(left.columns)
    count = 0
    for column in left.columns:
        a, b = left[column].to_numpy(), right[column].to_numpy()
        if a.dtype == object:
            same = np.array([(x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
                             if isinstance(x, (list, np.ndarray)) or isinstance(y, (list, np.ndarray))
                             else (pd.isna(x) and pd.isna(y)) or x == y for x, y in zip(a, b, strict=True)])
        else:
            same = (a == b) | (pd.isna(a) & pd.isna(b))
        count += int((~np.asarray(same, dtype=bool)).sum())
    return count


def main() -> int:
    args = parse_args()
    lake_uri = str(args.home / "lake")
    manifests = lake.list_manifests(lake_uri)
    hours = sorted(pd.Timestamp(m["hour"]) for m in manifests if m.get("hour"))
    if not hours:
        raise SystemExit(f"no committed hours in {lake_uri}")
    first, last = hours[0].floor("D"), hours[-1].floor("D") + pd.Timedelta(days=1)
    started = time.perf_counter()
    full = compute_features(load_inputs(lake_uri, first, last))
    full_seconds = time.perf_counter() - started
    days = pd.date_range(first, last - pd.Timedelta(days=1), periods=min(args.days, (last - first).days))
    total_values = total_diff = 0
    alone_seconds = 0.0
    for day in (d.floor("D") for d in days):
        started = time.perf_counter()
        alone = compute_features(load_inputs(lake_uri, day, day + pd.Timedelta(days=1)))
        alone_seconds += time.perf_counter() - started
        for name, frame in full.items():
            stamps = frame[TIMESTAMP_COLUMN]
            expected = frame[(stamps >= day) & (stamps < day + pd.Timedelta(days=1))].reset_index(drop=True)
            got = alone[name].reset_index(drop=True)
            total_values += expected.size
            total_diff += differing(got, expected)
    print(f"{args.home}: full rebuild {first:%Y-%m-%d}..{last:%Y-%m-%d} in {full_seconds:.1f} s; "
          f"{len(days)} days computed alone in {alone_seconds:.1f} s; "
          f"{total_diff} of {total_values:,} values differ")
    return 1 if total_diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
