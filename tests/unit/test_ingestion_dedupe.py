"""maestro_ml.ingestion.dedupe: duplicates within the hour and against the lookback window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.ingestion_support import HOUR, ev, event_ids, ts, write_landing

from maestro_ml import lake
from maestro_ml.ingestion import ingest_hour
from maestro_ml.settings import Settings


def test_duplicates_within_the_hour_keep_the_first_by_file_then_line(settings: Settings) -> None:
    a = ev("comment_added", text="from file a")
    write_landing(settings, "part-0001.jsonl.gz", [dict(a, text="from file b, line 1"), a])
    write_landing(settings, "part-0000.jsonl.gz", [ev("comment_added"), dict(a, text="from file a")])
    manifest = ingest_hour(HOUR, settings)
    rows = lake.read_events(settings.lake_uri, "comment_added").to_pylist()
    assert [r["text"] for r in rows if r["event_id"] == a["event_id"]] == ["from file a"]
    assert manifest["rows_duplicate"] == 2 and manifest["duplicates"]["within_hour"] == 2


def test_dedupe_against_the_lookback_window_only(settings: Settings) -> None:
    assert settings.dedupe_lookback_hours == 3
    e1, e2 = ev("comment_added"), ev("comment_added")
    write_landing(settings, "part-0000.jsonl.gz", [e1, e2], hour=HOUR)
    ingest_hour(HOUR, settings)

    h1 = HOUR + timedelta(hours=2)
    e3 = ev("comment_added", at=h1)
    write_landing(settings, "part-0000.jsonl.gz", [dict(e1, text="resent"), e3, e3], hour=h1)
    first = ingest_hour(h1, settings)
    assert (first["rows_valid"], first["rows_duplicate"]) == (1, 2)
    assert (first["duplicates"]["lookback"], first["duplicates"]["within_hour"]) == (1, 1)
    assert first["duplicates"]["lookback_hours_committed"] == 1
    again = ingest_hour(h1, settings)  # re-running the hour does not see itself
    assert (again["rows_valid"], again["rows_duplicate"]) == (1, 2)
    # Re-running the earlier hour does not look forward: e1 stays where it first landed.
    assert ingest_hour(HOUR, settings)["rows_valid"] == 2
    assert sorted(event_ids(settings)) == sorted([e1["event_id"], e2["event_id"], e3["event_id"]])

    far = HOUR + timedelta(hours=settings.dedupe_lookback_hours + 1)
    write_landing(settings, "part-0000.jsonl.gz", [dict(e1, occurred_at=ts(far))], hour=far)
    assert ingest_hour(far, settings)["rows_valid"] == 1  # beyond the window: not a duplicate any more


def test_lookback_reads_one_manifest_and_index_per_hour(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in range(6):
        hour = HOUR + timedelta(hours=k)
        write_landing(settings, "part-0000.jsonl.gz", [ev("comment_added", at=hour)], hour=hour)
        ingest_hour(hour, settings)
    from maestro_ml.ingestion import dedupe as dedupe_module

    reads: list[str] = []
    real = dedupe_module.read_index
    monkeypatch.setattr(dedupe_module, "read_index", lambda uri: reads.append(uri) or real(uri))
    dedupe_module.LOOKBACK_CACHE.clear()  # a fresh process, as an Airflow task is
    manifest = ingest_hour(HOUR + timedelta(hours=5), settings)
    assert len(reads) == settings.dedupe_lookback_hours == manifest["duplicates"]["lookback_hours_committed"]
    assert all(lake.hour_key(HOUR + timedelta(hours=5)) not in uri for uri in reads)
    ingest_hour(HOUR + timedelta(hours=5), settings)
    assert len(reads) == 3  # indexes never change: a process that ingests hour after hour reads each once
