"""The README's REST examples: dates inside the data `make up` seeded, the Params the DAGs accept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from maestro_ml.platform.examples import curl_commands, examples
from maestro_ml.settings import parse_utc_hour

START = datetime(2026, 11, 18, 10, tzinfo=UTC)


@pytest.mark.parametrize("days", [2, 14])
def test_every_example_lies_inside_the_seeded_window(days: int) -> None:
    end = START + timedelta(days=days)
    for item in examples(START, days):
        conf = item.conf
        if "partition" in conf:
            assert START <= parse_utc_hour(conf["partition"]) < end
        elif item.dag_id == "ingest_events":
            assert START <= parse_utc_hour(conf["start"]) < parse_utc_hour(conf["end"]) <= end
        elif "train_days" in conf:
            window_end = datetime.fromisoformat(conf["end"]).replace(tzinfo=UTC)
            window = timedelta(days=conf["train_days"] + conf["valid_days"] + conf["test_days"])
            assert window_end - window >= START and window_end <= end
            assert conf["train_days"] >= conf["valid_days"] > 0
        else:
            assert datetime.fromisoformat(conf["start"]).replace(tzinfo=UTC) >= START


def test_the_printed_commands_carry_each_request_body_as_json() -> None:
    items = examples(START, 14)
    printed = curl_commands(items, "http://localhost:9999")
    for item in items:
        assert f"/api/v2/dags/{item.dag_id}/dagRuns" in printed
        assert json.dumps(item.body) in printed
    assert printed.startswith("TOKEN=$(curl -s -X POST http://localhost:9999/auth/token")


def test_the_readme_shows_the_requests_make_up_prints_for_its_stated_start() -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "MAESTRO_START_DATE=2026-11-18T10:00:00Z" in readme
    shown = [json.loads(body) for body in re.findall(r"-d '(\{\"logical_date\".*?)'\n", readme)]
    assert shown == [item.body for item in examples(START, 14)]
