"""maestro_ml.ingestion.steps: the DAG steps end to end, object-store URIs, and ingest_hour/ingest_hours batches."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.ingestion_support import HOUR, KEY, _state, all_events, ev, write_landing

from maestro_ml import lake, storage
from maestro_ml.contracts import events
from maestro_ml.ingestion import commit as commit_module
from maestro_ml.ingestion import (
    commit_hour,
    dedupe_staged,
    ingest_hour,
    list_hour_files,
    mask_staged,
    parse_hour,
    staging_uri,
    update_state,
)
from maestro_ml.settings import Settings

# --------------------------------------------------------------------------- DAG steps


def test_dag_steps_pass_json_and_match_ingest_hour(settings: Settings, tmp_path: Path) -> None:
    items = [ev("user_joined"), ev("comment_added", text="mail x@y.example"), "[1]", ev("task_created")]
    items.append(dict(items[1]))  # duplicate line
    write_landing(settings, "part-0000.jsonl.gz", items)

    def hop(payload: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps(payload))  # what XCom does

    files = list_hour_files(settings.landing_uri, HOUR)
    staging = staging_uri(HOUR, settings)
    parsed = hop(parse_hour(files, HOUR.isoformat(), staging, settings))
    assert (parsed["lines_in"], parsed["rows_parsed"], parsed["rows_quarantined"]) == (5, 4, 1)
    masked = hop(mask_staged(parsed, settings))
    with pytest.raises(ValueError, match="masked"):
        commit_hour(masked, settings)
    deduped = hop(dedupe_staged(masked, settings))
    first = hop(commit_hour(deduped, settings))
    rows = all_events(settings)
    manifest = hop(commit_hour(deduped, settings))  # a retried task finds its staged input again
    assert manifest["token"] != first["token"] and all_events(settings) == rows
    summary = hop(update_state(first, settings))  # folds what is committed now, not the stale dict
    assert summary["state"]["rows_touched"]["users"] == 1 and summary["token"] == manifest["token"]
    assert summary["staging_removed"] and not storage.exists(staging)
    assert (manifest["rows_valid"], manifest["rows_duplicate"], manifest["rows_quarantined"]) == (3, 1, 1)

    other = dataclasses.replace(settings, lake_uri=str(tmp_path / "lake2"), quarantine_uri=str(tmp_path / "q2"))
    in_process = ingest_hour(HOUR, other)
    for key in ("lines_in", "rows_valid", "rows_duplicate", "rows_quarantined_by_reason", "rows_by_type", "pii"):
        assert in_process[key] == manifest[key]
    assert all_events(other) == all_events(settings)
    assert _state(other) == _state(settings)


def test_object_store_uris_take_the_same_code_path(settings: Settings, tmp_path: Path) -> None:
    """fsspec's in-memory file system stands in for s3://: no local-path shortcut anywhere."""
    root = f"memory://{tmp_path.name}"
    remote = dataclasses.replace(
        settings, landing_uri=f"{root}/landing", lake_uri=f"{root}/lake", quarantine_uri=f"{root}/quarantine"
    )
    try:
        write_landing(remote, "part-0000.jsonl.gz", [ev("comment_added", text="mail a@b.example"), "{bad"])
        files = list_hour_files(remote.landing_uri, HOUR)
        parsed = parse_hour(files, HOUR, staging_uri(HOUR, remote), remote)
        manifest = commit_hour(dedupe_staged(mask_staged(parsed, remote), remote), remote)
        assert update_state(manifest, remote)["staging_removed"]
        assert manifest["outputs"]["data"][0]["path"].startswith("memory://")
        assert lake.read_events(remote.lake_uri, "comment_added")["text"].to_pylist() == ["mail [EMAIL]"]
        assert lake.read_quarantine(remote.lake_uri)["raw_line"].to_pylist() == ["{bad"]
        again = ingest_hour(HOUR, remote)
        assert again["cleanup"]["removed"] == 3  # the first run's data file, id index and quarantine file
        [committed] = lake.committed_event_files(remote.lake_uri, "comment_added")
        assert storage.filesystem(committed)[1] == storage.filesystem(again["outputs"]["data"][0]["path"])[1]
    finally:
        storage.remove(root, recursive=True)


