"""Landing file -> typed rows (Arrow) plus the lines that could not be decoded.

Gzip: a file may hold several members; the last one may be truncated. Complete lines
decoded before the cut are kept; the partial tail after the last newline of a truncated
member is ONE quarantined line (``truncated_gzip``), even when it is empty (the cut fell on a
line end), so every truncated file shows up in quarantine. A file that is not gzip, or
cannot be read at all, is ONE ``unreadable_file`` line with line number 0. Blank lines are
skipped and not counted.

A UTF-8 byte-order mark at the start of a line (the start of a file, or of a gzip member
appended to it) is dropped before either path sees the text: Arrow's reader skips one at the
start of its input, the per-line decoder would call it malformed JSON, and results must not
depend on the path taken. Real tracker exports often carry one.

JSON, two paths per file:

* fast path: ``pyarrow.json.read_json`` over the whole file with ``contract.DECODE_SCHEMA``.
  Taken only when a cheap screen finds no blank, whitespace-led or bare ``null`` lines
  (pyarrow 25 crashes on a block that starts with ``null``) and accepted only when it
  yields exactly one row per line (so row i is line i+1).
* slow path (the file failed the screen or the reader): each line is checked with the
  msgspec tagged-union decoder (``contract.EVENT_DECODER``); the lines it rejects are
  classified one by one (``classify_line``) and only the accepted lines are handed to
  ``read_json``. If the Arrow reader still refuses them, a stricter per-line pass
  (``contract.STRICT_DECODER``) and, as a last resort, bisection find the offending lines,
  which are quarantined.
"""

from __future__ import annotations

import io
import itertools
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.json as pj

from maestro_ml import storage
from maestro_ml.contracts import events
from maestro_ml.ingestion.contract import (
    DECODE_SCHEMA,
    EVENT_DECODER,
    FIELD_TYPES,
    FOREIGN_FIELDS,
    PLAIN_DECODER,
    REQUIRED_IN_ORDER,
    STRICT_DECODER,
    TYPE_FIELDS,
    Reason,
    value_matches,
)

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_LINE_BOMS = re.compile(rb"(?:^|(?<=\n))(?:\xef\xbb\xbf)+")
_FEED = 1 << 18  # compressed bytes fed to zlib per call: bounds what a corrupt member can hide
_DETAIL_MAX = 300
# Lines the fast path must not see: blank, whitespace-led or a bare null (pyarrow segfaults on those).
_SCREEN = re.compile(rb"\n[ \t\r\n]|\nnull")
_ARROW_COLUMN = re.compile(r"Column\(/([A-Za-z0-9_]+)")

_READ_OPTIONS = pj.ReadOptions(use_threads=True, block_size=16 << 20)
_PARSE_OPTIONS = pj.ParseOptions(explicit_schema=DECODE_SCHEMA, unexpected_field_behavior="ignore")

QuarantineEntry = tuple[int, str, str | None, bytes, str | None, str | None]
"""(line_number, reason, detail, raw_line, event_id, event_type)"""


@dataclass
class GzipText:
    text: bytes  # complete lines only
    truncated: bool = False
    tail: bytes = b""  # partial line of a truncated member
    detail: str | None = None
    unreadable: str | None = None  # why the file could not be read at all


@dataclass
class DecodedFile:
    uri: str
    table: pa.Table  # contract.DECODE_SCHEMA, one row per accepted line
    line_numbers: np.ndarray  # int64, 1-based, aligned with table rows
    raw_line: Callable[[int], bytes]  # line number -> raw bytes (for quarantining rows later)
    quarantine: list[QuarantineEntry]
    lines_in: int
    path: str  # "fast", "slow" or "none"
    warnings: list[str] = field(default_factory=list)


def short(text: str) -> str:
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 3] + "..."


# --------------------------------------------------------------------------- gzip


