"""One-process baselines for a backfill through Airflow: the same hours, the same landing files.

``benchmarks/make_up.py --seed-days 30 --until catch_up`` times `make up`'s first ``ingest_events``
run: 720 seeded hours ingested through Airflow (LocalExecutor, the range path). This script ingests
the same landing files into fresh lakes in one process, each phase in its own interpreter:

* ``ingest_range``: the same work as the Airflow run (row checks, PII masking, dedupe, the GX gate
  before each hour's commit, the state);
* ``ingest_hours``: the bare ingestion without the GX gate (the issue-3 figure's "ours").

Run: ``.venv/bin/python benchmarks/backfill.py --from-home /tmp/upbench30``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PHASE = """
import json, sys, time
from datetime import timedelta
from maestro_ml.settings import get_settings
from maestro_ml.ingestion.steps import ingest_range
from maestro_ml.ingestion import ingest_hours
settings = get_settings()
hours = [settings.start_date + timedelta(hours=i) for i in range(int(sys.argv[2]))]
started = time.perf_counter()
if sys.argv[1] == "ingest_range":
    ingest_range(hours, settings)
else:
    ingest_hours(hours, settings)
print(json.dumps({"phase": sys.argv[1], "hours": len(hours), "seconds": round(time.perf_counter() - started, 1)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-home", required=True, help="the MAESTRO_HOME whose landing zone and start to use")
    parser.add_argument("--hours", type=int, default=720, help="hours from the start date")
    args = parser.parse_args()
    source = Path(args.from_home)
    platform_env = dict(line.split("=", 1) for line in (source / "platform.env").read_text().split())
    for phase in ("ingest_range", "ingest_hours"):
        with tempfile.TemporaryDirectory(prefix=f"backfill-{phase}-") as home:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MAESTRO_", "AIRFLOW"))}
            env.update(MAESTRO_HOME=home, MAESTRO_LANDING_URI=str(source / "landing"),
                       MAESTRO_START_DATE=platform_env["MAESTRO_START_DATE"], MAESTRO_PII_KEY="benchmark-key",
                       PYTHONPATH=str(REPO / "plugins"))
            out = subprocess.run([sys.executable, "-c", PHASE, phase, str(args.hours)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            print(out.strip().splitlines()[-1], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
