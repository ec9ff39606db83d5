"""Vectorised checks on decoded rows: event type, required fields, list elements, timestamps.

Precedence when a line breaks several rules (first match wins, in both decode paths):
unknown/missing event type, wrong type (the type's own fields in contract order, then other
contract fields: a field name has one type across the contract, whichever event carries
it), missing required field (contract order: envelope first), unparseable timestamp
(``absurd_timestamp``), future ``occurred_at``, ``occurred_at`` older than the allowed
lateness (``absurd_timestamp``). Fields outside the contract are ignored.

Timestamps arrive as strings. The contract form is ISO-8601 with a zone (``...Z``); a value
without zone is read as UTC and more than six fractional digits are truncated to
microseconds. Anything else is unparseable. Only the timestamp fields of a row's own event
type are checked, the same rule the per-line decoder applies (unknown fields are ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from maestro_ml.contracts import events
from maestro_ml.ingestion.contract import (
    FOREIGN_FIELDS,
    LIST_FIELDS,
    REQUIRED_IN_ORDER,
    TIMESTAMP_FIELDS,
    TYPE_FIELDS,
    Reason,
)
from maestro_ml.lake import lake_schema

_ZONE_SUFFIX = r"(?:Z|z|[+-]\d{2}(?::?\d{2})?)$"
_ISO_SHAPE = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}(?::\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)?(?:Z|z|[+-]\d{2}(?::?\d{2})?)?$"


@dataclass
class Validated:
    """Valid rows split by event type (``lake.lake_schema`` each, input order kept) and the rejects."""

    tables: dict[str, pa.Table]
    positions: dict[str, np.ndarray]  # per type: row positions in the input table
    rejects: Rejects


@dataclass
class Rejects:
    """Rows refused by validation: positions into the validated table, with reason and detail."""

    rows: np.ndarray  # int64
    reasons: list[str]
    details: list[str | None]


def _to_bool(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    filled = pc.fill_null(array, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks() if filled.num_chunks != 1 else filled.chunk(0)
    result: np.ndarray = filled.to_numpy(zero_copy_only=False)
    return result


def _normalise_timestamps(strings: pa.Array) -> pa.Array:
    """Contract-adjacent spellings made castable: add the missing zone, cut sub-microsecond digits."""
    trimmed = pc.replace_substring_regex(strings, r"(\.\d{6})\d+", r"\1")
    has_zone = pc.match_substring_regex(trimmed, _ZONE_SUFFIX)
    zoned = pc.if_else(has_zone, trimmed, pc.binary_join_element_wise(trimmed, pa.scalar("Z"), ""))
    return pc.replace_substring_regex(zoned, r"z$", "Z")


def _cast_bisect(strings: pa.Array, bad: np.ndarray, offset: int) -> pa.Array:
    try:
        return pc.cast(strings, events.TS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if len(strings) == 1:
        bad[offset] = True
        return pa.nulls(1, events.TS)
    mid = len(strings) // 2
    left = _cast_bisect(strings.slice(0, mid), bad, offset)
    right = _cast_bisect(strings.slice(mid), bad, offset + mid)
    return pa.concat_arrays([left, right])


def parse_timestamps(strings: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, np.ndarray]:
    """Strings -> ``timestamp[us, UTC]`` and a mask of the non-null values that do not parse."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks() if strings.num_chunks != 1 else strings.chunk(0)
    bad = np.zeros(len(strings), dtype=bool)
    try:
        return pc.cast(strings, events.TS), bad
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    shaped = _to_bool(pc.match_substring_regex(strings, _ISO_SHAPE))
    present = _to_bool(pc.is_valid(strings))
    bad |= present & ~shaped
    candidates = pc.if_else(pa.array(shaped), _normalise_timestamps(strings), pa.nulls(len(strings), pa.string()))
    parsed = _cast_bisect(candidates, bad, 0)
    return parsed, bad


def _outside(column: pa.Array | pa.ChunkedArray, bounds: events.Bounds) -> np.ndarray:
    """Rows whose (non-null) value lies outside ``bounds``."""
    values = column.to_numpy(zero_copy_only=False).astype(np.float64)  # nulls become NaN: never outside
    with np.errstate(invalid="ignore"):
        outside = np.zeros(len(values), dtype=bool)
        if bounds.low is not None:
            outside |= (values <= bounds.low) if bounds.strict_low else (values < bounds.low)
        if bounds.high is not None:
            outside |= values > bounds.high
    return outside