# --------------------------------------------------------------------------- batch (catch-up)


def _land_batch_hours(settings: Settings, hours: list[datetime]) -> None:
    """Hours with state events, a resent event from an earlier hour, in-hour duplicates and dirt."""
    resent = ev("comment_added", at=hours[0], text="first copy")
    for k, hour in enumerate(hours):
        items: list[dict[str, Any] | str | bytes] = [
            ev("task_created", hour, task_id=f"t_{k}"),
            ev("task_status_changed", hour, task_id="t_0", to_status=events.TASK_STATUSES[k % 5]),
            ev("user_joined", hour, user_id=f"u_{k:04d}"),
            ev("comment_added", hour, text=f"call +1 555 123 45{k:02d}"),
            "{oops",
        ]
        items.append(dict(items[-2]))  # the same line twice in one hour
        if k == 0:
            items.append(resent)
        elif k in (1, len(hours) - 1):
            items.append(dict(resent, text="resent later"))  # in, then beyond, the lookback window
        write_landing(settings, "part-0000.jsonl.gz", items, hour=hour)
        write_landing(settings, "part-0001.jsonl.gz", [ev("time_logged", hour)], hour=hour)


def _comparable(manifest: dict[str, Any]) -> dict[str, Any]:
    keys = ("hour", "lines_in", "rows_valid", "rows_duplicate", "rows_quarantined_by_reason", "rows_by_type")
    return {k: manifest[k] for k in (*keys, "duplicates", "pii")} | {"state": manifest["state"]["rows_touched"]}


@pytest.mark.parametrize("overlap", [False, True])
def test_a_batch_commits_every_hour_on_its_own_exactly_as_hour_by_hour(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, overlap: bool
) -> None:
    from maestro_ml.ingestion import ingest_hours
    from maestro_ml.ingestion import state as state_module

    monkeypatch.setattr(state_module, "COMPACT_AFTER", 3)  # compaction happens inside the batch too
    hours = [HOUR + timedelta(hours=k) for k in range(6)]
    _land_batch_hours(settings, hours)
    seen: list[str] = []
    batch = ingest_hours(list(reversed(hours)), settings, overlap=overlap, on_hour=lambda m: seen.append(m["hour"]))
    assert [m["hour"] for m in batch] == seen == [h.isoformat() for h in hours]  # oldest first, whatever the order
    for manifest in batch:  # hour == folder == manifest: one commit per hour
        stored = lake.read_manifest(settings.lake_uri, manifest["hour"])
        assert stored is not None and stored["token"] == manifest["token"]
        assert all(lake.hour_key(manifest["hour"]) in entry["path"] for entry in stored["outputs"]["data"])
    assert batch[1]["duplicates"]["lookback"] == 1  # hour 0 was committed before hour 1 was deduplicated
    assert batch[-1]["duplicates"]["lookback"] == 0  # beyond the 3-hour window

    hourly = dataclasses.replace(settings, lake_uri=str(tmp_path / "lake2"), quarantine_uri=str(tmp_path / "q2"))
    one_by_one = [ingest_hour(hour, hourly) for hour in hours]
    assert [_comparable(m) for m in batch] == [_comparable(m) for m in one_by_one]
    assert all_events(settings) == all_events(hourly)
    assert _state(settings) == _state(hourly)
    assert lake.read_quarantine(settings.lake_uri).to_pylist() == lake.read_quarantine(hourly.lake_uri).to_pylist()

    again = ingest_hours(hours, settings, overlap=overlap)  # re-running the batch replaces each hour's output
    assert all_events(settings) == all_events(hourly) and _state(settings) == _state(hourly)
    assert [m["replaced_token"] for m in again] == [m["token"] for m in batch]


