"""maestro_ml.ingestion.commit: conservation, idempotence and the commit protocol (manifests, atomic commit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.ingestion_support import HOUR, KEY, all_events, ev, quarantine_rows, write_landing

from maestro_ml import lake, storage
from maestro_ml.ingestion import commit as commit_module
from maestro_ml.ingestion import ingest_hour
from maestro_ml.settings import Settings


def lake_files(settings: Settings) -> list[Path]:
    return sorted(p for p in Path(settings.lake_uri).rglob("*") if p.is_file())


# --------------------------------------------------------------------------- conservation, idempotence, commit


def test_ingesting_an_hour_twice_gives_identical_lake_rows(settings: Settings) -> None:
    items = [ev("comment_added", text=f"note {i}") for i in range(50)] + [ev("user_joined"), "{oops"]
    write_landing(settings, "part-0000.jsonl.gz", items)
    first = ingest_hour(HOUR, settings)
    rows_first = all_events(settings)
    files_first = lake_files(settings)
    second = ingest_hour(HOUR, settings)
    assert all_events(settings) == rows_first
    assert second["token"] != first["token"] and second["replaced_token"] == first["token"]
    # The first run's data files, id index and quarantine file are gone: nothing piles up. A clean
    # earlier run leaves no attempt marker, so no date partition had to be listed to find them.
    assert second["cleanup"]["removed"] == len(first["outputs"]["data"]) + 2
    assert second["cleanup"]["swept"] is False and not storage.exists(
        commit_module.attempt_marker_uri(settings.lake_uri, HOUR)
    )
    assert len(lake_files(settings)) == len(files_first)
    assert [r["raw_line"] for r in quarantine_rows(settings)] == ["{oops"]
    for key in ("lines_in", "rows_valid", "rows_duplicate", "rows_quarantined", "rows_by_type"):
        assert first[key] == second[key]


def test_a_crash_before_the_manifest_leaves_nothing_visible_and_a_retry_completes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = [ev("comment_added", text="v1")]
    write_landing(settings, "part-0000.jsonl.gz", v1)
    ingest_hour(HOUR, settings)
    before = all_events(settings)
    state_before = lake.read_state(settings.lake_uri, "tasks")

    # The producer re-delivers the hour with more data; the worker dies between data and manifest.
    write_landing(settings, "part-0000.jsonl.gz", [*v1, ev("comment_added", text="v2"), ev("task_created")])

    def killed(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt("worker killed before the commit point")

    monkeypatch.setattr(commit_module, "write_manifest", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest_hour(HOUR, settings)
    parts = list(Path(settings.lake_uri, "events").rglob("part-*.parquet"))
    assert len(parts) > len(lake.committed_event_files(settings.lake_uri, "comment_added"))  # written, not visible
    assert all_events(settings) == before
    assert lake.read_state(settings.lake_uri, "tasks").equals(state_before)

    monkeypatch.undo()
    monkeypatch.setenv("MAESTRO_PII_KEY", KEY)
    manifest = ingest_hour(HOUR, settings)
    assert manifest["cleanup"]["swept"] is True  # the dead attempt left its marker
    texts = sorted(r["text"] for r in lake.read_events(settings.lake_uri, "comment_added").to_pylist())
    assert texts == ["v1", "v2"]
    assert manifest["rows_by_type"]["task_created"] == 1
    committed = set(map(str, Path(settings.lake_uri, "events").rglob("part-*.parquet")))
    listed = {entry["path"] for entry in manifest["outputs"]["data"]}
    assert committed == listed  # the killed attempt's files were removed with the old run's


def test_a_crash_on_the_first_run_of_an_hour_shows_an_empty_lake(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_landing(settings, "part-0000.jsonl.gz", [ev("comment_added")])

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(commit_module, "write_manifest", disk_full)
    with pytest.raises(OSError):
        ingest_hour(HOUR, settings)
    assert lake.read_events(settings.lake_uri, "comment_added").num_rows == 0
    assert lake.list_manifests(settings.lake_uri) == []


def test_conservation_is_checked_before_committing() -> None:
    with pytest.raises(commit_module.ConservationError):
        commit_module.check_conservation(10, 7, 1, 1)
    commit_module.check_conservation(10, 7, 2, 1)


def test_empty_hour_commits_a_zero_manifest(settings: Settings) -> None:
    manifest = ingest_hour(HOUR, settings)
    assert (manifest["lines_in"], manifest["rows_valid"], manifest["files_read"]) == (0, 0, [])
    assert "no landing files for this hour" in manifest["warnings"]
    assert lake.read_manifest(settings.lake_uri, HOUR)["token"] == manifest["token"]
