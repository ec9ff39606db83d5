"""Importing exported history (``python -m maestro_ml.ingestion.import_history``): years-old events are
placed in their own hours and ingested through the range path with its gates; nothing is lost."""

from __future__ import annotations

import dataclasses
import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.ingestion_support import ev

from maestro_ml import lake
from maestro_ml.ingestion import import_history
from maestro_ml.settings import Settings, get_settings

NOW = datetime(2026, 11, 2, 13, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return dataclasses.replace(
        get_settings(), landing_uri=str(tmp_path / "landing"), lake_uri=str(tmp_path / "lake"),
        quarantine_uri=str(tmp_path / "quarantine"), reports_uri=str(tmp_path / "reports"),
        features_uri=str(tmp_path / "lake" / "features"),
    )


def _history() -> tuple[list[dict[str, Any]], list[bytes]]:
    """Two years of a small tracker's events, oldest last (exports are rarely sorted), and the dirt in them."""
    events: list[dict[str, Any]] = []
    for days_ago in (730, 400, 200, 30, 2):
        at = NOW - timedelta(days=days_ago, minutes=17)
        project = ev("project_created", at=at, project_id=f"p_{days_ago}")
        task = ev("task_created", at=at + timedelta(minutes=1), project_id=project["project_id"],
                  task_id=f"t_{days_ago}")
        comment = ev("comment_added", at=at + timedelta(hours=5), task_id=task["task_id"])
        events += [project, task, comment]
    dirt = [b"{broken", json.dumps({"event_id": "no-time", "event_type": "comment_added"}).encode()]
    return events[::-1], dirt


def _write_export(path: Path, events: list[dict[str, Any]], dirt: list[bytes]) -> None:
    lines = [json.dumps(e).encode() for e in events]
    lines.insert(3, dirt[0])
    lines.insert(7, dirt[1])
    lines.append(lines[0])  # a re-sent event: a duplicate
    body = b"\xef\xbb\xbf" + b"\r\n".join(lines) + b"\r\n"
    path.write_bytes(gzip.compress(body[: len(body) // 2]) + gzip.compress(body[len(body) // 2 :]))


def test_years_of_history_land_in_their_own_hours_and_only_the_bad_lines_are_quarantined(
    settings: Settings, tmp_path: Path
) -> None:
    events, dirt = _history()
    export = tmp_path / "tracker-export.jsonl.gz"
    _write_export(export, events, dirt)

    placement = import_history.place([str(export)], settings)
    assert (placement.lines, placement.placed, placement.unplaceable) == (len(events) + 3, len(events) + 1, 2)
    # Each day's events land in its last hour: one gated commit per day with events (5 days here).
    oldest = NOW - timedelta(days=730, minutes=17)
    assert placement.hours[0] == oldest.replace(hour=23, minute=0) and len(placement.hours) == 5
    ingested = import_history.ingest_placed(placement, settings)

    landed = {t: lake.read_events(settings.lake_uri, t)["event_id"].to_pylist()
              for t in ("project_created", "task_created", "comment_added")}
    assert sorted(i for ids in landed.values() for i in ids) == sorted(e["event_id"] for e in events)
    reasons = sorted(lake.read_quarantine(settings.lake_uri)["reason"].to_pylist())
    assert reasons == ["malformed_json", "missing_required_field"], "not one event is quarantined as stale"
    assert ingested["rows_valid"] == len(events) and ingested["state_validation"]["rows"]["tasks"] == 5

    again = import_history.place([str(export)], settings)
    assert again.files == placement.files, "the same export writes the same files"
    import_history.ingest_placed(again, settings)
    assert {t: sorted(lake.read_events(settings.lake_uri, t)["event_id"].to_pylist()) for t in landed} == {
        t: sorted(ids) for t, ids in landed.items()}


def test_the_cli_says_what_to_change_when_nothing_can_be_placed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        export = tmp_path / "export.jsonl"
        export.write_bytes(b'{"event_id": "a", "event_type": "comment_added", "occurred_at": "last tuesday"}\n')
        assert import_history.main([str(export)]) == import_history.USAGE_ERROR
        assert "occurred_at" in capsys.readouterr().err
        assert import_history.main([str(tmp_path / "missing.jsonl")]) == import_history.USAGE_ERROR
        assert "no such file" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


def test_place_only_lists_backfill_ranges_within_the_configured_maximum(settings: Settings, tmp_path: Path) -> None:
    export = tmp_path / "export.jsonl"
    spread = [ev("comment_added", at=NOW - timedelta(days=d)) for d in (300, 200, 100, 1)]
    export.write_bytes(b"\n".join(json.dumps(e).encode() for e in spread))
    placement = import_history.place([str(export)], settings, per="hour")
    assert placement.hours[0] == (NOW - timedelta(days=300)).replace(minute=0), "each event in its own hour"
    ranges = placement.ranges(settings.max_range_hours)
    assert len(ranges) == 4 and ranges[-1][1] == f"{NOW - timedelta(days=1) + timedelta(hours=1):%Y-%m-%dT%H}"
    assert all(datetime.fromisoformat(e) - datetime.fromisoformat(s) <= timedelta(hours=settings.max_range_hours)
               for s, e in ranges)