def test_hours_too_big_to_overlap_are_run_one_after_the_other(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from maestro_ml.ingestion import ingest_hours
    from maestro_ml.ingestion import steps as pipeline_module

    monkeypatch.setattr(pipeline_module, "PIPELINE_MAX_LINES", 0)
    hours = [HOUR + timedelta(hours=k) for k in range(3)]
    _land_batch_hours(settings, hours)
    batch = ingest_hours(hours, settings, overlap=True)
    hourly = dataclasses.replace(settings, lake_uri=str(tmp_path / "lake2"), quarantine_uri=str(tmp_path / "q2"))
    assert [_comparable(m) for m in batch] == [_comparable(ingest_hour(h, hourly)) for h in hours]
    assert all_events(settings) == all_events(hourly) and _state(settings) == _state(hourly)


@pytest.mark.parametrize("overlap", [False, True])
def test_a_batch_stops_at_the_hour_that_fails_and_a_rerun_completes_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, overlap: bool
) -> None:
    from maestro_ml.ingestion import ingest_hours

    hours = [HOUR + timedelta(hours=k) for k in range(4)]
    _land_batch_hours(settings, hours)
    real = commit_module.write_manifest

    def killed_at_hour_2(lake_uri: str, hour: datetime, manifest: dict[str, Any]) -> None:
        if hour == hours[2]:
            raise KeyboardInterrupt("worker killed before the commit point")
        real(lake_uri, hour, manifest)

    monkeypatch.setattr(commit_module, "write_manifest", killed_at_hour_2)
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        ingest_hours(hours, settings, overlap=overlap, on_hour=lambda m: done.append(m["hour"]))
    assert done == [h.isoformat() for h in hours[:2]]  # committed, state folded
    assert [m["hour"] for m in lake.list_manifests(settings.lake_uri)] == done  # nothing of hours 2 and 3 visible
    assert {r["task_id"] for r in lake.read_state(settings.lake_uri, "tasks").to_pylist()} == {"t_0", "t_1"}
    assert all(e["occurred_at"] < hours[2] for rows in all_events(settings).values() for e in rows)

    monkeypatch.setattr(commit_module, "write_manifest", real)
    rerun = ingest_hours(hours, settings, overlap=overlap)
    assert rerun[2]["cleanup"]["swept"] is True  # the killed attempt's files are found and removed
    assert [m["hour"] for m in lake.list_manifests(settings.lake_uri)] == [h.isoformat() for h in hours]
    assert {r["task_id"] for r in lake.read_state(settings.lake_uri, "tasks").to_pylist()} == {
        f"t_{k}" for k in range(4)
    }


def test_a_batch_needs_the_pii_key_before_any_work(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_ml.ingestion import ingest_hours

    _land_batch_hours(settings, [HOUR])
    monkeypatch.delenv("MAESTRO_PII_KEY")
    with pytest.raises(RuntimeError, match="MAESTRO_PII_KEY"):
        ingest_hours([HOUR], settings)
    assert lake.list_manifests(settings.lake_uri) == []
    monkeypatch.setenv("MAESTRO_PII_KEY", KEY)
    assert ingest_hours([], settings) == []


def test_features_are_asked_for_once_a_day_and_for_every_earlier_day_a_run_changed() -> None:
    from maestro_ml.ingestion.plan import closed_days

    # The steady hourly run: nothing until the day's last hour.
    assert closed_days(["2026-11-02T10:00:00+00:00"], "2026-11-02T10:00:00+00:00") == []
    assert closed_days(["2026-11-02T23:00:00+00:00"], "2026-11-02T23:00:00+00:00") == ["2026-11-02"]
    # A catch-up across days: every complete day, not the one still filling.
    catch_up = [f"2026-11-0{d}T{h:02d}:00:00+00:00" for d in (1, 2, 3) for h in range(0, 24, 6)]
    assert closed_days(catch_up, catch_up[-1]) == ["2026-11-01", "2026-11-02"]
    # A re-ingest of an hour of an earlier day changes a complete day.
    assert closed_days(["2026-10-30T05:00:00+00:00"], "2026-11-02T10:00:00+00:00") == ["2026-10-30"]
