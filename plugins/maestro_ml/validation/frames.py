"""Getting tables into the shape GX validates quickly, without GX doing anything yet.

Everything here is data preparation for the suites in :mod:`maestro_ml.validation.suites`:

* **Arrow to pandas, column by column.** GX's pandas engine vectorises range checks only on
  ``int64``/``float64``/``datetime64`` columns and falls back to a Python call per value for
  anything else (``float32``, ``int8``, Arrow-backed numbers), so numbers are widened to
  64 bits and timestamps become ``datetime64[us, UTC]``. Strings and lists stay Arrow-backed
  (``pd.ArrowDtype``): no Python ``str`` objects are created, and ``isin``/``duplicated``/
  ``isna`` run in Arrow.
* **The observed schema as data.** One row per contract column, ``"<table>.<column>:<type>"``
  with the type as seen in the input (logical: ``string``, ``integer``, ``float``,
  ``timestamp[UTC]``, ``list<float>``...), so a single GX expectation checks every column's
  presence and type and its unexpected values name exactly what is wrong.
* **Referential integrity as derived columns.** ``<column>_not_in_<entity>`` holds the id when
  it is set but unknown and null otherwise; GX then expects that column to be null, and its
  unexpected values are the orphan ids themselves. (Putting a million known ids into an
  ``ExpectColumnValuesToBeInSet`` value set would put them into every stored result and
  Data Docs page too.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from maestro_ml.contracts.events import TS

TableLike = pa.Table | pd.DataFrame

MISSING = "<missing>"
_UTC_NAMES = frozenset({"UTC", "utc", "Etc/UTC", "+00:00", "Z", "GMT", "Etc/GMT"})


def logical_type(dtype: pa.DataType) -> str:
    """A width-agnostic name for an Arrow type: what the schema check compares."""
    if pa.types.is_dictionary(dtype):
        return logical_type(dtype.value_type)
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype):
        return "integer"
    if pa.types.is_floating(dtype):
        return "float"
    if pa.types.is_timestamp(dtype):
        if dtype.tz is None:
            return "timestamp[naive]"
        return "timestamp[UTC]" if dtype.tz in _UTC_NAMES else f"timestamp[{dtype.tz}]"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_fixed_size_list(dtype):
        return f"list<{logical_type(dtype.value_type)}>"
    if pa.types.is_null(dtype):
        return "null"
    return str(dtype)


def _series_to_arrow(series: pd.Series, target: pa.DataType | None) -> pa.ChunkedArray | pa.Array:
    try:
        arr = pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # Mixed Python types in an object column: keep the values as text so the schema check reports
        # the column as a string instead of the conversion failing outside GX.
        arr = pa.array(series.astype(str).where(series.notna(), None), type=pa.string())
    if target is not None and not arr.type.equals(target):
        if pa.types.is_null(arr.type):
            return pa.nulls(len(arr), target)
        try:  # pandas has no int8/float32/us discipline: accept lossless casts to the contract type
            return pc.cast(arr, target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return arr
    return arr


def to_arrow(table: Any, schema: pa.Schema | None = None) -> pa.Table:
    """An Arrow table from an Arrow table or a pandas DataFrame.

    Arrow input is taken as is, except that all-null columns of Arrow's ``null`` type get the
    contract type. pandas input is converted column by column and cast to the contract type
    where Arrow can do so safely (an ``int64`` column of hours becomes ``float32``, naive
    ``datetime64`` is read as UTC); anything else keeps its own type for the schema check to
    report. Arrow input gets no such leniency: it is what the lake holds.
    """
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if isinstance(table, pd.DataFrame):
        names = [str(c) for c in table.columns]
        arrays = [
            _series_to_arrow(
                table.iloc[:, i],
                schema.field(name).type if schema is not None and name in schema.names else None,
            )
            for i, name in enumerate(names)
        ]
        return pa.table(dict(zip(names, arrays, strict=True))) if names else pa.table({})
    if not isinstance(table, pa.Table):
        raise TypeError(f"expected a pyarrow.Table or pandas.DataFrame, got {type(table).__name__}")
    if schema is not None:
        for i, field in enumerate(table.schema):
            if pa.types.is_null(field.type) and field.name in schema.names:
                table = table.set_column(i, field.name, pa.nulls(table.num_rows, schema.field(field.name).type))
    return table


def observed_schema_rows(name: str, table: pa.Table, schema: pa.Schema) -> tuple[list[str], list[str]]:
    """(observed, expected) ``"<name>.<column>:<type>"`` strings, one pair per contract column."""
    observed, expected = [], []
    present = {f.name: f.type for f in table.schema}
    for field in schema:
        key = f"{name}.{field.name}"
        expected.append(f"{key}:{logical_type(field.type)}")
        observed.append(f"{key}:{logical_type(present[field.name])}" if field.name in present else f"{key}:{MISSING}")
    return observed, expected


def schema_frame(rows: Iterable[tuple[list[str], list[str]]]) -> tuple[pd.DataFrame, list[str]]:
    """The frame the schema suite validates, and the value set of everything the contract allows."""
    observed: list[str] = []
    expected: list[str] = []
    for obs, exp in rows:
        observed.extend(obs)
        expected.extend(exp)
    frame = pd.DataFrame({"column_type": pd.array(observed, dtype=pd.ArrowDtype(pa.string()))})
    return frame, expected


def with_contract_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with every contract column present: missing ones are added as all-null.

    The schema suite reports the missing column; here it only keeps the other expectations
    from erroring on it (a missing required field then also fails its not-null check).
    """
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field.name, pa.nulls(table.num_rows, field.type))
    return table


