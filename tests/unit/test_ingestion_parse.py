"""maestro_ml.ingestion.parse, decode and row validation: the quarantine of every dirt class and its reason, decode paths."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from tests.ingestion_support import HOUR, ev, event_ids, line_of, quarantine_rows, write_landing

from maestro_ml import lake, storage
from maestro_ml.ingestion import ingest_hour, landing_hour_dir
from maestro_ml.ingestion.decode import decompress
from maestro_ml.settings import Settings


def with_bad_byte(event: dict[str, Any]) -> bytes:
    """The event's JSON with its '@' replaced by a byte that is not UTF-8."""
    return json.dumps(event).encode().replace(b"@", b"\xa7")


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
        (ev("task_assigned", assignee_id=None), "missing_required_field", "assignee_id"),
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
        # Well-typed but implausible: the row is quarantined, not its hour blocked at the GX gate.
        (ev("time_logged", hours=25.75), "out_of_range", "hours: hours logged at once is in [0, 24]"),
        (ev("task_created", priority=7), "out_of_range", "priority: priority is 1 (low) .. 4 (critical)"),
        (ev("user_joined", weekly_capacity_hours=0.0), "out_of_range",
         "weekly_capacity_hours: weekly_capacity_hours is in (0, 168]"),
        (ev("task_status_changed", to_status="archived"), "unknown_value",
         "to_status not in todo, in_progress, blocked, in_review, done"),
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


# --------------------------------------------------------------------------- parser


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


def test_fast_path_odds_give_up_after_failures_and_probe_again() -> None:
    from maestro_ml.ingestion.parse import FastPathOdds

    odds = FastPathOdds(give_up_after=2, skip=3)
    assert odds.worth_trying()
    odds.record(False)
    odds.record(False)
    assert [odds.worth_trying() for _ in range(4)] == [False, False, False, True]
    odds.record(True)
    assert odds.worth_trying()
