"""One ingest hour's landing files -> valid rows per event type + quarantine rows.

Files are decompressed one by one and gathered into batches of about ``BATCH_BYTES`` of
text, so that an hour of many small files costs a few Arrow reader calls, not one per file.
A batch first tries the fast path on all its text at once (see ``decode``); when that fails
every file of the batch is screened line by line and the accepted lines of all of them are
read together. Validation runs once per batch. Worker threads take consecutive chunks of
files, and results keep the order of the file list, which is the dedupe order.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from maestro_ml.contracts import events
from maestro_ml.ingestion.contract import DECODE_SCHEMA, FILE_COL, LINE_COL, REASONS, Reason
from maestro_ml.ingestion.decode import (
    FastRawLines,
    GzipText,
    QuarantineEntry,
    fast_path,
    is_blank,
    line_count,
    read_json_text,
    read_landing_file,
    read_screened,
    screen_lines,
)
from maestro_ml.ingestion.row_checks import check_rows
from maestro_ml.lake import QUARANTINE_SCHEMA, as_hour, lake_schema

log = logging.getLogger(__name__)
MAX_WARNINGS = 50
BATCH_BYTES = 16 << 20  # decompressed text read by one Arrow reader call, at most about


def staged_schema(event_type: str) -> pa.Schema:
    """Rows of one event type between parse and commit: the lake schema plus their landing position."""
    return (
        lake_schema(event_type)
        .append(pa.field(FILE_COL, pa.int32(), nullable=False))
        .append(pa.field(LINE_COL, pa.int64(), nullable=False))
    )


@dataclass
class BatchResult:
    tables: dict[str, pa.Table]  # event type -> staged_schema(event_type), (file, line) order
    quarantine: pa.Table  # QUARANTINE_SCHEMA, (file, line) order
    lines_in: int
    paths: dict[str, int]  # decode path -> number of files
    warnings: list[str] = field(default_factory=list)


@dataclass
class ParsedHour:
    hour: datetime
    files: list[str]
    tables: dict[str, pa.Table]  # event type -> staged_schema(event_type), in (file, line) order
    quarantine: pa.Table  # QUARANTINE_SCHEMA, in (file, line) order
    lines_in: int
    paths: dict[str, int]  # decode path -> number of files
    warnings: list[str]

    def quarantined_by_reason(self) -> dict[str, int]:
        return count_reasons(self.quarantine)

    @property
    def rows_valid(self) -> int:
        return sum(t.num_rows for t in self.tables.values())


def count_reasons(quarantine: pa.Table) -> dict[str, int]:
    counts = dict.fromkeys(REASONS, 0)
    if quarantine.num_rows:
        for item in quarantine["reason"].value_counts().to_pylist():
            counts[str(item["values"])] = int(item["counts"])
    return counts


def _raw_text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


def quarantine_table(hour: datetime, entries: list[tuple[str, QuarantineEntry]]) -> pa.Table:
    """Quarantine rows from (source URI, entry) pairs, in the order given."""
    return pa.Table.from_pydict(
        {
            "source_uri": [uri for uri, _ in entries],
            "line_number": [e[0] for _, e in entries],
            "reason": [e[1] for _, e in entries],
            "detail": [e[2] for _, e in entries],
            "raw_line": [_raw_text(e[3]) for _, e in entries],
            "event_id": [e[4] for _, e in entries],
            "event_type": [e[5] for _, e in entries],
            "ingest_hour": pa.array([hour] * len(entries), events.TS),
        },
        schema=QUARANTINE_SCHEMA,
    )


@dataclass
class _File:
    index: int
    uri: str
    gz: GzipText
    entries: list[QuarantineEntry] = field(default_factory=list)
    lines_in: int = 0
    path: str = "none"
    raw_line: Callable[[int], bytes] = lambda n: b""
    warnings: list[str] = field(default_factory=list)


def _terminated(text: bytes) -> bytes:
    return text if text.endswith(b"\n") else text + b"\n"


class FastPathOdds:
    """Whether the fast path is worth trying: not after ``give_up_after`` failures in a row.

    Dirt is usually spread over every file (in the demo data nearly every hour has some),
    and each failed attempt costs a screen of the text and part of a parse. After a run of
    failures the next ``skip`` batches go straight to the line-by-line path, then the fast
    path is tried again. One instance serves the process, so an hour-by-hour backfill learns
    too. Results never depend on the path taken, only the time does.
    """

    def __init__(self, give_up_after: int = 2, skip: int = 16) -> None:
        self._lock = threading.Lock()
        self._give_up_after = give_up_after
        self._skip = skip
        self._failures = 0
        self._skipped = 0

    def worth_trying(self) -> bool:
        with self._lock:
            if self._failures < self._give_up_after:
                return True
            self._skipped += 1
            if self._skipped > self._skip:  # probe again
                self._skipped = 0
                return True
            return False

    def record(self, success: bool) -> None:
        with self._lock:
            self._failures = 0 if success else self._failures + 1


FAST_PATH_ODDS = FastPathOdds()


def _decode_batch(files: list[_File], odds: FastPathOdds | None = None) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Rows of all readable files of a batch, with each row's file index and line number."""
    texts = [f for f in files if not is_blank(f.gz.text)]
    for f in files:
        if is_blank(f.gz.text) and f.gz.text:
            f.warnings.append(f"{f.uri}: {line_count(f.gz.text)} blank line(s) skipped")
    if not texts:
        return DECODE_SCHEMA.empty_table(), np.zeros(0, np.int32), np.zeros(0, np.int64)
    counts = [line_count(f.gz.text) for f in texts]
    table = None
    if odds is None or odds.worth_trying():
        joined = texts[0].gz.text if len(texts) == 1 else b"".join(_terminated(f.gz.text) for f in texts)
        table = fast_path(joined, sum(counts))
        del joined
        if odds is not None:
            odds.record(table is not None)
    if table is not None:
        for f, n in zip(texts, counts, strict=True):
            f.path, f.lines_in, f.raw_line = "fast", n, FastRawLines(f.gz.text)
        file_of = np.repeat(np.array([f.index for f in texts], np.int32), counts)
        lines = np.concatenate([np.arange(1, n + 1, dtype=np.int64) for n in counts])
        return table, file_of, lines
    pairs = [(f, screen_lines(f.uri, f.gz.text)) for f in texts]
    for f, screened in pairs:
        f.path, f.lines_in, f.raw_line = "slow", screened.lines_in, screened.raw_line
        f.warnings.extend(screened.warnings)
    good = [(f, screened) for f, screened in pairs if len(screened.good_numbers)]
    parts: list[tuple[pa.Table, np.ndarray, np.ndarray]] = []
    if len(good) > 1:  # accepted lines of all files in one reader call; per file if that fails
        try:
            table = read_json_text(b"".join(_terminated(screened.good_text) for _, screened in good))
            if table.num_rows == sum(len(screened.good_numbers) for _, screened in good):
                file_of = np.concatenate([np.full(len(sc.good_numbers), f.index, np.int32) for f, sc in good])
                parts.append((table, file_of, np.concatenate([sc.good_numbers for _, sc in good])))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            parts = []
    if not parts:
        for f, screened in good:
            rows, numbers = read_screened(screened)
            parts.append((rows, np.full(len(numbers), f.index, np.int32), numbers))
    for f, screened in pairs:
        f.entries.extend(screened.quarantine)
    if not parts:
        return DECODE_SCHEMA.empty_table(), np.zeros(0, np.int32), np.zeros(0, np.int64)
    tables = [p[0] for p in parts]
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return table, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])