def _column_to_pandas(col: pa.ChunkedArray) -> pd.Series:
    dtype = col.type
    if pa.types.is_dictionary(dtype):
        col = pc.cast(col, dtype.value_type)
        dtype = col.type
    if pa.types.is_timestamp(dtype):
        return col.to_pandas()  # numpy datetime64[unit, tz]: vectorised comparisons in GX
    if pa.types.is_floating(dtype):
        return pd.Series(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False))  # nulls become NaN
    if pa.types.is_integer(dtype) or pa.types.is_boolean(dtype):
        if col.null_count == 0:
            target = pa.int64() if pa.types.is_integer(dtype) else pa.bool_()
            return pd.Series(pc.cast(col, target).to_numpy(zero_copy_only=False))
        nullable = pd.Int64Dtype() if pa.types.is_integer(dtype) else pd.BooleanDtype()
        return pd.Series(
            pd.array(pc.cast(col, pa.int64() if pa.types.is_integer(dtype) else pa.bool_()), dtype=nullable)
        )
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        col = pc.cast(col, pa.string())
    return pd.Series(pd.arrays.ArrowExtensionArray(col))


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """The pandas frame GX validates: see the module docstring for the dtype choices."""
    columns = {name: _column_to_pandas(table.column(i)) for i, name in enumerate(table.column_names)}
    frame = pd.DataFrame(columns, copy=False)
    frame.index = pd.RangeIndex(table.num_rows)
    return frame


def as_string_array(values: Any) -> pa.Array:
    """Ids as one Arrow string array, from an Arrow array/column, a pandas Series or any iterable."""
    if isinstance(values, pa.ChunkedArray):
        arr: pa.Array = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    elif isinstance(values, pa.Array):
        arr = values
    elif isinstance(values, pd.Series | pd.Index | np.ndarray):
        arr = pa.array(values, from_pandas=True)
    else:
        arr = pa.array(list(values))
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_null(arr.type):
        return pa.array([], type=pa.string())
    if not pa.types.is_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return arr


def id_set(*parts: Any) -> pa.Array:
    """The distinct non-null ids of all ``parts`` together."""
    arrays = [as_string_array(p) for p in parts if p is not None]
    if not arrays:
        return pa.array([], type=pa.string())
    merged = pa.chunked_array(arrays, type=pa.string())
    return pc.drop_null(pc.unique(merged))


def unknown_refs(column: pa.ChunkedArray, known: pa.Array) -> pa.ChunkedArray:
    """``column``'s value where it is set but not in ``known``, null elsewhere."""
    if pa.types.is_dictionary(column.type):
        column = pc.cast(column, column.type.value_type)
    if not pa.types.is_string(column.type):
        try:
            column = pc.cast(column, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return pa.chunked_array([pa.nulls(len(column), pa.string())])
    orphan = pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, value_set=known)))
    return pc.if_else(orphan, column, pa.scalar(None, pa.string()))


def ref_column_name(column: str, entity: str) -> str:
    return f"{column}_not_in_{entity}"


def add_ref_columns(table: pa.Table, refs: Mapping[str, tuple[str, pa.Array]]) -> pa.Table:
    """Append one ``<column>_not_in_<entity>`` column per ``column -> (entity, known ids)``."""
    for column, (entity, known) in refs.items():
        values = (
            unknown_refs(table.column(column), known)
            if column in table.column_names
            else pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
        )
        table = table.append_column(ref_column_name(column, entity), values)
    return table


def _coerce(col: pa.ChunkedArray, dtype: pa.DataType, n: int) -> pa.ChunkedArray:
    if col.type.equals(dtype):
        return col
    if pa.types.is_dictionary(col.type):
        col = pc.cast(col, col.type.value_type)
    if pa.types.is_timestamp(dtype) and not pa.types.is_timestamp(col.type):
        return pa.chunked_array([pa.nulls(n, dtype)])
    try:
        return pc.cast(col, dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.chunked_array([pa.nulls(n, dtype)])


def envelope_table(tables: Mapping[str, pa.Table]) -> pa.Table:
    """Every event of the hour, whatever its type: ``event_id``, ``event_type``, ``occurred_at`` and the
    ``table`` it came in (the event type it was filed under).

    Envelope columns of a wrong type are nulled here (the schema suite names the real problem).
    """
    parts = []
    for name, table in tables.items():
        n = table.num_rows
        cols = {}
        for column, dtype in (("event_id", pa.string()), ("event_type", pa.string()), ("occurred_at", TS)):
            cols[column] = (
                _coerce(table.column(column), dtype, n)
                if column in table.column_names
                else pa.chunked_array([pa.nulls(n, dtype)])
            )
        cols["table"] = pa.chunked_array([pa.repeat(pa.scalar(name, pa.string()), n)])
        parts.append(pa.table(cols))
    if not parts:
        return pa.table(
            {
                "event_id": pa.array([], pa.string()),
                "event_type": pa.array([], pa.string()),
                "occurred_at": pa.array([], TS),
                "table": pa.array([], pa.string()),
            }
        )
    return pa.concat_tables(parts)
