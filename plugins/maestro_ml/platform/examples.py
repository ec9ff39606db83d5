"""The README's REST examples with dates that exist in this platform's data.

``make up`` seeds its demo events from ``MAESTRO_START_DATE`` (14 days before the first run, kept
in ``$MAESTRO_HOME/platform.env``), so fixed dates in a README cannot work for everyone. These
requests derive their dates from the start date; ``make up`` prints them, and
``python -m maestro_ml.platform.examples`` prints them again. The end-to-end tests send exactly
these requests to a ``make up`` stack.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from maestro_ml.settings import day_start, get_settings


@dataclass(frozen=True)
class Example:
    title: str
    dag_id: str
    conf: dict[str, Any]

    @property
    def body(self) -> dict[str, Any]:
        return {"logical_date": None, "conf": self.conf}


def examples(start: datetime, seeded_days: int) -> list[Example]:
    """One request per README example, inside ``[start, start + seeded_days)``."""
    first = day_start(start) + timedelta(days=1)  # the first whole day of data
    last = day_start(start + timedelta(days=seeded_days))  # the midnight before the data's end
    days = (last - first).days
    if days < 1:
        raise ValueError(f"{seeded_days} seeded day(s) hold no whole day; the examples need at least 2")
    hour = first + timedelta(days=min(1, days - 1), hours=9)
    backfill_end = first + timedelta(days=min(2, days))
    # Two validation and two test days when there is room, as the weekly run; quarter days at least.
    held_out: float = 2 if days >= 8 else 1 if days >= 4 else days / 4
    fmt_hour, fmt_day = "%Y-%m-%dT%H", "%Y-%m-%d"
    return [
        Example("re-ingest one hour", "ingest_events", {"partition": hour.strftime(fmt_hour)}),
        Example("backfill a range: whole days, end exclusive", "ingest_events",
                {"start": first.strftime(fmt_hour), "end": backfill_end.strftime(fmt_hour)}),
        Example("train the ranker on a window of your choosing", "train_task_assignment",
                {"end": last.strftime(fmt_day), "train_days": days - 2 * held_out, "valid_days": held_out,
                 "test_days": held_out, "max_rows": 100000, "epochs": 8,
                 "hyperparameters": {"lgb-num-boost-round": 100}}),
        Example("materialize two days into the online store", "materialize_features",
                {"start": (last - timedelta(days=min(2, days))).strftime(fmt_day), "end": last.strftime(fmt_day)}),
    ]


def curl_commands(items: list[Example], base_url: str = "http://localhost:8080") -> str:
    """The shell lines that send ``items``: a token first, then one ``curl`` per example."""
    lines = [
        f"TOKEN=$(curl -s -X POST {base_url}/auth/token -H 'Content-Type: application/json' \\",
        "  -d '{\"username\": \"admin\", \"password\": \"admin\"}' | "
        "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')",
    ]
    for item in items:
        lines.append(f"# {item.title}")
        lines.append(f"curl -s -X POST {base_url}/api/v2/dags/{item.dag_id}/dagRuns -H \"Authorization: Bearer $TOKEN\" \\")
        lines.append(f"  -H 'Content-Type: application/json' -d {shlex.quote(json.dumps(item.body))}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default=None, help="default: AIRFLOW__API__BASE_URL or http://localhost:8080")
    args = parser.parse_args(argv)
    settings = get_settings()
    items = examples(settings.start_date, settings.seed_days)
    base_url = args.base_url or os.environ.get("AIRFLOW__API__BASE_URL", "http://localhost:8080")
    print(curl_commands(items, base_url.rstrip("/")))


if __name__ == "__main__":
    main()