def process_batch(
    batch: list[_File],
    hour: datetime,
    *,
    allowed_lateness: timedelta,
    future_tolerance: timedelta,
    odds: FastPathOdds | None = None,
) -> BatchResult:
    """Decode and validate a batch of files; bad lines become quarantine rows, never exceptions."""
    for f in batch:
        if f.gz.unreadable is not None:
            f.entries.append((0, Reason.UNREADABLE_FILE.value, f.gz.unreadable, b"", None, None))
            f.lines_in = 1
    readable = [f for f in batch if f.gz.unreadable is None]
    table, file_of, lines = _decode_batch(readable, odds)
    for f in readable:
        if f.gz.truncated:
            f.entries.append(
                (line_count(f.gz.text) + 1, Reason.TRUNCATED_GZIP.value, f.gz.detail, f.gz.tail, None, None)
            )
            f.lines_in += 1
    checked = check_rows(
        table, hour, hour + timedelta(hours=1), allowed_lateness=allowed_lateness, future_tolerance=future_tolerance
    )
    by_index = {f.index: f for f in batch}
    rejects = checked.rejects
    if len(rejects.rows):
        take = pa.array(rejects.rows)
        ids = table["event_id"].take(take).to_pylist()
        types = table["event_type"].take(take).to_pylist()
        for row, reason, detail, event_id, event_type in zip(
            rejects.rows.tolist(), rejects.reasons, rejects.details, ids, types, strict=True
        ):
            f = by_index[int(file_of[row])]
            number = int(lines[row])
            f.entries.append((number, reason, detail, f.raw_line(number), event_id, event_type))
    tables: dict[str, pa.Table] = {}
    for event_type, rows in checked.tables.items():
        where = checked.positions[event_type]
        tables[event_type] = rows.append_column(
            pa.field(FILE_COL, pa.int32(), nullable=False), pa.array(file_of[where], pa.int32())
        ).append_column(pa.field(LINE_COL, pa.int64(), nullable=False), pa.array(lines[where], pa.int64()))
    entries = [(f.uri, e) for f in batch for e in sorted(f.entries, key=lambda e: e[0])]
    paths: dict[str, int] = {}
    for f in batch:
        paths[f.path] = paths.get(f.path, 0) + 1
    return BatchResult(
        tables=tables,
        quarantine=quarantine_table(hour, entries),
        lines_in=sum(f.lines_in for f in batch),
        paths=paths,
        warnings=[w for f in batch for w in f.warnings],
    )