def decompress(raw: bytes) -> GzipText:
    """All members of a gzip file; a truncated or corrupt last member keeps what decoded before the cut."""
    if not raw:
        return GzipText(b"")
    if raw[:2] != _GZIP_MAGIC:
        return GzipText(b"", unreadable="not a gzip file")
    view = memoryview(raw)
    size = len(raw)
    out: list[bytes] = []
    decoder = zlib.decompressobj(31)
    in_member = False
    pos = 0
    pending: bytes = b""
    error: str | None = None
    while True:
        if pending:
            piece: bytes | memoryview = pending
            pending = b""
        elif pos < size:
            piece = view[pos : pos + _FEED]
            pos += len(piece)
        else:
            break
        # Zero padding after the last member (tape/block devices write it) is not data.
        if (
            not in_member
            and not bytes(piece[:1]).strip(b"\0")
            and not bytes(piece).strip(b"\0")
            and not bytes(view[pos:]).strip(b"\0")
        ):
            break
        in_member = True
        try:
            out.append(decoder.decompress(piece))
        except zlib.error as exc:
            error = f"corrupt gzip data: {exc}"
            break
        if decoder.eof:
            pending = decoder.unused_data
            decoder = zlib.decompressobj(31)
            in_member = False
    text = b"".join(out)
    if error is None and not in_member:
        return GzipText(text)
    if error is not None and not text and len(out) == 0:
        return GzipText(b"", unreadable=error)
    cut = text.rfind(b"\n") + 1
    detail = error or "gzip member ends before its trailer (truncated file)"
    return GzipText(text[:cut], truncated=True, tail=text[cut:], detail=detail)


def strip_line_boms(text: bytes) -> bytes:
    """``text`` without UTF-8 byte-order marks at the start of its lines (line numbers unchanged)."""
    return _LINE_BOMS.sub(b"", text) if _BOM in text else text


def read_landing_file(uri: str) -> GzipText:
    try:
        raw = storage.read_bytes(uri)
    except Exception as exc:  # any storage failure: this file is unreadable, the others go on
        return GzipText(b"", unreadable=short(f"{type(exc).__name__}: {exc}"))
    gz = decompress(raw)
    gz.text = strip_line_boms(gz.text)
    return gz


# --------------------------------------------------------------------------- JSON


def read_json_text(data: bytes | memoryview) -> pa.Table:
    return pj.read_json(io.BytesIO(data), read_options=_READ_OPTIONS, parse_options=_PARSE_OPTIONS)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def classify_line(line: bytes) -> tuple[str, str | None, str | None, str | None] | None:
    """(reason, detail, event_id, event_type) of a line the decoder rejected; None if it is in fact valid."""
    try:
        obj = PLAIN_DECODER.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, ValueError, OverflowError) as exc:
        return Reason.MALFORMED_JSON.value, short(str(exc)), None, None
    if not isinstance(obj, dict):
        return Reason.NOT_AN_OBJECT.value, _json_kind(obj), None, None
    raw_id = obj.get("event_id")
    event_id = raw_id if isinstance(raw_id, str) else None
    event_type = obj.get("event_type")
    if event_type is None:
        return Reason.MISSING_REQUIRED_FIELD.value, "event_type", event_id, None
    if not isinstance(event_type, str):
        return Reason.WRONG_TYPE.value, "event_type", event_id, None
    if event_type not in TYPE_FIELDS:
        return Reason.UNKNOWN_EVENT_TYPE.value, short(event_type), event_id, short(event_type)
    for name in (*TYPE_FIELDS[event_type], *FOREIGN_FIELDS[event_type]):
        value = obj.get(name)
        if value is not None and not value_matches(value, FIELD_TYPES[name]):
            return Reason.WRONG_TYPE.value, name, event_id, event_type
    for name in REQUIRED_IN_ORDER[event_type]:
        if obj.get(name) is None:
            return Reason.MISSING_REQUIRED_FIELD.value, name, event_id, event_type
    try:
        EVENT_DECODER.decode(line)
    except Exception as exc:  # the typed decoder saw something the rules above did not
        return Reason.WRONG_TYPE.value, _field_from_message(str(exc)), event_id, event_type
    return None


def _field_from_message(message: str) -> str:
    match = re.search(r"`\$\.([A-Za-z0-9_]+)", message)
    return match[1] if match else short(message)


def _classify_arrow_error(line: bytes, exc: Exception) -> tuple[str, str | None, str | None, str | None]:
    message = str(exc)
    event_id: str | None = None
    event_type: str | None = None
    try:
        obj = PLAIN_DECODER.decode(line)
        if isinstance(obj, dict):
            event_id = obj.get("event_id") if isinstance(obj.get("event_id"), str) else None
            event_type = obj.get("event_type") if isinstance(obj.get("event_type"), str) else None
    except Exception:
        pass
    if "specified twice" in message:
        return Reason.MALFORMED_JSON.value, "duplicate key", event_id, event_type
    match = _ARROW_COLUMN.search(message)
    if match and "UTF8" not in message:
        return Reason.WRONG_TYPE.value, match[1], event_id, event_type
    return Reason.MALFORMED_JSON.value, short(message), event_id, event_type


