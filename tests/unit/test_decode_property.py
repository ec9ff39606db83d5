"""The decoder's promise, property-tested: results never depend on the path a file takes.

Landing files are built from valid events mixed with what real exports carry: byte-order marks
(at the start of the file and of appended gzip members), CRLF line ends, blank and whitespace
lines, malformed lines, large lines, several gzip members. Each file is parsed three ways: as
production does (the fast path tried first), with the fast path forced, and with it refused.
All three must land the same rows from the same lines and quarantine the same lines, and the
line count must be exact: every non-blank line is either landed or quarantined, every valid
event lands.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.ingestion_support import HOUR, ev

from maestro_ml.ingestion import parse
from maestro_ml.ingestion.parse import FastPathOdds, ParsedHour, parse_files

BOM = b"\xef\xbb\xbf"
BAD_LINES = [b"{broken", b"null", b"[1, 2]", b'{"event_type": "no_such_type"}', b'"just a string"',
             b'{"event_id": "x", "event_type": "comment_added"}', b'{"text": "caf\xa7"}']
BLANK_LINES = [b"", b"   ", b"\t", b"\r"]


class _Odds(FastPathOdds):
    def __init__(self, fast: bool) -> None:
        super().__init__()
        self.fast = fast

    def worth_trying(self) -> bool:
        return self.fast

    def record(self, success: bool) -> None:
        pass


@st.composite
def landing_file(draw: st.DrawFn) -> tuple[bytes, list[str], list[int], int]:
    """(gzip bytes, ids of the valid events, line numbers of the bad lines, non-blank line count)."""
    kinds = draw(st.lists(st.sampled_from(["valid", "valid", "valid", "bad", "blank", "large"]), min_size=1,
                          max_size=25))
    crlf = draw(st.booleans())
    lines: list[bytes] = []
    valid: list[str] = []
    bad: list[int] = []
    for kind in kinds:
        if kind == "blank":
            lines.append(draw(st.sampled_from(BLANK_LINES)))
            continue
        number = len(lines) + 1
        if kind == "bad":
            lines.append(draw(st.sampled_from(BAD_LINES)))
            bad.append(number)
            continue
        text = "x" * draw(st.integers(200_000, 1_500_000)) if kind == "large" else draw(st.text(max_size=40))
        event: dict[str, Any] = ev("comment_added", text=text)
        lines.append(json.dumps(event, ensure_ascii=draw(st.booleans())).encode())
        valid.append(event["event_id"])
    ending = b"\r\n" if crlf else b"\n"
    # Members start at line boundaries; each may carry its own byte-order mark (files appended).
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(lines) - 1)), max_size=2)))) if len(lines) > 1 else []
    bounds = [0, *cuts, len(lines)]
    members = []
    for i, (start, end) in enumerate(zip(bounds, bounds[1:], strict=False)):
        body = b"".join(line + ending for line in lines[start:end])
        if not draw(st.booleans()) and end == len(lines):
            body = body[: -len(ending)]  # no newline after the last line
        bom = draw(st.booleans()) if i == 0 else draw(st.sampled_from([False, False, True]))
        members.append(gzip.compress((BOM if bom else b"") + body, mtime=0))
    counted = sum(1 for line in lines if line.strip())
    return b"".join(members), valid, bad, counted


def _outcome(parsed: ParsedHour) -> tuple[Any, ...]:
    landed = sorted(
        (event_id, line)
        for table in parsed.tables.values()
        for event_id, line in zip(table["event_id"].to_pylist(), table["_line"].to_pylist(), strict=True)
    )
    quarantined = sorted(zip(parsed.quarantine["line_number"].to_pylist(), parsed.quarantine["reason"].to_pylist(),
                             strict=True))
    return landed, quarantined, parsed.lines_in


def _parse(path: Path, odds: FastPathOdds | None, monkeypatch: pytest.MonkeyPatch) -> ParsedHour:
    if odds is not None:
        monkeypatch.setattr(parse, "FAST_PATH_ODDS", odds)
    try:
        return parse_files([str(path)], HOUR, allowed_lateness=timedelta(hours=48),
                           future_tolerance=timedelta(minutes=10), max_workers=1)
    finally:
        monkeypatch.undo()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(landing_file())
def test_every_decode_path_lands_the_same_rows_and_counts_every_line(
    monkeypatch: pytest.MonkeyPatch, case: tuple[bytes, list[str], list[int], int]
) -> None:
    data, valid, bad, counted = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "export.jsonl.gz"
        path.write_bytes(data)
        as_production = _outcome(_parse(path, None, monkeypatch))
        fast_first = _outcome(_parse(path, _Odds(fast=True), monkeypatch))
        line_by_line = _outcome(_parse(path, _Odds(fast=False), monkeypatch))
    assert as_production == fast_first == line_by_line
    landed, quarantined, lines_in = line_by_line
    assert sorted(event_id for event_id, _ in landed) == sorted(valid), "every valid event lands"
    assert [line for line, _ in quarantined] == bad, "exactly the bad lines are quarantined"
    assert lines_in == counted == len(landed) + len(quarantined), "every non-blank line is counted once"


def test_a_byte_order_mark_before_the_first_event_loses_nothing_beside_a_bad_line(tmp_path: Path) -> None:
    # The reported case: a BOM file that also holds a bad line went line by line and lost its first event.
    first, second = ev("comment_added"), ev("comment_added")
    body = BOM + json.dumps(first).encode() + b"\n{broken\n\n" + json.dumps(second).encode() + b"\n"
    path = tmp_path / "bom.jsonl.gz"
    path.write_bytes(gzip.compress(body))
    parsed = parse_files([str(path)], HOUR, allowed_lateness=timedelta(hours=48),
                         future_tolerance=timedelta(minutes=10))
    assert sorted(parsed.tables["comment_added"]["event_id"].to_pylist()) == sorted(
        [first["event_id"], second["event_id"]])
    assert parsed.quarantine["line_number"].to_pylist() == [2] and parsed.lines_in == 3