def check_rows(
    table: pa.Table,
    interval_start: datetime,
    interval_end: datetime,
    *,
    allowed_lateness: timedelta,
    future_tolerance: timedelta,
) -> Validated:
    """Split decoded rows (``DECODE_SCHEMA``) into valid rows per event type and rejects."""
    n = table.num_rows
    ok = np.ones(n, dtype=bool)
    reject_rows: list[np.ndarray] = []
    reasons: list[str] = []
    details: list[str | None] = []

    def reject(mask: np.ndarray, reason: str, detail: str | None | list[str | None]) -> None:
        hit = mask & ok
        if not hit.any():
            return
        rows = np.flatnonzero(hit)
        ok[rows] = False
        reject_rows.append(rows)
        reasons.extend([reason] * len(rows))
        details.extend(detail if isinstance(detail, list) else [detail] * len(rows))

    if n == 0:
        return Validated({}, {}, Rejects(np.zeros(0, np.int64), [], []))

    event_type = (
        table["event_type"].combine_chunks() if table["event_type"].num_chunks != 1 else (table["event_type"].chunk(0))
    )
    encoded = event_type.dictionary_encode()
    dictionary = encoded.dictionary.to_pylist()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    type_null = _to_bool(pc.is_null(event_type))
    reject(type_null, Reason.MISSING_REQUIRED_FIELD.value, "event_type")
    type_masks: dict[str, np.ndarray] = {}
    for code, name in enumerate(dictionary):
        mask = (codes == code) & ~type_null
        if name in TYPE_FIELDS:
            type_masks[name] = mask
        else:
            reject(mask, Reason.UNKNOWN_EVENT_TYPE.value, name)

    # Wrong type: null elements inside a list field (the per-line decoder refuses them, on any event type).
    list_nulls: dict[str, np.ndarray] = {}
    for name in LIST_FIELDS:
        column = table[name]
        if column.null_count == n:
            continue
        flat = pc.list_flatten(column)
        if flat.null_count == 0:
            continue
        parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
        mask = np.zeros(n, dtype=bool)
        mask[parents[_to_bool(pc.is_null(flat))]] = True
        list_nulls[name] = mask
    if list_nulls:
        for event_type_name, type_mask in type_masks.items():
            for name in (*TYPE_FIELDS[event_type_name], *FOREIGN_FIELDS[event_type_name]):
                if name in list_nulls:
                    reject(list_nulls[name] & type_mask, Reason.WRONG_TYPE.value, name)

    null_masks: dict[str, np.ndarray] = {}
    for event_type_name, type_mask in type_masks.items():
        for name in REQUIRED_IN_ORDER[event_type_name]:
            if name == "event_type":
                continue
            if name not in null_masks:
                column = table[name]
                null_masks[name] = _to_bool(pc.is_null(column)) if column.null_count else np.zeros(n, dtype=bool)
            reject(null_masks[name] & type_mask, Reason.MISSING_REQUIRED_FIELD.value, name)

    # Implausible values (30 hours logged at once, priority 7): the row goes, not its whole hour.
    for event_type_name, type_mask in type_masks.items():
        for name, bounds in events.FIELD_BOUNDS.get(event_type_name, {}).items():
            reject(type_mask & _outside(table[name], bounds), Reason.OUT_OF_RANGE.value, f"{name}: {bounds}")
        for name, accepted in events.FIELD_VALUES.get(event_type_name, {}).items():
            unknown = _to_bool(pc.invert(pc.is_in(table[name], value_set=pa.array(accepted))))
            reject(type_mask & unknown & ~_to_bool(pc.is_null(table[name])), Reason.UNKNOWN_VALUE.value,
                   f"{name} not in {', '.join(accepted)}")

    parsed: dict[str, pa.Array] = {}
    for name in TIMESTAMP_FIELDS:
        relevant = np.zeros(n, dtype=bool)
        for event_type_name, type_mask in type_masks.items():
            if name in TYPE_FIELDS[event_type_name]:
                relevant |= type_mask
        column = table[name]
        if not relevant.all():
            column = pc.if_else(pa.array(relevant), column, pa.nulls(n, pa.string()))
        values, bad = parse_timestamps(column)
        parsed[name] = values
        reject(bad, Reason.ABSURD_TIMESTAMP.value, name)

    occurred = parsed["occurred_at"]
    latest = pa.scalar(interval_end + future_tolerance, events.TS)
    earliest = pa.scalar(interval_start - allowed_lateness, events.TS)
    reject(_to_bool(pc.greater(occurred, latest)), Reason.FUTURE_TIMESTAMP.value, "occurred_at")
    reject(_to_bool(pc.less(occurred, earliest)), Reason.ABSURD_TIMESTAMP.value, "occurred_at")

    rows = np.concatenate(reject_rows) if reject_rows else np.zeros(0, np.int64)
    rejects = Rejects(rows.astype(np.int64), reasons, details)
    # Each type keeps only its own columns: dense tables, input order kept.
    tables: dict[str, pa.Table] = {}
    positions: dict[str, np.ndarray] = {}
    for name, type_mask in type_masks.items():
        keep = type_mask & ok
        count = int(keep.sum())
        if count == 0:
            continue
        schema = lake_schema(name)
        if count == n:
            arrays = [parsed[f.name] if f.name in parsed else table[f.name] for f in schema]
        else:
            selector = pa.array(keep)
            arrays = [(parsed[f.name] if f.name in parsed else table[f.name]).filter(selector) for f in schema]
        tables[name] = pa.Table.from_arrays(arrays, schema=schema)
        positions[name] = np.flatnonzero(keep)
    ordered = {name: tables[name] for name in events.EVENT_TYPES if name in tables}
    return Validated(ordered, positions, rejects)