def _read_lines_robust(
    lines: list[bytes], numbers: list[int], quarantine: list[QuarantineEntry]
) -> list[tuple[pa.Table, list[int]]]:
    """``read_json`` over lines the msgspec decoder accepted, bisecting around any the Arrow reader refuses."""
    if not lines:
        return []
    try:
        data = b"\n".join(lines)
        if not utf8_ok(data):
            raise pa.ArrowInvalid("Invalid UTF8 sequence")
        table = read_json_text(data)
        if table.num_rows == len(lines):
            return [(table, numbers)]
        failure: Exception = ValueError(f"{table.num_rows} rows from {len(lines)} lines")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        failure = exc
    if len(lines) == 1:
        reason, detail, event_id, event_type = _classify_arrow_error(lines[0], failure)
        quarantine.append((numbers[0], reason, detail, lines[0], event_id, event_type))
        return []
    mid = len(lines) // 2
    return _read_lines_robust(lines[:mid], numbers[:mid], quarantine) + _read_lines_robust(
        lines[mid:], numbers[mid:], quarantine
    )


def _without_lines(text: bytes, lines: list[bytes], drop: list[int]) -> bytes:
    """``text`` minus the lines at the (sorted) indexes ``drop``, joined in one pass."""
    if not drop:
        return text
    segments = []
    previous = 0
    for index in drop:
        segments.append(lines[previous:index])
        previous = index + 1
    segments.append(lines[previous:])
    return b"\n".join(itertools.chain.from_iterable(segments))


def line_count(text: bytes) -> int:
    if not text:
        return 0
    return text.count(b"\n") + (0 if text.endswith(b"\n") else 1)


