"""Everything the ingestion derives from the event contract (``maestro_ml.contracts.events``).

* ``DECODE_SCHEMA``: the union of every event type's fields, as the JSON reader sees them.
  Timestamps are read as strings and parsed afterwards, vectorised, so an unparseable value
  quarantines one line instead of failing a whole block.
* ``VALID_SCHEMA``: the same union with timestamps typed; the shape of validated rows.
* ``EVENT_DECODER``: a msgspec decoder of a tagged union (one Struct per event type, tag
  ``event_type``) that checks a line's own fields: used per line on files the fast path
  rejected. ``STRICT_DECODER`` also types the contract fields a type does not use (the
  Arrow reader types fields by name, whatever the event type).
* ``Reason``: the machine-readable quarantine reason codes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Union

import msgspec
import pyarrow as pa

from maestro_ml.contracts import events


class Reason(StrEnum):
    MALFORMED_JSON = "malformed_json"
    TRUNCATED_GZIP = "truncated_gzip"
    UNREADABLE_FILE = "unreadable_file"
    NOT_AN_OBJECT = "not_an_object"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    MISSING_REQUIRED_FIELD = "missing_required_field"
    WRONG_TYPE = "wrong_type"
    FUTURE_TIMESTAMP = "future_timestamp"
    ABSURD_TIMESTAMP = "absurd_timestamp"
    OUT_OF_RANGE = "out_of_range"
    UNKNOWN_VALUE = "unknown_value"


REASONS: tuple[str, ...] = tuple(reason.value for reason in Reason)

# Columns added to staged tables: position of the row in the landing data.
FILE_COL = "_file"  # index of the source file in the hour's sorted file list
LINE_COL = "_line"  # 1-based line number inside that file


def _union_fields(timestamps_as_strings: bool) -> list[pa.Field]:
    fields: dict[str, pa.Field] = {}
    for event_type in events.EVENT_TYPES:
        for field in events.schema_for(event_type):
            field_type = pa.string() if (timestamps_as_strings and field.type == events.TS) else field.type
            candidate = pa.field(field.name, field_type)  # nullable: presence is checked per type
            known = fields.setdefault(field.name, candidate)
            if known.type != candidate.type:
                raise TypeError(f"field {field.name!r} has two types in the contract: {known.type} and {field.type}")
    return list(fields.values())


DECODE_SCHEMA = pa.schema(_union_fields(timestamps_as_strings=True))
VALID_SCHEMA = pa.schema(_union_fields(timestamps_as_strings=False))
TIMESTAMP_FIELDS: tuple[str, ...] = tuple(f.name for f in VALID_SCHEMA if f.type == events.TS)
LIST_FIELDS: tuple[str, ...] = tuple(f.name for f in VALID_SCHEMA if pa.types.is_list(f.type))

# Fields of each type in contract order: envelope first, then the type's own fields.
TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    event_type: tuple(events.schema_for(event_type).names) for event_type in events.EVENT_TYPES
}
# Contract fields a type does not use, in union order: typed too (see ``_event_struct``), then dropped.
FOREIGN_FIELDS: dict[str, tuple[str, ...]] = {
    event_type: tuple(f.name for f in VALID_SCHEMA if f.name not in TYPE_FIELDS[event_type])
    for event_type in events.EVENT_TYPES
}
REQUIRED_IN_ORDER: dict[str, tuple[str, ...]] = {
    event_type: tuple(name for name in TYPE_FIELDS[event_type] if name in events.required_fields(event_type))
    for event_type in events.EVENT_TYPES
}

_INT8 = Annotated[int, msgspec.Meta(ge=-128, le=127)]


def _python_type(arrow_type: pa.DataType) -> Any:
    if arrow_type == pa.int8():
        return _INT8
    if pa.types.is_floating(arrow_type):
        return float
    if arrow_type == pa.string() or arrow_type == events.TS:
        return str
    if pa.types.is_list(arrow_type) and pa.types.is_floating(arrow_type.value_type):
        return list[float]
    raise TypeError(f"no msgspec type for {arrow_type}")


def _event_struct(event_type: str, strict: bool) -> type[msgspec.Struct]:
    """Struct of one type: its own fields (required ones without default). ``strict`` adds every
    other contract field as optional, so that a field name holds its contract type whichever
    event carries it (the Arrow reader, typing by name, insists on that)."""
    required = events.required_fields(event_type)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    own = events.schema_for(event_type)
    foreign = [f for f in VALID_SCHEMA if f.name not in own.names] if strict else []
    for field in [*own, *foreign]:
        if field.name == "event_type":
            continue  # the tag
        python_type = _python_type(field.type)
        if field.name in required:
            fields.append((field.name, python_type))
        else:
            fields.append((field.name, python_type | None, None))
    name = f"{'Strict' if strict else 'Event'}_{event_type}"
    return msgspec.defstruct(name, fields, tag_field="event_type", tag=event_type, kw_only=True, omit_defaults=True)


EVENT_STRUCTS: dict[str, type[msgspec.Struct]] = {t: _event_struct(t, strict=False) for t in events.EVENT_TYPES}
STRICT_STRUCTS: dict[str, type[msgspec.Struct]] = {t: _event_struct(t, strict=True) for t in events.EVENT_TYPES}
# Per line on files the fast path refused: the type's own fields only (faster, the common case).
EVENT_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Union[tuple(EVENT_STRUCTS.values())])  # noqa: UP007
# Second pass when the Arrow reader still refuses accepted lines: other contract fields typed too.
STRICT_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder(Union[tuple(STRICT_STRUCTS.values())])  # noqa: UP007
PLAIN_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder()


def value_matches(value: Any, arrow_type: pa.DataType) -> bool:
    """Whether one decoded JSON value (not None) can be typed as ``arrow_type`` (mirrors ``EVENT_DECODER``)."""
    if arrow_type == pa.int8():
        return isinstance(value, int) and not isinstance(value, bool) and -128 <= value <= 127
    if pa.types.is_floating(arrow_type):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if arrow_type == pa.string() or arrow_type == events.TS:
        return isinstance(value, str)
    if pa.types.is_list(arrow_type):
        return isinstance(value, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    return False


FIELD_TYPES: dict[str, pa.DataType] = {f.name: f.type for f in VALID_SCHEMA}
