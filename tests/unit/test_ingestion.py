"""The hourly ingestion: quarantine of every dirt class, conservation, dedupe, PII, commit protocol, state."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import hmac
import json
import re
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from maestro_ml import lake, storage
from maestro_ml.contracts import events
from maestro_ml.ingestion import commit as commit_module
from maestro_ml.ingestion import (
    commit_hour,
    dedupe_staged,
    ingest_hour,
    landing_hour_dir,
    list_hour_files,
    mask_staged,
    parse_hour,
    staging_uri,
    update_state,
)
from maestro_ml.ingestion.decode import decompress
from maestro_ml.ingestion.state import apply_events, compact
from maestro_ml.settings import Settings, load_settings

HOUR = datetime(2026, 11, 2, 13, tzinfo=UTC)
KEY = "unit-test-pii-key"
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"\+\d{1,3}[ -]?\(?\d|\(\d{3}\) ?\d{3}-\d{4}|\b\d{3}[-.]\d{3}[-.]\d{4}\b")
SKILLS = [0.5] * events.NUM_SKILLS


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAESTRO_PII_KEY", KEY)
    for name in ("MAESTRO_LAKE_URI", "MAESTRO_LANDING_URI", "MAESTRO_QUARANTINE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAESTRO_DEDUPE_LOOKBACK_HOURS", "3")
    return load_settings()


# --------------------------------------------------------------------------- builders


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_COUNTER = iter(range(10**9))


def ev(event_type: str, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """A valid event of ``event_type`` (every required field filled); ``fields`` override."""
    n = next(_COUNTER)
    base: dict[str, Any] = {
        "event_id": f"evt-{n:08d}",
        "event_type": event_type,
        "occurred_at": ts(at or HOUR + timedelta(minutes=5)),
        "actor_id": "u_0001",
    }
    defaults: dict[str, dict[str, Any]] = {
        "user_joined": {
            "user_id": f"u_{n:04d}",
            "team_id": "team_01",
            "email": f"Person.{n}@Example.com",
            "name": f"Person {n}",
            "seniority": 3,
            "weekly_capacity_hours": 40,
            "timezone": "Europe/Berlin",
            "skills": SKILLS,
        },
        "user_left": {"user_id": "u_0001"},
        "project_created": {
            "project_id": "p_01",
            "team_id": "team_01",
            "name": "Apollo",
            "priority": 2,
            "deadline": ts(HOUR + timedelta(days=30)),
            "required_skills": SKILLS,
        },
        "task_created": {
            "task_id": f"t_{n:05d}",
            "project_id": "p_01",
            "title": "Write the parser",
            "priority": 3,
            "estimated_hours": 4.5,
            "due_at": ts(HOUR + timedelta(days=3)),
            "required_skills": SKILLS,
        },
        "task_assigned": {"task_id": "t_00001", "assignee_id": "u_0002"},
        "task_status_changed": {"task_id": "t_00001", "from_status": "todo", "to_status": "in_progress"},
        "task_completed": {"task_id": "t_00001", "assignee_id": "u_0002"},
        "task_reopened": {"task_id": "t_00001"},
        "comment_added": {"comment_id": f"c_{n:05d}", "task_id": "t_00001", "text": "Looks good"},
        "time_logged": {"task_id": "t_00001", "user_id": "u_0002", "hours": 1.5},
    }
    base.update(defaults.get(event_type, {}))
    base.update(fields)
    return base


def line_of(item: dict[str, Any] | str | bytes) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    return json.dumps(item).encode()


def with_bad_byte(event: dict[str, Any]) -> bytes:
    """The event's JSON with its '@' replaced by a byte that is not UTF-8."""
    return json.dumps(event).encode().replace(b"@", b"\xa7")