def process_chunk(
    items: list[tuple[int, str]],
    hour: datetime,
    *,
    allowed_lateness: timedelta,
    future_tolerance: timedelta,
    odds: FastPathOdds | None = None,
) -> list[BatchResult]:
    """Consecutive files, decompressed one at a time and processed in batches of about ``BATCH_BYTES``."""
    results: list[BatchResult] = []
    batch: list[_File] = []
    size = 0

    def flush() -> None:
        nonlocal batch, size
        if batch:
            results.append(_guarded(batch, hour, allowed_lateness, future_tolerance, odds))
        batch, size = [], 0

    for index, uri in items:
        gz = read_landing_file(uri)
        batch.append(_File(index, uri, gz))
        size += len(gz.text)
        if size >= BATCH_BYTES:
            flush()
    flush()
    return results


def _guarded(
    batch: list[_File],
    hour: datetime,
    allowed_lateness: timedelta,
    future_tolerance: timedelta,
    odds: FastPathOdds | None = None,
) -> BatchResult:
    """``process_batch``; if it breaks on some input, retry file by file and quarantine the file that breaks."""
    try:
        return process_batch(
            batch, hour, allowed_lateness=allowed_lateness, future_tolerance=future_tolerance, odds=odds
        )
    except MemoryError:
        raise
    except Exception as exc:  # a bug met on odd input must not block the hour's other files
        if len(batch) > 1:
            fresh = [[_File(f.index, f.uri, f.gz)] for f in batch]
            parts = [_guarded(one, hour, allowed_lateness, future_tolerance, odds) for one in fresh]
            return _merge(parts)
        f = batch[0]
        log.exception("ingest: %s could not be processed; quarantined as unreadable", f.uri)
        detail = f"internal error: {exc!r}"[:300]
        entry: QuarantineEntry = (0, Reason.UNREADABLE_FILE.value, detail, b"", None, None)
        return BatchResult({}, quarantine_table(hour, [(f.uri, entry)]), 1, {"error": 1}, [f"{f.uri}: {detail}"])


def _merge(parts: list[BatchResult]) -> BatchResult:
    paths: dict[str, int] = {}
    for part in parts:
        for name, n in part.paths.items():
            paths[name] = paths.get(name, 0) + n
    quarantines = [p.quarantine for p in parts]
    return BatchResult(
        tables=concat_by_type([p.tables for p in parts]),
        quarantine=pa.concat_tables(quarantines) if quarantines else QUARANTINE_SCHEMA.empty_table(),
        lines_in=sum(p.lines_in for p in parts),
        paths=paths,
        warnings=[w for p in parts for w in p.warnings],
    )


def concat_by_type(parts: list[dict[str, pa.Table]]) -> dict[str, pa.Table]:
    """Per-type tables of several batches (in file order) -> one table per type."""
    out: dict[str, pa.Table] = {}
    for event_type in events.EVENT_TYPES:
        tables = [p[event_type] for p in parts if event_type in p and p[event_type].num_rows]
        if tables:
            out[event_type] = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return out


def parse_files(
    files: list[str],
    hour: datetime | str,
    *,
    allowed_lateness: timedelta,
    future_tolerance: timedelta,
    max_workers: int | None = None,
) -> ParsedHour:
    """Every landing file of an hour, decoded and validated; results keep the order of ``files``."""
    start = as_hour(hour)
    workers = max(1, min(len(files), max_workers or min(4, os.cpu_count() or 1)))
    # Chunks of consecutive files, a few per worker, so that threads stay busy and order is kept.
    per_chunk = max(1, -(-len(files) // (workers * 4)))
    chunks = [list(enumerate(files))[i : i + per_chunk] for i in range(0, len(files), per_chunk)]

    odds = FAST_PATH_ODDS

    def work(chunk: list[tuple[int, str]]) -> list[BatchResult]:
        return process_chunk(
            chunk, start, allowed_lateness=allowed_lateness, future_tolerance=future_tolerance, odds=odds
        )

    if workers <= 1 or len(chunks) <= 1:
        results = [r for chunk in chunks for r in work(chunk)]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest-parse") as pool:
            results = [r for rs in pool.map(work, chunks) for r in rs]
    merged = _merge(results)
    warnings = merged.warnings
    if not files:
        warnings.append("no landing files for this hour")
    if len(warnings) > MAX_WARNINGS:  # manifests and XCom stay small
        warnings = [*warnings[:MAX_WARNINGS], f"... and {len(warnings) - MAX_WARNINGS} more warnings"]
    return ParsedHour(
        hour=start,
        files=list(files),
        tables=merged.tables,
        quarantine=merged.quarantine,
        lines_in=merged.lines_in,
        paths=merged.paths,
        warnings=warnings,
    )