def utf8_ok(data: bytes) -> bool:
    """Whether ``data`` is valid UTF-8 (Arrow's SIMD check over the buffer, no copy).

    The Arrow JSON reader does not reject every invalid sequence inside strings, so text is
    checked before it is parsed.
    """
    if not data:
        return True
    offsets = pa.array([0, len(data)], pa.int64()).buffers()[1]
    try:
        pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(data)).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _decodes(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def fast_path(text: bytes, lines: int | None = None) -> pa.Table | None:
    """The whole text through the Arrow reader, if it passes the screens and gives one row per line.

    ``lines`` is ``line_count(text)`` when the caller knows it already.
    """
    if text[:1] in (b" ", b"\t", b"\r", b"\n") or text.startswith(b"null") or _SCREEN.search(text):
        return None
    if not utf8_ok(text):
        return None
    if lines is None:
        lines = line_count(text)
    try:
        table = read_json_text(text)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    return table if table.num_rows == lines else None


class FastRawLines:
    """Raw line lookup for a fast-path file: newline offsets are computed only if a line is asked for."""

    def __init__(self, text: bytes) -> None:
        self._text = text
        self._starts: np.ndarray | None = None

    def __call__(self, line_number: int) -> bytes:
        if self._starts is None:
            newlines = np.flatnonzero(np.frombuffer(self._text, dtype=np.uint8) == 10)
            self._starts = np.concatenate([[0], newlines + 1]).astype(np.int64)
        start = int(self._starts[line_number - 1])
        end = int(self._starts[line_number]) - 1 if line_number < len(self._starts) else len(self._text)
        return self._text[start:end].rstrip(b"\r")


@dataclass
class Screened:
    """One file's complete lines after the per-line check (slow path, before the Arrow reader)."""

    good_text: bytes  # the accepted lines, newline-separated, in file order
    good_numbers: np.ndarray  # int64, 1-based line numbers of the lines in good_text
    lines: list[bytes]
    quarantine: list[QuarantineEntry]
    lines_in: int
    warnings: list[str] = field(default_factory=list)

    def raw_line(self, line_number: int) -> bytes:
        return self.lines[line_number - 1].rstrip(b"\r")


def screen_lines(uri: str, text: bytes) -> Screened:
    """Check every line with the typed msgspec decoder; classify and set aside the ones it refuses."""
    lines = text.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    decode = EVENT_DECODER.decode
    rejected: list[int] = []
    for index, line in enumerate(lines):
        try:
            decode(line)
        except Exception:  # every failure is classified below; nothing escapes
            rejected.append(index)
    quarantine: list[QuarantineEntry] = []
    blank = 0
    drop: set[int] = set()
    for index in rejected:
        line = lines[index]
        if not line.strip():
            blank += 1
            drop.add(index)
            continue
        verdict = classify_line(line)
        if verdict is None:  # pragma: no cover - the two decoders agree on every known case
            continue
        reason, detail, event_id, event_type = verdict
        quarantine.append((index + 1, reason, detail, line, event_id, event_type))
        drop.add(index)
    good_text = _without_lines(text, lines, sorted(drop))
    if not utf8_ok(good_text):
        # Invalid UTF-8 the typed decoder did not look at (a field it ignores): JSON must be UTF-8.
        for index in range(len(lines)):
            if index not in drop and not _decodes(lines[index]):
                quarantine.append((index + 1, Reason.MALFORMED_JSON.value, "invalid UTF-8", lines[index], None, None))
                drop.add(index)
        good_text = _without_lines(text, lines, sorted(drop))
    keep = np.ones(len(lines), dtype=bool)
    if drop:
        keep[sorted(drop)] = False
    warnings = [f"{uri}: {blank} blank line(s) skipped"] if blank else []
    numbers = (np.flatnonzero(keep) + 1).astype(np.int64)
    return Screened(good_text, numbers, lines, quarantine, len(lines) - blank, warnings)


def read_screened(screened: Screened) -> tuple[pa.Table, np.ndarray]:
    """``read_json`` over a file's accepted lines; (rows, their line numbers). Disagreements are bisected."""
    if not len(screened.good_numbers):
        return DECODE_SCHEMA.empty_table(), np.zeros(0, np.int64)
    try:
        table = read_json_text(screened.good_text)
        if table.num_rows == len(screened.good_numbers):
            return table, screened.good_numbers
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    # Usually a contract field with the wrong type on an event type that does not use it: the
    # strict decoder finds those in one pass. Whatever is left is isolated by bisection.
    kept = []
    strict = STRICT_DECODER.decode
    for number in screened.good_numbers.tolist():
        line = screened.lines[number - 1]
        try:
            strict(line)
        except Exception:
            reason, detail, event_id, event_type = classify_line(line) or (Reason.WRONG_TYPE.value, None, None, None)
            screened.quarantine.append((number, reason, detail, line, event_id, event_type))
            continue
        kept.append(number)
    parts = _read_lines_robust([screened.lines[n - 1] for n in kept], kept, screened.quarantine)
    screened.quarantine.sort(key=lambda entry: entry[0])
    tables = [t for t, _ in parts]
    table = pa.concat_tables(tables) if tables else DECODE_SCHEMA.empty_table()
    return table, np.array([n for _, ns in parts for n in ns], dtype=np.int64)


def is_blank(text: bytes) -> bool:
    return not text or text.isspace()


def decode_text(uri: str, text: bytes) -> DecodedFile:
    """Decode the complete lines of one file (see the module docstring for the two paths)."""
    text = strip_line_boms(text)
    if is_blank(text):
        blank = line_count(text)
        warnings = [f"{uri}: {blank} blank line(s) skipped"] if blank else []
        return DecodedFile(
            uri, DECODE_SCHEMA.empty_table(), np.zeros(0, np.int64), lambda n: b"", [], 0, "none", warnings
        )
    table = fast_path(text)
    if table is not None:
        numbers = np.arange(1, table.num_rows + 1, dtype=np.int64)
        return DecodedFile(uri, table, numbers, FastRawLines(text), [], table.num_rows, "fast")
    screened = screen_lines(uri, text)
    decoded, numbers = read_screened(screened)
    screened.quarantine.sort(key=lambda entry: entry[0])
    return DecodedFile(
        uri, decoded, numbers, screened.raw_line, screened.quarantine, screened.lines_in, "slow", screened.warnings
    )


def decode_file(uri: str) -> DecodedFile:
    """Read, decompress and decode one landing file. Never raises on bad input."""
    gz = read_landing_file(uri)
    if gz.unreadable is not None:
        entry: QuarantineEntry = (0, Reason.UNREADABLE_FILE.value, gz.unreadable, b"", None, None)
        return DecodedFile(uri, DECODE_SCHEMA.empty_table(), np.zeros(0, np.int64), lambda n: b"", [entry], 1, "none")
    decoded = decode_text(uri, gz.text)
    if gz.truncated:
        line_number = line_count(gz.text) + 1
        entry = (line_number, Reason.TRUNCATED_GZIP.value, gz.detail, gz.tail, None, None)
        decoded.quarantine.append(entry)
        decoded.lines_in += 1
    return decoded


def _check_contract() -> None:
    for event_type, names in TYPE_FIELDS.items():
        for name in names:
            if name not in FIELD_TYPES:
                raise AssertionError(f"{event_type}.{name} missing from the decode schema")
    assert set(TYPE_FIELDS) == set(events.EVENT_TYPES)


_check_contract()