def write_landing(
    settings: Settings,
    name: str,
    items: list[dict[str, Any] | str | bytes],
    hour: datetime = HOUR,
    members: int = 1,
    cut_last_member_at: float | None = None,
) -> str:
    """A gzip JSONL landing file of ``members`` members; optionally cut the last member short."""
    lines = [line_of(i) + b"\n" for i in items]
    size = max(1, -(-len(lines) // members))
    chunks = [gzip.compress(b"".join(lines[i : i + size]), mtime=0) for i in range(0, len(lines), size)] or [
        gzip.compress(b"", mtime=0)
    ]
    if cut_last_member_at is not None:
        last = chunks[-1]
        chunks[-1] = last[: int(len(last) * cut_last_member_at)]
    uri = f"{landing_hour_dir(settings.landing_uri, hour)}/{name}"
    storage.write_bytes_atomic(uri, b"".join(chunks))
    return uri


def all_events(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    return {t: lake.read_events(settings.lake_uri, t).to_pylist() for t in events.EVENT_TYPES}


def event_ids(settings: Settings) -> set[str]:
    return {row["event_id"] for rows in all_events(settings).values() for row in rows}


def quarantine_rows(settings: Settings, hour: datetime = HOUR) -> list[dict[str, Any]]:
    return lake.read_quarantine(settings.lake_uri, hour, hour + timedelta(hours=1)).to_pylist()


def lake_files(settings: Settings) -> list[Path]:
    return sorted(p for p in Path(settings.lake_uri).rglob("*") if p.is_file())


# --------------------------------------------------------------------------- dirt


def test_every_dirt_class_is_quarantined_with_its_reason_and_neighbours_survive(settings: Settings) -> None:
    good_before = ev("comment_added", text="first")
    good_after = ev("time_logged", hours=2)
    old = HOUR - timedelta(hours=settings.allowed_lateness_hours, minutes=1)
    dirty: list[tuple[dict[str, Any] | str | bytes, str, str | None]] = [
        ('{"event_id": "x", "event_type": "user_left",', "malformed_json", None),
        # msgspec takes the last of two equal keys, Arrow refuses them: the line is isolated by bisection.
        (json.dumps(ev("user_left"))[:-1] + ', "user_id": "u_0002"}', "malformed_json", "duplicate key"),
        ('["not", "an", "object"]', "not_an_object", "array"),
        ("null", "not_an_object", "null"),
        ('"just a string"', "not_an_object", "string"),
        (ev("task_archived"), "unknown_event_type", "task_archived"),
        ({k: v for k, v in ev("time_logged").items() if k != "hours"}, "missing_required_field", "hours"),
        (ev("task_assigned", actor_id=None), "missing_required_field", "actor_id"),
        ({k: v for k, v in ev("user_left").items() if k != "event_type"}, "missing_required_field", "event_type"),
        ({k: v for k, v in ev("user_left").items() if k != "event_id"}, "missing_required_field", "event_id"),
        (ev("time_logged", hours="three"), "wrong_type", "hours"),
        (ev("user_joined", seniority=3.5), "wrong_type", "seniority"),
        (ev("user_joined", seniority=300), "wrong_type", "seniority"),
        (ev("project_created", required_skills=["high"] * 12), "wrong_type", "required_skills"),
        (ev("project_created", required_skills=[0.5, None]), "wrong_type", "required_skills"),
        (ev("task_reopened", actor_id=12345), "wrong_type", "actor_id"),
        # A contract field on an event type that does not use it must still have its contract type.
        (ev("task_status_changed", priority="high"), "wrong_type", "priority"),
        (ev("task_reopened", occurred_at=True), "wrong_type", "occurred_at"),
        (with_bad_byte(ev("task_reopened", task_id="t_@")), "malformed_json", None),  # in a contract field
        (with_bad_byte(ev("task_reopened", note="x@")), "malformed_json", "invalid UTF-8"),  # in an ignored field
        (ev("task_reopened", at=HOUR + timedelta(days=3)), "future_timestamp", "occurred_at"),
        (ev("task_reopened", at=old), "absurd_timestamp", "occurred_at"),
        (ev("task_reopened", occurred_at="next tuesday"), "absurd_timestamp", "occurred_at"),
        (ev("task_created", due_at="2026-13-45T00:00:00Z"), "absurd_timestamp", "due_at"),
    ]
    items: list[dict[str, Any] | str | bytes] = [good_before]
    for item, _, _ in dirty:
        items.append(item)
    items.append(good_after)
    write_landing(settings, "part-0000.jsonl.gz", items)
    cut = write_landing(
        settings,
        "part-0001.jsonl.gz",
        [ev("comment_added", text=f"c{i}") for i in range(200)],
        members=2,
        cut_last_member_at=0.6,
    )
    unreadable = f"{landing_hour_dir(settings.landing_uri, HOUR)}/part-0002.jsonl.gz"
    storage.write_bytes_atomic(unreadable, b"this is not gzip at all\n")

    manifest = ingest_hour(HOUR, settings)

    rows = {(r["source_uri"].rsplit("/", 1)[-1], r["line_number"]): r for r in quarantine_rows(settings)}
    for offset, (_, reason, detail) in enumerate(dirty):
        row = rows[("part-0000.jsonl.gz", offset + 2)]
        assert (row["reason"], offset) == (reason, offset)
        if detail is not None:
            assert row["detail"] == detail, (offset, row)
        assert row["raw_line"] == line_of(items[offset + 1]).decode("utf-8", "backslashreplace")
        assert row["ingest_hour"] == HOUR
    truncated = [r for r in rows.values() if r["reason"] == "truncated_gzip"]
    assert len(truncated) == 1 and truncated[0]["source_uri"] == cut
    assert [r["line_number"] for r in rows.values() if r["reason"] == "unreadable_file"] == [0]

    ids = event_ids(settings)
    assert {good_before["event_id"], good_after["event_id"]} <= ids
    # The first member of the cut file is intact, and lines of the cut member before the cut survive too.
    comments = {r["text"] for r in lake.read_events(settings.lake_uri, "comment_added").to_pylist()}
    assert {f"c{i}" for i in range(100)} <= comments
    recovered = len(comments - {"first"})
    assert manifest["rows_quarantined_by_reason"]["truncated_gzip"] == 1
    assert recovered + 1 == truncated[0]["line_number"]  # every line before the cut tail was decoded

    expected: dict[str, int] = {}
    for _, reason, _ in dirty:
        expected[reason] = expected.get(reason, 0) + 1
    expected["truncated_gzip"] = expected.get("truncated_gzip", 0) + 1
    expected["unreadable_file"] = 1
    assert {k: v for k, v in manifest["rows_quarantined_by_reason"].items() if v} == expected
    assert manifest["lines_in"] == manifest["rows_valid"] + manifest["rows_duplicate"] + manifest["rows_quarantined"]
    assert manifest["lines_in"] == len(items) + recovered + 1 + 1


_AT = "2026-11-02T13:05:00Z"


@pytest.mark.parametrize(
    ("dirt", "reason", "detail"),
    [
        (
            {"event_type": "sprint_started", "event_id": "e1", "occurred_at": _AT},
            "unknown_event_type",
            "sprint_started",
        ),
        (
            {"event_id": "e1", "event_type": "time_logged", "occurred_at": _AT, "task_id": "t"},
            "missing_required_field",
            "user_id",
        ),
        (
            {"event_id": "e1", "event_type": "user_left", "occurred_at": "2027-01-01T00:00:00Z", "user_id": "u"},
            "future_timestamp",
            "occurred_at",
        ),
        (
            {"event_id": "e1", "event_type": "user_left", "occurred_at": "yesterday", "user_id": "u"},
            "absurd_timestamp",
            "occurred_at",
        ),
        (
            {"event_id": "e1", "event_type": "user_left", "occurred_at": _AT, "user_id": None},
            "missing_required_field",
            "user_id",
        ),
        (
            {"event_id": "e1", "event_type": "user_joined", "occurred_at": _AT, "skills": [1, None]},
            "wrong_type",
            "skills",
        ),
        (
            {"event_id": "e1", "event_type": "user_left", "occurred_at": _AT, "user_id": "u", "skills": [None]},
            "wrong_type",
            "skills",
        ),
        (
            {
                "event_id": "e1",
                "event_type": "project_created",
                "occurred_at": _AT,
                "skills": [None],
                "required_skills": [None],
            },
            "wrong_type",
            "required_skills",
        ),
        # Valid: a contract timestamp field the type does not use is not parsed, unknown fields are ignored.
        (
            {
                "event_id": "e1",
                "event_type": "user_left",
                "occurred_at": _AT,
                "user_id": "u",
                "deadline": "not a date",
                "note": {"free": "form"},
            },
            None,
            None,
        ),
    ],
)
def test_fast_and_slow_decode_paths_classify_alike(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, dirt: dict[str, Any], reason: str | None, detail: str | None
) -> None:
    """The same line gets the same verdict whether its file is otherwise clean (fast path) or not (slow path)."""
    from maestro_ml.ingestion import parse as parse_module

    monkeypatch.setattr(parse_module, "BATCH_BYTES", 0)  # one file per batch: each file takes its own path
    monkeypatch.setattr(parse_module, "FAST_PATH_ODDS", parse_module.FastPathOdds())
    good = ev("comment_added")
    a = write_landing(settings, "a.jsonl.gz", [good, dirt])
    b = write_landing(settings, "b.jsonl.gz", [good | {"event_id": "other"}, dirt | {"event_id": "e2"}, "{broken"])
    manifest = ingest_hour(HOUR, settings)
    assert manifest["decode_paths"] == {"fast": 1, "slow": 1}
    verdicts = {
        uri: [(r["reason"], r["detail"]) for r in quarantine_rows(settings) if r["source_uri"] == uri] for uri in (a, b)
    }
    assert verdicts[a] == ([(reason, detail)] if reason else [])
    assert verdicts[b] == [*verdicts[a], ("malformed_json", verdicts[b][-1][1])]
    assert ({"e1", "e2"} <= event_ids(settings)) == (reason is None)


def test_invalid_utf8_is_quarantined_even_in_an_otherwise_clean_file(settings: Settings) -> None:
    # pyarrow's JSON reader with an explicit schema lets invalid UTF-8 through: the text is checked first.
    good = ev("comment_added", text="fine")
    write_landing(settings, "part-0000.jsonl.gz", [good, with_bad_byte(ev("comment_added", text="caf@"))])
    manifest = ingest_hour(HOUR, settings)
    assert (manifest["rows_valid"], manifest["rows_quarantined_by_reason"]["malformed_json"]) == (1, 1)
    for path in Path(settings.lake_uri).rglob("*.parquet"):
        pq.read_table(path).validate(full=True)
    assert lake.read_events(settings.lake_uri, "comment_added")["text"].to_pylist() == ["fine"]


def test_late_events_are_valid_and_land_in_their_event_date(settings: Settings) -> None:
    late = ev("time_logged", at=HOUR - timedelta(hours=30))
    too_late = ev("time_logged", at=HOUR - timedelta(hours=49))
    early_ok = ev("time_logged", at=HOUR + timedelta(hours=1, minutes=settings.future_tolerance_minutes - 1))
    write_landing(settings, "part-0000.jsonl.gz", [late, too_late, early_ok])
    manifest = ingest_hour(HOUR, settings)
    assert manifest["rows_valid"] == 2
    assert manifest["rows_quarantined_by_reason"]["absurd_timestamp"] == 1
    dts = {entry["dt"] for entry in manifest["outputs"]["data"]}
    assert dts == {"2026-11-01", "2026-11-02"}
    day = lake.read_events(settings.lake_uri, "time_logged", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
    assert day["event_id"].to_pylist() == [late["event_id"]]


def test_gzip_members_padding_and_cut_at_a_line_end() -> None:
    lines = [b'{"a": %d}\n' % i for i in range(10)]
    data = gzip.compress(b"".join(lines[:4])) + gzip.compress(b"".join(lines[4:])) + b"\0" * 16
    out = decompress(data)
    assert (out.text, out.truncated) == (b"".join(lines), False)
    # A member cut after its last line is still a truncated member: one (empty) quarantined tail.
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)
    partial = compressor.compress(b"".join(lines[:3])) + compressor.flush(zlib.Z_SYNC_FLUSH)
    cut = decompress(gzip.compress(lines[9]) + partial)
    assert (cut.text, cut.truncated, cut.tail) == (lines[9] + b"".join(lines[:3]), True, b"")
    assert decompress(b"").text == b"" and decompress(b"plain text").unreadable == "not a gzip file"


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


# --------------------------------------------------------------------------- dedupe


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


# --------------------------------------------------------------------------- PII


def _scan_for_pii(root: Path) -> list[str]:
    found: list[str] = []
    for path in root.rglob("*.parquet"):
        table = pq.read_table(path)
        for column in table.columns:
            if not pa.types.is_string(column.type):
                continue
            for value in column.to_pylist():
                if value and (EMAIL_RE.search(value) or PHONE_RE.search(value)):
                    found.append(f"{path.name}: {value}")
    return found


def test_emails_and_phones_never_reach_the_lake(settings: Settings) -> None:
    pii = [
        "ada.lovelace12@maestro-corp.example",
        "GRACE@navy.example.org",
        "+1 234 567 8901",
        "(234) 567-8901",
        "+44 20 5678 1234",
        "+1-234-567-8901",
        "555.123.4567",
    ]
    text = " / ".join(pii)
    uuid_like = "550e8400-e29b-41d4-a716-446655440000"
    items: list[dict[str, Any] | str | bytes] = [
        ev(
            "user_joined",
            user_id="u_pii",
            email="Ada.Lovelace12@Maestro-Corp.example ",
            name=" Ada  Lovelace",
            timezone=text,
        ),
        ev("project_created", name=f"Project {text}"),
        ev("task_created", title=f"call back {text}", task_id="t_pii"),
        ev("comment_added", text=f"Reach me at {text}; ticket {uuid_like} stays", comment_id=uuid_like),
        ev("task_status_changed", from_status=text, to_status=text),
        ev("comment_added", actor_id="someone@corp.example", text="plain"),
    ]
    write_landing(settings, "part-0000.jsonl.gz", items)
    manifest = ingest_hour(HOUR, settings)
    assert manifest["rows_valid"] == len(items)

    leaks = _scan_for_pii(Path(settings.lake_uri))
    assert leaks == []
    raw = b"".join(p.read_bytes() for p in Path(settings.lake_uri).rglob("*") if p.is_file())
    for secret in [*pii, "ada.lovelace12", "someone@corp", "Ada  Lovelace", "Ada Lovelace"]:
        assert secret.encode() not in raw

    comment = lake.read_events(settings.lake_uri, "comment_added").to_pylist()
    assert comment[0]["text"].count("[EMAIL]") == 2 and comment[0]["text"].count("[PHONE]") == 5
    assert uuid_like in comment[0]["text"] and comment[0]["comment_id"] == uuid_like  # ids are not mangled
    key = KEY.encode()
    assert comment[1]["actor_id"] == "pii:" + hmac.new(key, b"someone@corp.example", hashlib.sha256).hexdigest()

    user = lake.read_events(settings.lake_uri, "user_joined").to_pylist()[0]
    email_hash = hmac.new(key, b"ada.lovelace12@maestro-corp.example", hashlib.sha256).hexdigest()
    name_hash = hmac.new(key, b"Ada Lovelace", hashlib.sha256).hexdigest()
    assert (user["email"], user["name"]) == (email_hash, name_hash)
    state = lake.read_state(settings.lake_uri, "users").to_pylist()
    assert [(u["user_id"], u["email_hash"], u["name_hash"]) for u in state] == [("u_pii", email_hash, name_hash)]
    assert manifest["pii"]["hashed_values"] == 2


def test_missing_pii_key_fails_before_any_output(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    write_landing(settings, "part-0000.jsonl.gz", [ev("user_joined")])
    monkeypatch.delenv("MAESTRO_PII_KEY")
    with pytest.raises(RuntimeError, match="MAESTRO_PII_KEY"):
        ingest_hour(HOUR, settings)
    assert not Path(settings.lake_uri).exists()


# --------------------------------------------------------------------------- state


def _state(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    return {name: lake.read_state(settings.lake_uri, name).to_pylist() for name in events.STATE_SCHEMAS}


def test_state_tables_are_last_writer_wins_by_event_time(settings: Settings) -> None:
    t0 = HOUR + timedelta(minutes=1)
    items = [
        ev("user_joined", t0, user_id="u_a", team_id="team_x", seniority=2),
        ev("project_created", t0, project_id="p_1", team_id="team_y", name="Apollo"),
        ev("task_created", t0, task_id="t_1", project_id="p_1", title="Parse"),
        ev("task_assigned", t0 + timedelta(minutes=2), task_id="t_1", assignee_id="u_a"),
        ev("task_assigned", t0 + timedelta(minutes=1), task_id="t_1", assignee_id="u_old"),  # older, listed later
        ev("task_status_changed", t0 + timedelta(minutes=3), task_id="t_1", to_status="in_progress"),
        ev("task_completed", t0 + timedelta(minutes=9), task_id="t_1", assignee_id="u_a"),
        ev("task_reopened", t0 + timedelta(minutes=10), task_id="t_1"),
        ev("user_left", t0 + timedelta(minutes=20), user_id="u_a"),
    ]
    write_landing(settings, "part-0000.jsonl.gz", items)
    ingest_hour(HOUR, settings)
    state = _state(settings)
    task = state["tasks"][0]
    assert (task["task_id"], task["assignee_id"], task["status"]) == ("t_1", "u_a", "todo")
    assert task["assigned_at"] == t0 + timedelta(minutes=2)
    assert task["completed_at"] == t0 + timedelta(minutes=9)
    assert task["status_changed_at"] == task["updated_at"] == t0 + timedelta(minutes=10)
    assert (task["title"], task["created_at"]) == ("Parse", t0)
    user = state["users"][0]
    assert (user["user_id"], user["team_id"], user["seniority"]) == ("u_a", "team_x", 2)
    assert (user["joined_at"], user["left_at"], user["updated_at"]) == (t0, t0 + timedelta(minutes=20), user["left_at"])
    assert [(t["team_id"], t["first_seen_at"]) for t in state["teams"]] == [("team_x", t0), ("team_y", t0)]
    assert [(p["project_id"], p["name"]) for p in state["projects"]] == [("p_1", "Apollo")]

    # Re-applying the hour changes nothing.
    ingest_hour(HOUR, settings)
    assert _state(settings) == state


def test_state_fold_is_order_independent(settings: Settings, tmp_path: Path) -> None:
    h1, h2 = HOUR, HOUR + timedelta(hours=1)
    hour1 = [
        ev("task_created", h1 + timedelta(minutes=1), task_id="t_1", title="old title"),
        ev("task_status_changed", h1 + timedelta(minutes=30), task_id="t_1", to_status="blocked"),
        ev("user_joined", h1, user_id="u_a", seniority=1),
    ]
    hour2 = [
        ev("task_status_changed", h1 + timedelta(minutes=20), task_id="t_1", to_status="in_review"),  # late, older
        ev("task_completed", h2 + timedelta(minutes=5), task_id="t_1"),
        ev("task_completed", h2 + timedelta(minutes=5), task_id="t_1"),  # same time, same status
        ev("user_joined", h2, user_id="u_a", seniority=4),
    ]
    write_landing(settings, "part-0000.jsonl.gz", hour1, hour=h1)
    write_landing(settings, "part-0000.jsonl.gz", hour2, hour=h2)
    m1 = ingest_hour(h1, settings, apply_state=False)
    m2 = ingest_hour(h2, settings, apply_state=False)
    update_state(m1, settings)
    update_state(m2, settings)
    expected = _state(settings)

    # The other order, an hour applied twice, and a compaction in between: the same state.
    backward = str(tmp_path / "other-lake")
    hour1_tables, hour2_tables = _tables_of_manifest(m1), _tables_of_manifest(m2)
    apply_events(backward, hour2_tables, h2)
    for name in events.STATE_SCHEMAS:
        compact(backward, name)
    apply_events(backward, hour1_tables, h1)
    apply_events(backward, hour2_tables, h2)
    assert {name: lake.read_state(backward, name).to_pylist() for name in events.STATE_SCHEMAS} == expected
    task = expected["tasks"][0]
    assert (task["title"], task["status"], task["completed_at"]) == ("old title", "done", h2 + timedelta(minutes=5))
    assert expected["users"][0]["seniority"] == 4


def test_state_deltas_cost_the_hour_and_compact_into_a_base(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from maestro_ml.ingestion import state as state_module

    monkeypatch.setattr(state_module, "COMPACT_AFTER", 3)
    for k in range(5):
        hour = HOUR + timedelta(hours=k)
        items = [
            ev("task_created", hour, task_id=f"t_{k}"),
            ev("task_status_changed", hour, task_id="t_0", to_status=events.TASK_STATUSES[k % 5]),
        ]
        write_landing(settings, "part-0000.jsonl.gz", items, hour=hour)
        manifest = ingest_hour(hour, settings)
        assert manifest["state"]["rows_touched"]["tasks"] == (1 if k == 0 else 2)
    # Hours 0-2 were compacted into the base when the third delta arrived; hours 3-4 are deltas.
    assert storage.exists(lake.state_base_uri(settings.lake_uri, "tasks"))
    assert [Path(u).stem for u in lake.state_delta_uris(settings.lake_uri, "tasks")] == [
        lake.hour_key(HOUR + timedelta(hours=k)) for k in (3, 4)
    ]
    tasks = lake.read_state(settings.lake_uri, "tasks").to_pylist()
    assert [t["task_id"] for t in tasks] == [f"t_{k}" for k in range(5)]
    assert tasks[0]["status"] == events.TASK_STATUSES[4]  # the latest status change, from a delta

    # The same hours folded without compaction give the same state.
    monkeypatch.setattr(state_module, "COMPACT_AFTER", 1000)
    other = str(tmp_path / "no-compaction")
    for k in range(5):
        manifest = lake.read_manifest(settings.lake_uri, HOUR + timedelta(hours=k))
        assert manifest is not None
        apply_events(other, _tables_of_manifest(manifest), HOUR + timedelta(hours=k))
    assert lake.read_state(other, "tasks").to_pylist() == tasks


def _tables_of_manifest(manifest: dict[str, Any]) -> dict[str, pa.Table]:
    tables: dict[str, list[pa.Table]] = {}
    for entry in manifest["outputs"]["data"]:
        tables.setdefault(entry["event_type"], []).append(pq.read_table(entry["path"]))
    return {t: pa.concat_tables(parts) for t, parts in tables.items()}


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


def test_a_file_that_breaks_the_parser_is_quarantined_and_the_others_go_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maestro_ml.ingestion import parse as parse_module

    good = write_landing(settings, "part-0000.jsonl.gz", [ev("comment_added")])
    bad = write_landing(settings, "part-0001.jsonl.gz", [ev("comment_added", text="boom")])
    real = parse_module.fast_path

    def flaky(text: bytes, lines: int | None = None) -> Any:
        if b"boom" in text:
            raise ValueError("unexpected input shape")
        return real(text, lines)

    monkeypatch.setattr(parse_module, "fast_path", flaky)
    monkeypatch.setattr(parse_module, "FAST_PATH_ODDS", parse_module.FastPathOdds())
    manifest = ingest_hour(HOUR, settings)
    assert manifest["rows_valid"] == 1 and manifest["rows_quarantined_by_reason"]["unreadable_file"] == 1
    [row] = quarantine_rows(settings)
    assert (row["source_uri"], row["line_number"]) == (bad, 0) and "unexpected input shape" in row["detail"]
    assert any(bad in w for w in manifest["warnings"]) and good in manifest["files_read"]


def test_rows_keep_their_file_and_line_when_files_are_read_together(settings: Settings) -> None:
    from maestro_ml.ingestion.parse import parse_files

    a = [ev("comment_added", text=f"a{i}") for i in range(3)]
    b = [ev("time_logged"), "{not json", ev("comment_added", text="b3")]
    c = [ev("comment_added", text="c1")]
    files = [write_landing(settings, f"part-000{k}.jsonl.gz", items) for k, items in enumerate((a, b, c))]
    parsed = parse_files(files, HOUR, allowed_lateness=timedelta(hours=48), future_tolerance=timedelta(minutes=10))
    comments = parsed.tables["comment_added"].to_pylist()
    assert [(r["text"], r["_file"], r["_line"]) for r in comments] == [
        ("a0", 0, 1),
        ("a1", 0, 2),
        ("a2", 0, 3),
        ("b3", 1, 3),
        ("c1", 2, 1),
    ]
    assert [(r["_file"], r["_line"]) for r in parsed.tables["time_logged"].to_pylist()] == [(1, 1)]
    assert [(r["source_uri"], r["line_number"]) for r in parsed.quarantine.to_pylist()] == [(files[1], 2)]
    assert parsed.lines_in == 7


def test_wrong_typed_foreign_fields_are_found_in_one_pass_not_by_bisection(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maestro_ml.ingestion import decode, parse

    calls: list[int] = []
    real = decode.read_json_text

    def counting(data: bytes) -> Any:
        calls.append(len(data))
        return real(data)

    monkeypatch.setattr(decode, "read_json_text", counting)
    monkeypatch.setattr(parse, "read_json_text", counting)
    items = [ev("task_status_changed", priority="high") if i % 2 else ev("comment_added") for i in range(2000)]
    write_landing(settings, "part-0000.jsonl.gz", items)
    manifest = ingest_hour(HOUR, settings)
    assert manifest["rows_valid"] == 1000
    assert manifest["rows_quarantined_by_reason"]["wrong_type"] == 1000
    assert {r["detail"] for r in quarantine_rows(settings)} == {"priority"}
    assert len(calls) <= 4  # fast attempt, screened lines, strict re-read: no bisection


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


def test_fast_path_odds_give_up_after_failures_and_probe_again() -> None:
    from maestro_ml.ingestion.parse import FastPathOdds

    odds = FastPathOdds(give_up_after=2, skip=3)
    assert odds.worth_trying()
    odds.record(False)
    odds.record(False)
    assert [odds.worth_trying() for _ in range(4)] == [False, False, False, True]
    odds.record(True)
    assert odds.worth_trying()


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
    from maestro_ml.ingestion import pipeline as pipeline_module

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
