"""Readers of the lake: only committed files, time filters, manifests, state."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maestro_ml import lake, storage
from maestro_ml.contracts import events
from maestro_ml.ingestion import ingest_hour, landing_hour_dir
from maestro_ml.settings import Settings, load_settings

HOUR = datetime(2026, 11, 2, 13, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAESTRO_PII_KEY", "lake-test-key")
    for name in ("MAESTRO_LAKE_URI", "MAESTRO_LANDING_URI", "MAESTRO_QUARANTINE_URI"):
        monkeypatch.delenv(name, raising=False)
    return load_settings()


def land(settings: Settings, hour: datetime, minutes: list[int], prefix: str) -> list[str]:
    """Comments at ``hour + minutes`` (negative: late events); returns their ids."""
    ids = [f"{prefix}-{i}" for i in range(len(minutes))]
    lines = [
        json.dumps(
            {
                "event_id": event_id,
                "event_type": "comment_added",
                "occurred_at": (hour + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "actor_id": "u_1",
                "comment_id": f"c-{event_id}",
                "task_id": "t_1",
                "text": "hello",
            }
        )
        for event_id, m in zip(ids, minutes, strict=True)
    ]
    uri = f"{landing_hour_dir(settings.landing_uri, hour)}/part-0000.jsonl.gz"
    storage.write_bytes_atomic(uri, gzip.compress(("\n".join(lines) + "\n").encode()))
    return ids


def test_read_events_filters_on_event_time_and_keeps_the_contract_schema(settings: Settings) -> None:
    ids = land(settings, HOUR, [5, -60 * 20, -5], "a")  # 13:05, the day before 17:00, 12:55
    ingest_hour(HOUR, settings)
    table = lake.read_events(settings.lake_uri, "comment_added")
    assert table.schema == events.schema_for("comment_added") == lake.lake_schema("comment_added")
    assert sorted(table["event_id"].to_pylist()) == sorted(ids)
    window = lake.read_events(settings.lake_uri, "comment_added", HOUR - timedelta(hours=1), HOUR)
    assert window["event_id"].to_pylist() == [ids[2]]
    day_before = lake.read_events(settings.lake_uri, "comment_added", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
    assert day_before["event_id"].to_pylist() == [ids[1]]
    only = lake.read_events(settings.lake_uri, "comment_added", HOUR, columns=["event_id"])
    assert only.column_names == ["event_id"] and only.num_rows == 1
    empty = lake.read_events(settings.lake_uri, "user_left")
    assert empty.num_rows == 0 and empty.schema == events.schema_for("user_left")


def test_readers_only_see_files_of_committed_manifests(settings: Settings) -> None:
    land(settings, HOUR, [1, 2], "a")
    manifest = ingest_hour(HOUR, settings)
    committed = lake.committed_event_files(settings.lake_uri, "comment_added")
    assert committed == [entry["path"] for entry in manifest["outputs"]["data"]]
    source = Path(committed[0])
    # A leftover of a killed attempt (other token) and a file of an hour that never committed.
    shutil.copy(source, source.with_name(f"part-{lake.hour_key(HOUR)}-deadbeef.parquet"))
    shutil.copy(source, source.with_name(f"part-{lake.hour_key(HOUR + timedelta(hours=1))}-cafe.parquet"))
    assert lake.committed_event_files(settings.lake_uri, "comment_added") == committed
    assert lake.read_events(settings.lake_uri, "comment_added").num_rows == 2


def test_manifests_are_listed_by_ingest_hour(settings: Settings) -> None:
    for k in range(3):
        land(settings, HOUR + timedelta(hours=k), [1], f"h{k}")
        ingest_hour(HOUR + timedelta(hours=k), settings)
    hours = [m["hour"] for m in lake.list_manifests(settings.lake_uri, HOUR + timedelta(hours=1))]
    assert hours == [(HOUR + timedelta(hours=k)).isoformat() for k in (1, 2)]
    assert [m["hour"] for m in lake.list_manifests(settings.lake_uri, end=HOUR + timedelta(hours=1))] == [
        HOUR.isoformat()
    ]
    assert lake.read_manifest(settings.lake_uri, HOUR + timedelta(hours=5)) is None
    assert lake.read_manifest(settings.lake_uri, "2026-11-02T14:00:00Z")["rows_valid"] == 1


def test_state_of_an_empty_lake_is_an_empty_table_with_its_schema(settings: Settings) -> None:
    for name, schema in events.STATE_SCHEMAS.items():
        table = lake.read_state(settings.lake_uri, name)
        assert table.num_rows == 0 and table.schema == schema
    with pytest.raises(KeyError):
        lake.read_state(settings.lake_uri, "nope")


def test_a_state_file_rewritten_by_another_process_is_read_afresh_not_served_from_memory(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    uri = str(tmp_path / "state" / "teams" / "base.parquet")
    first = pa.table({"team_id": ["t1"]})
    (tmp_path / "state" / "teams").mkdir(parents=True)
    pq.write_table(first, uri)
    lake.STATE_FILES.remember(uri, first)
    assert lake.STATE_FILES.read(uri) is first  # the same file: no read
    second = pa.table({"team_id": ["t1", "t2"]})
    with storage.atomic_open(uri) as handle:  # another writer's atomic replace
        pq.write_table(second, handle)
    assert lake.STATE_FILES.read(uri).equals(second)
    storage.remove(uri)
    assert lake.STATE_FILES.read(uri) is None


def test_hours_are_utc_and_on_the_hour() -> None:
    assert lake.as_hour("2026-11-02T13:00:00Z") == HOUR
    assert lake.as_hour(datetime(2026, 11, 2, 13)) == HOUR
    assert lake.as_hour("2026-11-02T14:00:00+01:00") == HOUR
    assert lake.hour_key(HOUR) == "20261102T13" and lake.hour_from_key("20261102T13") == HOUR
    with pytest.raises(ValueError, match="not on the hour"):
        lake.as_hour("2026-11-02T13:30:00Z")
