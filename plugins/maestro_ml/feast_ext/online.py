"""Online retrieval of a feature service in bulk: the frame ``get_online_features(...).to_df()`` returns, faster.

Why: ``FeatureStore.get_online_features`` parses one ``ValueProto`` per stored cell, copies the protos into a
response proto, converts every value back to Python for the on-demand views (``to_dict``), converts their
outputs to protos and everything back to Python once more for the caller. For one task x 50 candidates of
``task_assignment_v2`` (9 views, 3 python-mode on-demand views, ~2,000 stored cells, 66 columns) that is more
than 10,000 per-value conversions, and most of its 40 ms.

What this does instead, from the *same* definitions and the *same* stored bytes:

* the service is resolved by Feast's own request-context helper (the cached one ``get_online_features``
  uses), so views, features, their order, join keys, request fields and the columns kept or dropped are
  Feast's; the plan built from it is cached per registry snapshot and entity-row layout;
* entity keys are serialized once per distinct entity (fast for ``str``/``int`` keys, the layout checked
  against ``serialize_entity_key`` once per view; Feast's converters otherwise) and the cells are read in
  bulk by the Maestro online store's ``read_serialized`` (SQLite: one statement per view; Redis: one
  read-only script, or one pipeline of ``HMGET``s, for all views);
* the stored ``ValueProto`` bytes are decoded from the protobuf wire format: numeric cells of one width in
  one NumPy pass per view (tags learnt from probes of Feast's own ``ValueProto``, every byte checked), strings
  and float lists per cell; a cell without exactly the expected layout goes through ``ValueProto`` +
  ``feast_value_type_to_python_type`` with the type Feast passes, as ``OnlineResponse.to_dict`` does;
* each on-demand view's transformation runs once on the whole batch, with the input dict Feast builds (the
  same keys in the same order, the same Python values, the columns of views it does not read removed), through
  the steps of ``OnDemandFeatureView.transform_dict`` (checked equal to it on a plan's first request); its
  outputs are taken as Feast stores and reads them back (floats, ints, strings directly; anything else
  through Feast's converters);
* the frame is built from NumPy columns with the dtypes ``pd.DataFrame(to_dict())`` infers (int64 without
  nulls, float64 with NaN, object for strings, lists and all-null columns).

TTLs are honoured as Feast's online path honours them: not at read time. Stock SQLite and Redis reads return
the latest stored row whatever its age (a view's ``ttl`` bounds offline joins and materialization windows),
and a Redis key expired by ``key_ttl_seconds`` reads as missing on both paths. A request this module does not
cover (entity-less views, non-python or aggregating on-demand views, on-demand views written to the online
store, entity names instead of join keys, missing join keys or request fields, an online store without
``read_serialized``) is answered by ``get_online_features(...).to_df()`` itself: the result never differs,
only the speed. ``tests/integration/test_online_retrieval.py`` compares both frames on SQLite and Redis.
"""

from __future__ import annotations

import logging
import struct
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import numpy as np
import pandas as pd
from feast import utils as feast_utils
from feast.infra.key_encoding_utils import serialize_entity_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import FloatList
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import feast_value_type_to_python_type, python_values_to_proto_values
from feast.value_type import ValueType

from maestro_ml.contracts.features import REQUEST_TIME_FIELD

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

log = logging.getLogger(__name__)

_U32 = struct.Struct("<I").pack
_Q = struct.Struct("<q").pack
_UNPACK_D = struct.Struct("<d").unpack_from
_UNPACK_F = struct.Struct("<f").unpack_from
_NAN = float("nan")

Cells = Sequence[bytes | None]


class CellRead(NamedTuple):
    """One bulk read: the cells of ``features`` of ``table`` for ``entity_keys`` (serialized, distinct)."""

    table: Any
    entity_keys: list[bytes]
    features: list[str]


# --------------------------------------------------------------------------------------------- decoding


def _probe(**kwargs: Any) -> bytes:
    return ValueProto(**kwargs).SerializeToString()


def _single_byte_tag(probe: bytes, payload_len: int) -> int | None:
    """The one-byte field tag before a payload of ``payload_len`` bytes, if the probe has that shape."""
    if len(probe) == payload_len + 1:
        return probe[0]
    return None


_DOUBLE_TAG = _single_byte_tag(_probe(double_val=1.0), 8)
_FLOAT_TAG = _single_byte_tag(_probe(float_val=1.0), 4)
_INT64_TAG = _single_byte_tag(_probe(int64_val=1), 1)
_INT32_TAG = _single_byte_tag(_probe(int32_val=1), 1)
_STRING_TAG = _single_byte_tag(_probe(string_val="a"), 2)  # tag, length 1, "a"
_EMPTY_FLOAT_LIST = _probe(float_list_val=FloatList(val=[]))
_FLOAT_LIST_TAG = _EMPTY_FLOAT_LIST[:-1]  # the field tag, then the message length (0)
_PACKED_TAG = 0x0A  # FloatList.val (field 1, length-delimited: packed)
if _probe(float_list_val=FloatList(val=[1.0])) != _FLOAT_LIST_TAG + b"\x06\x0a\x04\x00\x00\x80?":
    _FLOAT_LIST_TAG = b""  # an unexpected layout: float lists take the reference decoder


def reference_value(cell: bytes, value_type: ValueType | None) -> Any:
    """A cell as ``OnlineResponse.to_dict`` returns it: ``ValueProto`` then ``feast_value_type_to_python_type``."""
    proto = ValueProto()
    proto.ParseFromString(bytes(cell))
    return feast_value_type_to_python_type(proto, value_type)


def _varint(cell: bytes, pos: int) -> tuple[int, int]:
    """A protobuf varint at ``pos``: (value, position after it); (-1, -1) if malformed."""
    value = shift = 0
    n = len(cell)
    while pos < n and shift < 70:
        byte = cell[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7
    return -1, -1


def _decode_double(cells: Cells, value_type: ValueType | None) -> list[Any]:
    out: list[Any] = []
    append = out.append
    tag = _DOUBLE_TAG
    for cell in cells:
        if not cell:
            append(None)
        elif len(cell) == 9 and cell[0] == tag:
            append(_UNPACK_D(cell, 1)[0])
        else:
            append(reference_value(cell, value_type))
    return out


def _decode_float(cells: Cells, value_type: ValueType | None) -> list[Any]:
    out: list[Any] = []
    append = out.append
    tag = _FLOAT_TAG
    for cell in cells:
        if not cell:
            append(None)
        elif len(cell) == 5 and cell[0] == tag:
            append(_UNPACK_F(cell, 1)[0])
        else:
            append(reference_value(cell, value_type))
    return out


def _int_decoder(tag: int | None, bits: int) -> Callable[[Cells, ValueType | None], list[Any]]:
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)  # protobuf truncates a wider varint to the field's width

    def decode(cells: Cells, value_type: ValueType | None) -> list[Any]:
        out: list[Any] = []
        append = out.append
        for cell in cells:
            if not cell:
                append(None)
            elif cell[0] != tag:
                append(reference_value(cell, value_type))
            elif len(cell) == 2 and cell[1] < 0x80:
                append(cell[1])
            else:
                value, end = _varint(cell, 1)
                if value >= 1 << 63:
                    value -= 1 << 64
                if end != len(cell) or not low <= value < high:
                    append(reference_value(cell, value_type))
                else:
                    append(value)
        return out

    return decode


def _decode_string(cells: Cells, value_type: ValueType | None) -> list[Any]:
    out: list[Any] = []
    append = out.append
    tag = _STRING_TAG
    for cell in cells:
        if not cell:
            append(None)
            continue
        if cell[0] == tag:
            length, start = (cell[1], 2) if len(cell) > 1 and cell[1] < 0x80 else _varint(cell, 1)
            if start > 0 and start + length == len(cell):
                try:
                    append(cell[start:].decode("utf-8"))
                    continue
                except UnicodeDecodeError:
                    pass
        append(reference_value(cell, value_type))
    return out


def _decode_float_list(cells: Cells, value_type: ValueType | None) -> list[Any]:
    out: list[Any] = []
    append = out.append
    tag = _FLOAT_LIST_TAG
    head = len(tag)
    for cell in cells:
        if not cell:
            append(None)
            continue
        if tag and cell[:head] == tag:
            size, pos = _varint(cell, head)
            if pos > 0 and pos + size == len(cell):
                if size == 0:
                    append([])
                    continue
                if cell[pos] == _PACKED_TAG:
                    nbytes, start = _varint(cell, pos + 1)
                    if start > 0 and start + nbytes == len(cell) and nbytes % 4 == 0:
                        append(np.frombuffer(cell, dtype="<f4", count=nbytes // 4, offset=start).tolist())
                        continue
        append(reference_value(cell, value_type))
    return out


def _decode_reference(cells: Cells, value_type: ValueType | None) -> list[Any]:
    return [None if not cell else reference_value(cell, value_type) for cell in cells]


# Feast value type -> (decoder, output kind). Kinds: "float" and "int" are numeric columns, "object" keeps
# Python values; anything not listed is decoded by Feast and its column inferred by pandas, as to_df does.
_DECODERS: dict[ValueType, tuple[Callable[[Cells, ValueType | None], list[Any]], str | None]] = {}
if _DOUBLE_TAG is not None:
    _DECODERS[ValueType.DOUBLE] = (_decode_double, "float")
if _FLOAT_TAG is not None:
    _DECODERS[ValueType.FLOAT] = (_decode_float, "float")
if _INT64_TAG is not None:
    _DECODERS[ValueType.INT64] = (_int_decoder(_INT64_TAG, 64), "int")
if _INT32_TAG is not None:
    _DECODERS[ValueType.INT32] = (_int_decoder(_INT32_TAG, 32), "int")
if _STRING_TAG is not None:
    _DECODERS[ValueType.STRING] = (_decode_string, "object")
if _FLOAT_LIST_TAG:
    _DECODERS[ValueType.FLOAT_LIST] = (_decode_float_list, "list")


# Groups of at least this many cells (across views) are decoded with NumPy when they share one layout.
VECTOR_MIN_CELLS = 8
_NUMERIC_TAGS: dict[ValueType, tuple[int | None, str]] = {
    ValueType.DOUBLE: (_DOUBLE_TAG, "<f8"),
    ValueType.FLOAT: (_FLOAT_TAG, "<f4"),
    ValueType.INT64: (_INT64_TAG, "varint"),
    ValueType.INT32: (_INT32_TAG, "varint"),
}


def _decode_fixed(present: list[bytes], width: int, value_type: ValueType) -> np.ndarray | None:
    """Values of numeric cells that all have ``width`` bytes, decoded at once; None if any is not the layout.

    Double and float cells are the tag then the little-endian value; int cells the tag then a varint of
    ``width - 1`` bytes (continuation bits on all but the last byte, at most 64 bits): exactly the bytes
    protobuf writes for a ``ValueProto`` with that one field, so the values are the ones it would parse.
    """
    tag, layout = _NUMERIC_TAGS[value_type]
    if tag is None or width < 2:
        return None
    matrix = np.frombuffer(b"".join(present), dtype=np.uint8).reshape(len(present), width)
    if not bool((matrix[:, 0] == tag).all()):
        return None
    if layout != "varint":
        if width != 1 + np.dtype(layout).itemsize:
            return None
        return matrix[:, 1:].copy().view(layout).ravel().astype(np.float64)
    payload = matrix[:, 1:]
    if width > 11 or not (bool((payload[:, :-1] >= 0x80).all()) and bool((payload[:, -1] < 0x80).all())):
        return None
    if width == 11 and not bool((payload[:, -1] <= 1).all()):
        return None  # more than 64 bits: the per-cell decoder hands it to protobuf
    acc = np.zeros(len(present), dtype=np.uint64)
    for k in range(width - 1):
        acc |= (payload[:, k] & 0x7F).astype(np.uint64) << np.uint64(7 * k)
    values = acc.view(np.int64)
    if value_type == ValueType.INT32 and not bool(((values >= -(1 << 31)) & (values < (1 << 31))).all()):
        return None  # protobuf would truncate these to 32 bits: the per-cell decoder hands them to it
    return values


class FloatRow(list):  # type: ignore[type-arg]
    """A decoded float list: the Python floats ``to_dict`` gives, which NumPy converts without reading them.

    The values are also kept as a float64 array (float32 -> float64 is exact, as float32 -> Python float is),
    handed to NumPy through ``__array__``: ``np.array(rows, dtype=np.float64)`` over the title vectors of a
    request takes 20 us instead of 270 us, and gives the same array to the bit. Any change to the list drops
    the array, so NumPy then reads the list as it would a plain one. Only on-demand views see these rows;
    frame columns hold plain lists.
    """

    __slots__ = ("_array",)

    def __init__(self, values: list[float], array: np.ndarray | None = None) -> None:
        super().__init__(values)
        self._array = array

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        array = self._array
        if array is None or len(array) != len(self):
            return np.array(list(self), dtype=dtype)
        if dtype is not None and np.dtype(dtype) != array.dtype:
            return array.astype(dtype)
        return array if copy is False else array.copy()

    def __reduce__(self) -> tuple:
        return list, (list(self),)


def _dropping_array(name: str) -> Callable[..., Any]:
    method = getattr(list, name)

    def mutate(self: FloatRow, *args: Any, **kwargs: Any) -> Any:
        self._array = None
        return method(self, *args, **kwargs)

    mutate.__name__ = name
    return mutate


for _name in ("__setitem__", "__delitem__", "__iadd__", "__imul__", "append", "extend", "insert", "pop",
              "remove", "sort", "reverse", "clear"):
    setattr(FloatRow, _name, _dropping_array(_name))
del _name


def _decode_float_lists(present: list[bytes], width: int) -> list[Any] | None:
    """Float-list cells of one width (one vector length) decoded at once, if they share the first one's header."""
    tag = _FLOAT_LIST_TAG
    head = len(tag)
    first = present[0]
    if not tag or first[:head] != tag:
        return None
    size, pos = _varint(first, head)
    if pos < 0 or pos + size != width or size == 0 or first[pos] != _PACKED_TAG:
        return None
    nbytes, start = _varint(first, pos + 1)
    if start < 0 or start + nbytes != width or nbytes % 4:
        return None
    matrix = np.frombuffer(b"".join(present), dtype=np.uint8).reshape(len(present), width)
    if not bool((matrix[:, :start] == matrix[0, :start]).all()):
        return None
    floats = matrix[:, start:].copy().view("<f4")
    return list(map(FloatRow, floats.tolist(), floats.astype(np.float64)))


def decode_cells(cells: Cells, value_type: ValueType | None) -> list[Any]:
    """Stored ``ValueProto`` bytes (``None`` or ``b""``: null) -> the Python values ``to_dict`` gives."""
    decoder = _DECODERS.get(value_type) if value_type is not None else None
    return (decoder[0] if decoder else _decode_reference)(cells, value_type)


# --------------------------------------------------------------------------------------------- columns


_KIND_TYPES: dict[str, set[type]] = {
    "float": {float, type(None)},
    "int": {int, type(None)},
    "object": {str, type(None)},
    "list": {list, FloatRow, type(None)},
}


def _column(values: list[Any], kind: str | None) -> Any:
    """A frame column equal to what ``pd.DataFrame`` infers from ``values`` (the list ``to_dict`` gives).

    ``kind`` says what the values can be: "float" (float or None), "int" (int or None), "object" (strings
    or None), "list" (lists or None); None: unknown, the list itself goes to pandas.
    """
    if kind is None or not set(map(type, values)) <= _KIND_TYPES[kind]:
        return values  # a cell the reference decoder read as something else: pandas infers, as to_df does
    n = len(values)
    nulls = values.count(None)
    if nulls == n and n:
        return np.array(values, dtype=object)  # an all-null column stays object
    if kind in ("object", "list"):
        out = np.empty(n, dtype=object)
        if kind == "object":
            out[:] = values
        else:  # a slice assignment would broadcast nested lists
            for i, value in enumerate(values):
                out[i] = list(value) if type(value) is FloatRow else value  # frames hold plain lists
        return out
    if nulls:
        return np.array([_NAN if v is None else v for v in values], dtype=np.float64)
    if kind == "int":
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            return values
    return np.array(values, dtype=np.float64)


_NONE_TYPE = type(None)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _output_column(values: Any, value_type: ValueType, read_type: ValueType | None) -> np.ndarray | None:
    """The frame column of an on-demand output, when it reads back unchanged through Feast's proto round trip.

    Feast stores each output with ``python_values_to_proto_values(values, declared type)`` and reads it back
    with ``feast_value_type_to_python_type``: Python floats (NaN -> None) for double, ints for int64 and
    strings for string come back as they are, and ``pd.DataFrame`` makes them float64 (NaN for None), int64
    (float64 with a None) or object (all None, strings). None: anything else, which takes Feast's conversion.
    """
    if type(values) is not list or not values or read_type not in (None, ValueType.UNKNOWN, value_type):
        return None
    types = set(map(type, values))
    if types == {_NONE_TYPE}:
        return np.full(len(values), None, dtype=object)
    if value_type == ValueType.DOUBLE and types <= {float, _NONE_TYPE}:
        array = np.array(values, dtype=np.float64)  # None -> NaN
        if bool(np.isnan(array).all()):
            return np.full(len(values), None, dtype=object)  # Feast stores NaN as null: all None
        return array
    if value_type == ValueType.INT64 and types <= {int, _NONE_TYPE}:
        ints = [v for v in values if v is not None] if _NONE_TYPE in types else values
        if min(ints) < _INT64_MIN or max(ints) > _INT64_MAX:
            return None
        return np.array(values, dtype=np.float64 if _NONE_TYPE in types else np.int64)
    if value_type == ValueType.STRING and types <= {str, _NONE_TYPE}:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    return None


def _feast_output(values: Any, value_type: ValueType, read_type: ValueType | None) -> list[Any]:
    """An on-demand output as Feast returns it: stored with its declared type, read back by ``to_dict``."""
    vector = values if isinstance(values, list) else [values]
    protos = python_values_to_proto_values(vector, value_type)
    return [feast_value_type_to_python_type(p, read_type) for p in protos]


# --------------------------------------------------------------------------------------------- entity keys


def _fast_value(value: Any, value_type: ValueType) -> bytes | None:
    """A join key value as ``serialize_entity_key`` (v3) writes it: type, length, bytes; None: not fast."""
    if value_type == ValueType.STRING and type(value) is str:
        raw = value.encode("utf-8")
        return _U32(ValueType.STRING.value) + _U32(len(raw)) + raw
    if value_type == ValueType.INT64 and type(value) is int and -(1 << 63) <= value < (1 << 63):
        return _U32(ValueType.INT64.value) + _U32(8) + _Q(value)
    return None


_FAST_KEY_TYPES: dict[ValueType, type] = {ValueType.STRING: str, ValueType.INT64: int}


def _key_header(join_keys: Sequence[str]) -> bytes:
    """Key count and sorted names, as ``serialize_entity_key`` (v3) writes them before the values."""
    head = [_U32(len(join_keys))]
    for name in join_keys:
        raw = name.encode("utf8")
        head.append(_U32(ValueType.STRING.value) + _U32(len(raw)) + raw)
    return b"".join(head)


def _keys_checked(join_keys: Sequence[str], types: Sequence[ValueType], version: int) -> bool:
    """Whether the fast key layout equals ``serialize_entity_key`` for these keys (probed once per view)."""
    if version < 3:
        return False
    probes: dict[ValueType, list[Any]] = {ValueType.STRING: ["u_1", "é"], ValueType.INT64: [7, -(1 << 40)]}
    if any(t not in probes for t in types):
        return False
    for i in range(2):
        values = [probes[t][i] for t in types]
        protos = [python_values_to_proto_values([v], t)[0] for v, t in zip(values, types, strict=True)]
        reference = serialize_entity_key(
            EntityKeyProto(join_keys=list(join_keys), entity_values=protos), entity_key_serialization_version=version
        )
        fast = _key_header(join_keys) + b"".join(_fast_value(v, t) or b"" for v, t in zip(values, types, strict=True))
        if fast != reference:
            return False
    return True


# --------------------------------------------------------------------------------------------- the plan


@dataclass
class _View:
    table: Any
    features: list[str]  # requested, in Feast's order
    value_types: list[ValueType]  # each feature's declared type (the one to_dict passes)
    join_keys: list[str]  # sorted, as serialize_entity_key orders them
    row_columns: list[str]  # the entity-row column giving each join key
    key_types: list[ValueType]
    fast_keys: bool
    header: bytes


@dataclass
class _OnDemand:
    odfv: Any
    requested: list[str]  # the outputs the service asks for
    excluded: set[str]  # columns of views it does not read (Feast drops them from its input)
    output_types: dict[str, ValueType]
    aliases: list[tuple[str, str]]  # (full name, feature name) of each source feature
    direct: bool | None = None  # transform without transform_dict's checks: None until checked on a request
    wanted: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.wanted = frozenset(self.requested)

    def transform(self, inputs: dict[str, list[Any]]) -> dict[str, Any]:
        """``OnDemandFeatureView.transform_dict(inputs)`` for a batch (python mode, not singleton).

        ``transform_dict`` is typeguard-checked, which costs about a third of a small transformation. The
        same steps run here (both names of every source feature, the udf, ``{**inputs, **outputs}``, the
        added names removed), and the first request of a plan runs both and compares them: any difference
        and this view keeps going through ``transform_dict``.
        """
        if self.direct is False or self.odfv.singleton:
            return self.odfv.transform_dict(inputs)
        prepared = dict(inputs)
        added = []
        for full, name in self.aliases:
            if full in inputs:
                prepared[name] = inputs[full]
                added.append(name)
            elif name in inputs:
                prepared[full] = inputs[name]
                added.append(full)
        out = {**prepared, **self.odfv.feature_transformation.udf(prepared)}
        for name in added:
            out.pop(name, None)
        if self.direct is None:
            reference = self.odfv.transform_dict(inputs)
            self.direct = _same_dicts(out, reference)
            if not self.direct:
                log.warning("%s: direct transformation differs from transform_dict; using transform_dict",
                            self.odfv.name)
                return reference
        return out


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b, strict=True))
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # arrays and other values without a plain truth value
        return False


def _same_dicts(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return list(a) == list(b) and all(_same_value(a[k], b[k]) for k in a)


@dataclass
class _Plan:
    context: tuple  # Feast's cached request context this plan was built from (kept alive for identity)
    key_columns: list[str]  # entity-row columns that are join keys, in row order
    request_columns: list[str]  # request-data columns, in row order
    views: list[_View]
    on_demand: list[_OnDemand]
    keep: frozenset[str]  # the result columns Feast keeps
    feature_types: dict[str, ValueType]  # name -> type, as OnlineResponse gets them
    entity_types: dict[str, ValueType]
    version: int


class Unsupported(Exception):
    """The request is outside the fast path; ``get_online_features`` answers it."""


def _resolve_context(store: FeatureStore, service: FeatureService) -> tuple:
    getter = getattr(feast_utils, "_get_cached_request_context", None)
    if getter is None:
        raise Unsupported("this Feast has no cached request context")
    return getter(store.registry, store.project, service, False)


def _build_plan(store: FeatureStore, context: tuple, columns: tuple[str, ...]) -> _Plan:
    from feast.feature_view import DUMMY_ENTITY_ID

    (
        feature_refs,
        requested_odfvs,
        entity_name_to_join_key_map,
        entity_type_map,
        join_keys_set,
        grouped_refs,
        requested_result_row_names,
        needed_request_data,
        entityless_case,
    ) = context
    if entityless_case:
        raise Unsupported("entity-less feature views")
    key_columns, request_columns = [], []
    for name in columns:
        if name in needed_request_data:
            request_columns.append(name)
        elif name in join_keys_set:
            key_columns.append(name)
        elif name in entity_name_to_join_key_map:
            raise Unsupported("entity names instead of join keys")
    if set(request_columns) != set(needed_request_data):
        raise Unsupported("request data missing")  # Feast raises RequestDataNotFoundInEntityRowsException
    version = store.config.entity_key_serialization_version
    views: list[_View] = []
    for table, requested in grouped_refs:
        if not hasattr(table, "entity_columns") or hasattr(table, "write_to_online_store"):
            raise Unsupported(f"{table.name}: an on-demand view written to the online store")
        table_keys = [entity_name_to_join_key_map[e] for e in table.entities]
        if DUMMY_ENTITY_ID in table_keys:
            raise Unsupported("entity-less feature views")
        alias = {v: k for k, v in table.projection.join_key_map.items()}
        pairs = sorted((alias.get(c, c), c) for c in key_columns if alias.get(c, c) in table_keys)
        if sorted(k for k, _ in pairs) != sorted(table_keys):
            raise Unsupported(f"{table.name}: join keys missing from the entity rows")
        key_types = [entity_type_map.get(c, ValueType.UNKNOWN) for _, c in pairs]
        join_keys = [k for k, _ in pairs]
        types = {f.name: f.dtype.to_value_type() for f in table.features}
        views.append(
            _View(
                table=table,
                features=list(requested),
                value_types=[types[name] for name in requested],
                join_keys=join_keys,
                row_columns=[c for _, c in pairs],
                key_types=key_types,
                fast_keys=_keys_checked(join_keys, key_types, version),
                header=_key_header(join_keys),
            )
        )
    on_demand = _plan_on_demand(feature_refs, requested_odfvs, [v.table for v in views])
    # Types OnlineResponse passes to feast_value_type_to_python_type (the views' requested features).
    feature_types: dict[str, ValueType] = {}
    for view in views:
        for name, value_type in zip(view.features, view.value_types, strict=True):
            feature_types[name] = value_type
    keep = frozenset(requested_result_row_names) | frozenset(key_columns)
    return _Plan(context, key_columns, request_columns, views, on_demand, keep, feature_types,
                 dict(entity_type_map), version)


def _plan_on_demand(feature_refs: list[str], odfvs: list[Any], tables: list[Any]) -> list[_OnDemand]:
    """Each requested on-demand view, its requested outputs and the columns Feast hides from it.

    Mirrors ``feast.utils._augment_response_with_on_demand_transforms``.
    """
    parse = feast_utils._parse_feature_ref
    by_name = {((o.projection.name_alias if o.projection else None) or o.name): o for o in odfvs}
    refs: dict[str, list[str]] = {}
    for ref in feature_refs:
        view_name, _, feature_name = parse(ref)
        if view_name in by_name:
            refs.setdefault(view_name, []).append(feature_name)
    plans = []
    for view_name, requested in refs.items():
        odfv = by_name[view_name]
        if odfv.write_to_online_store:
            raise Unsupported(f"{view_name}: written to the online store")
        if odfv.aggregations or odfv.mode != "python":
            raise Unsupported(f"{view_name}: mode {odfv.mode!r} or aggregations")
        declared = {p.name for p in odfv.source_feature_view_projections.values()}
        excluded: set[str] = set()
        for ref in feature_refs:
            ref_view, _, ref_feature = parse(ref)
            if ref_view in by_name:
                continue
            if ref_view not in declared:
                excluded.add(ref_feature)
                excluded.add(f"{ref_view}__{ref_feature}")
        for other in odfvs:
            for projection in other.source_feature_view_projections.values():
                if projection.name in declared:
                    continue
                for feature in projection.features:
                    excluded.add(feature.name)
                    excluded.add(f"{projection.name}__{feature.name}")
        types: dict[str, ValueType] = {}
        for fld in odfv.schema:
            dtype = fld.dtype
            types[fld.name] = dtype if isinstance(dtype, ValueType) else dtype.to_value_type()
        aliases = [(f"{p.name}__{f.name}", f.name) for p in odfv.source_feature_view_projections.values()
                   for f in p.features]
        plans.append(_OnDemand(odfv, requested, excluded, types, aliases))
    return plans


# --------------------------------------------------------------------------------------------- retrieval


@dataclass
class _Column:
    """Values of one response column: per distinct entity plus, per row, the index of its entity."""

    unique: list[Any]
    index: list[int] | None  # None: one value per row already
    kind: str | None
    unique_array: np.ndarray | None = None  # the frame column of ``unique``, when decoded with NumPy
    take: np.ndarray | None = None  # ``index`` as an array, shared by the columns of a view
    _rows: list[Any] | None = field(default=None, repr=False)

    def rows(self) -> list[Any]:
        if self._rows is None:
            if self.index is None:
                self._rows = self.unique
            elif len(self.unique) == 1:
                self._rows = self.unique * len(self.index)
            else:
                unique = self.unique
                self._rows = [unique[i] for i in self.index]
        return self._rows

    def array(self) -> Any:
        column = self.unique_array
        if column is None:
            if self.kind is None or self.index is None:
                return _column(self.rows(), self.kind)
            column = _column(self.unique, self.kind)
            if isinstance(column, list):
                return _column(self.rows(), None)
        if self.index is None:
            return column
        if column.dtype == object and self.kind not in ("object", "list"):
            return np.array(self.rows(), dtype=object)  # all null
        if self.take is None:
            self.take = np.asarray(self.index, dtype=np.intp)
        return column.take(self.take)


def _decode_columns(
    columns: list[Cells], value_types: list[ValueType], indexes: list[list[int] | None]
) -> list[_Column]:
    """The response columns of the views' features, from their stored cells (one per distinct entity).

    Numeric cells of one type and width are decoded together, one NumPy pass per (type, width) across every
    view's columns; float lists of one length likewise. Everything else, and any group whose bytes are not
    exactly the expected layout (or that has too few cells to be worth it), goes through the per-cell decoders.
    ``indexes``: per column, the row -> distinct entity index of its view (None: one entity per row).
    """
    out: list[_Column | None] = [None] * len(columns)
    groups: dict[tuple[ValueType, int], list[tuple[int, list[bytes]]]] = {}
    for j, (cells, value_type) in enumerate(zip(columns, value_types, strict=True)):
        if value_type in _NUMERIC_TAGS or value_type == ValueType.FLOAT_LIST:
            present = list(filter(None, cells))
            if not present:
                kind = _DECODERS[value_type][1] if value_type in _DECODERS else None
                out[j] = _Column([None] * len(cells), indexes[j], kind)
                continue
            widths = set(map(len, present))
            if len(widths) == 1:
                groups.setdefault((value_type, widths.pop()), []).append((j, present))
    for (value_type, width), members in groups.items():
        present = [cell for _, cells in members for cell in cells]
        if len(present) < VECTOR_MIN_CELLS:
            continue
        python: list[Any] | None
        values: np.ndarray | None = None
        if value_type == ValueType.FLOAT_LIST:
            python = _decode_float_lists(present, width)
        else:
            values = _decode_fixed(present, width, value_type)
            python = None if values is None else values.tolist()
        if python is None:
            continue
        kind = _DECODERS[value_type][1]
        offset = 0
        for j, cells in members:
            m = len(cells)
            column_python = python[offset : offset + m]
            column_values = None if values is None else values[offset : offset + m]
            offset += m
            full = columns[j]
            if m == len(full):
                out[j] = _Column(column_python, indexes[j], kind, column_values)
                continue
            it = iter(column_python)
            rows = [next(it) if cell else None for cell in full]
            array = None
            if column_values is not None:
                array = np.full(len(full), np.nan)
                array[np.fromiter(map(bool, full), dtype=bool, count=len(full))] = column_values
            out[j] = _Column(rows, indexes[j], kind, array)
    for j, column in enumerate(out):
        if column is None:
            value_type = value_types[j]
            decoder = _DECODERS.get(value_type)
            if decoder is None:
                out[j] = _Column(_decode_reference(columns[j], value_type), indexes[j], None)
            else:
                out[j] = _Column(decoder[0](columns[j], value_type), indexes[j], decoder[1])
    return out  # type: ignore[return-value]


_PLAIN_DTYPES = (np.dtype(np.float64), np.dtype(np.int64), np.dtype(object))


def _frame(arrays: dict[str, Any], n: int) -> pd.DataFrame:
    """``pd.DataFrame(arrays, copy=False)``, five times faster when every column is already what it would make.

    The constructor sanitizes each column on its own (0.6 ms for 66 columns of 50 rows). When every column is
    a 1-D float64, int64 or object array of ``n`` rows, and no object column holds values pandas would turn
    into datetimes (its own inference, run here) or strings (``future.infer_string``), the sanitized columns
    are the arrays themselves: the frame is built from them directly (blocks consolidated by dtype; same
    columns, order, dtypes, values and ``RangeIndex``). Anything else takes the constructor.
    """
    try:
        from pandas.core.dtypes.cast import maybe_infer_to_datetimelike

        plain = not pd.get_option("future.infer_string") and all(
            type(a) is np.ndarray and a.ndim == 1 and len(a) == n and a.dtype in _PLAIN_DTYPES
            and (a.dtype != object or maybe_infer_to_datetimelike(a) is a)
            for a in arrays.values()
        )
        if plain:
            return pd.DataFrame._from_arrays(  # type: ignore[attr-defined]
                list(arrays.values()), columns=pd.Index(list(arrays)), index=pd.RangeIndex(n),
                verify_integrity=False,
            )
    except (ImportError, AttributeError, TypeError, ValueError, KeyError):  # another pandas: the constructor
        pass
    return pd.DataFrame(arrays, copy=False)


class OnlineRetriever:
    """Fast online retrieval for one ``FeatureStore``; caches plans per registry snapshot and row layout."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store
        self._services: dict[str, tuple[Any, Any]] = {}
        self._plans: dict[tuple[int, tuple[str, ...]], _Plan] = {}
        self._lock = threading.Lock()

    # ---- service and plan

    def service(self, name: str) -> FeatureService:
        """The feature service, re-read from the registry only when its cache is refreshed (5 ms a read)."""
        registry = self.store.registry
        cached = self._services.get(name)
        if cached is not None and registry.is_cache_valid() and cached[0] == getattr(
            registry, "cached_registry_proto_created", None
        ):
            return cached[1]
        service = registry.get_feature_service(name, self.store.project, allow_cache=True)
        self._services[name] = (getattr(registry, "cached_registry_proto_created", None), service)
        return service

    def _plan(self, service: FeatureService, columns: tuple[str, ...]) -> _Plan:
        context = _resolve_context(self.store, service)
        key = (id(context), columns)
        plan = self._plans.get(key)
        if plan is None or plan.context is not context:
            with self._lock:
                if len(self._plans) > 256:
                    self._plans.clear()
                plan = _build_plan(self.store, context, columns)
                self._plans[key] = plan
        return plan

    # ---- retrieval

    def get_features(
        self,
        service: str | FeatureService,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        request_time: datetime | int | None = None,
    ) -> pd.DataFrame:
        """``store.get_online_features(features=service, entity_rows=rows).to_df()``, computed in bulk.

        ``request_time`` (epoch seconds or an aware datetime), when given and the rows lack it, is added
        to every row as ``request_time_unix`` (the on-demand views' request field).
        """
        feature_service = self.service(service) if isinstance(service, str) else service
        columnar = _columnar(entity_rows)
        if request_time is not None and REQUEST_TIME_FIELD not in columnar:
            seconds = int(request_time.timestamp()) if isinstance(request_time, datetime) else int(request_time)
            n = len(next(iter(columnar.values()))) if columnar else 0
            columnar[REQUEST_TIME_FIELD] = [seconds] * n
        try:
            plan = self._plan(feature_service, tuple(columnar))
            online_store = self.store._get_provider().online_store  # type: ignore[attr-defined]
            reader = getattr(online_store, "read_serialized", None)
            if reader is None:
                raise Unsupported(f"{type(online_store).__name__} has no bulk reader")
            return self._retrieve(plan, columnar, reader)
        except Unsupported as reason:
            log.debug("online retrieval through get_online_features: %s", reason)
            return self._fallback(feature_service, columnar)

    def _fallback(self, service: FeatureService, columnar: dict[str, list[Any]]) -> pd.DataFrame:
        return self.store.get_online_features(features=service, entity_rows=columnar).to_df()

    def _retrieve(self, plan: _Plan, columnar: dict[str, list[Any]], reader: Any) -> pd.DataFrame:
        lengths = {len(v) for v in columnar.values()}
        if len(lengths) != 1:
            raise Unsupported("entity rows of different lengths")  # Feast raises its own error
        n = lengths.pop()
        if n == 0:
            raise Unsupported("no entity rows")
        response: list[tuple[str, _Column]] = []
        for name in plan.key_columns:
            response.append((name, self._request_column(columnar[name], plan.entity_types.get(name),
                                                        plan.feature_types.get(name))))
        for name in plan.request_columns:
            response.append((name, self._request_column(columnar[name], None, plan.feature_types.get(name))))

        reads: list[CellRead] = []
        indexes: list[list[int] | None] = []
        distinct: dict[tuple, Any] = {}
        for view in plan.views:
            keys, index = self._entity_keys(view, columnar, n, plan.version, distinct)
            reads.append(CellRead(view.table, keys, view.features))
            # One row per entity in row order (the candidates' own views): the decoded values are the rows.
            indexes.append(None if len(keys) == n and index == list(range(n)) else index)
        results = reader(self.store.config, reads)
        all_cells: list[Cells] = []
        all_types: list[ValueType] = []
        all_indexes: list[list[int] | None] = []
        for view, view_index, columns in zip(plan.views, indexes, results, strict=True):
            all_cells.extend(columns)
            all_types.extend(view.value_types)
            all_indexes.extend([view_index] * len(columns))
        decoded = iter(_decode_columns(all_cells, all_types, all_indexes))
        for view, view_index in zip(plan.views, indexes, strict=True):
            view_columns = [next(decoded) for _ in view.features]
            if view_index is not None:
                take = np.asarray(view_index, dtype=np.intp)
                for column in view_columns:
                    column.take = take
            response.extend(zip(view.features, view_columns, strict=True))

        # The frame's columns are built before the on-demand views run, so that they see their own copies.
        frame: dict[str, Any] = {}
        for name, column in response:
            if name in plan.keep:
                frame[name] = column  # a later column of the same name replaces an earlier one in place
        arrays = {name: column.array() for name, column in frame.items()}
        if plan.on_demand:
            # OnlineResponse.to_dict: a later column of the same name replaces an earlier one in place.
            inputs: dict[str, list[Any]] = {}
            for name, column in response:
                inputs[name] = column.rows()
            for odfv_plan in plan.on_demand:
                odfv_input = {k: v for k, v in inputs.items() if k not in odfv_plan.excluded}
                transformed = odfv_plan.transform(odfv_input)
                wanted = odfv_plan.wanted
                for name in transformed:
                    if name not in wanted or name not in plan.keep:
                        continue
                    value_type = odfv_plan.output_types.get(name, ValueType.UNKNOWN)
                    read_type = plan.feature_types.get(name)
                    array = _output_column(transformed[name], value_type, read_type)
                    # None: Feast's own conversion, and pandas' inference of its result.
                    arrays[name] = array if array is not None else _feast_output(transformed[name], value_type,
                                                                                 read_type)
        return _frame(arrays, n)

    def _request_column(
        self, values: list[Any], entity_type: ValueType | None, read_type: ValueType | None
    ) -> _Column:
        """A join key or request field as the response carries it: converted to a proto and back."""
        plain = (None, ValueType.UNKNOWN)
        if entity_type in (*plain, ValueType.STRING) and read_type in (*plain, ValueType.STRING) and all(
            type(v) is str for v in values
        ):
            return _Column(values, None, "object")
        if entity_type in (*plain, ValueType.INT64) and read_type in (*plain, ValueType.INT64) and all(
            type(v) is int and -(1 << 63) <= v < (1 << 63) for v in values
        ):
            return _Column(values, None, "int")
        protos = python_values_to_proto_values(values, entity_type or ValueType.UNKNOWN)
        return _Column([feast_value_type_to_python_type(p, read_type) for p in protos], None, None)

    def _entity_keys(
        self, view: _View, columnar: dict[str, list[Any]], n: int, version: int, distinct: dict[tuple, Any]
    ) -> tuple[list[bytes], list[int]]:
        """Distinct serialized entity keys of ``view`` and, per row, the index of its key.

        ``distinct`` caches, per (column, type), the column's distinct values, each row's index among them
        and their encoded bytes (None where a value is not fast), for the views sharing a column.
        """
        if view.fast_keys:
            cached_parts = []
            for column, value_type in zip(view.row_columns, view.key_types, strict=True):
                cached = distinct.get((column, value_type))
                if cached is None:
                    cached = distinct[(column, value_type)] = _distinct_encoded(columnar[column], value_type)
                cached_parts.append(cached)
            if all(encoded is not None for _, _, encoded in cached_parts):
                parts = cast(list[tuple[list[Any], list[int], list[bytes]]], cached_parts)
                header = view.header
                if len(parts) == 1:
                    _, index, encoded = parts[0]
                    return [header + e for e in encoded], index
                varying = [j for j, p in enumerate(parts) if len(p[0]) > 1]
                if len(varying) <= 1:  # one task (or project, reporter) and many candidates: no pairs to find
                    at = varying[0] if varying else 0
                    before = b"".join(p[2][0] for p in parts[:at])
                    after = b"".join(p[2][0] for p in parts[at + 1 :])
                    return [header + before + e + after for e in parts[at][2]], parts[at][1]
                positions: dict[tuple[int, ...], int] = {}
                index = [positions.setdefault(t, len(positions)) for t in zip(*(p[1] for p in parts), strict=True)]
                keys = [header + b"".join(p[2][i] for p, i in zip(parts, t, strict=True)) for t in positions]
                return keys, index
        protos = [python_values_to_proto_values(columnar[c], t) for c, t in zip(view.row_columns,
                                                                                 view.key_types, strict=True)]
        serialized = [
            serialize_entity_key(
                EntityKeyProto(join_keys=view.join_keys, entity_values=[p[i] for p in protos]),
                entity_key_serialization_version=version,
            )
            for i in range(n)
        ]
        by_key: dict[bytes, int] = {}
        index = [by_key.setdefault(k, len(by_key)) for k in serialized]
        return list(by_key), index


def _distinct_encoded(values: list[Any], value_type: ValueType) -> tuple[list[Any], list[int], list[bytes] | None]:
    """Distinct values (first-seen order), each row's index among them, and their fast key encoding.

    Fast only when every value has the key's exact Python type (``str`` or ``int``): anything else (and
    ``1 == 1.0 == True``, which a dict would merge) is serialized by Feast's converters.
    """
    python_type = _FAST_KEY_TYPES.get(value_type)
    if python_type is None or not all(type(v) is python_type for v in values):
        return values, list(range(len(values))), None
    positions: dict[Any, int] = {}
    index = [positions.setdefault(v, len(positions)) for v in values]
    uniques = list(positions)
    if value_type == ValueType.STRING:
        head = _U32(ValueType.STRING.value)
        return uniques, index, [head + _U32(len(raw)) + raw for raw in (v.encode("utf-8") for v in uniques)]
    encoded = [_fast_value(v, value_type) for v in uniques]
    return uniques, index, None if None in encoded else encoded  # type: ignore[return-value]


def _columnar(entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
    if isinstance(entity_rows, Mapping):
        return {k: list(v) for k, v in entity_rows.items()}
    rows = list(entity_rows)
    if not rows:
        return {}
    names = list(rows[0])
    columnar: dict[str, list[Any]] = {k: [] for k in names}
    for row in rows:
        if len(row) != len(names):
            raise ValueError("All entity_rows must have the same keys.")
        for k, v in row.items():
            try:
                columnar[k].append(v)
            except KeyError as e:
                raise ValueError("All entity_rows must have the same keys.") from e
    return columnar


_RETRIEVERS: weakref.WeakKeyDictionary[Any, OnlineRetriever] = weakref.WeakKeyDictionary()
_RETRIEVERS_LOCK = threading.Lock()


def retriever_for(store: FeatureStore) -> OnlineRetriever:
    """The ``OnlineRetriever`` of ``store`` (one per store object, kept as long as the store lives)."""
    retriever = _RETRIEVERS.get(store)
    if retriever is None:
        with _RETRIEVERS_LOCK:
            retriever = _RETRIEVERS.get(store)
            if retriever is None:
                retriever = OnlineRetriever(store)
                _RETRIEVERS[store] = retriever
    return retriever


def get_service_features(
    store: FeatureStore,
    service: str | FeatureService,
    entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    request_time: datetime | int | None = None,
) -> pd.DataFrame:
    """Online features of ``service`` for ``entity_rows``: the frame ``get_online_features(...).to_df()``
    returns (same columns in the same order, same values and dtypes), read and computed in bulk."""
    return retriever_for(store).get_features(service, entity_rows, request_time)


__all__ = ["CellRead", "OnlineRetriever", "decode_cells", "get_service_features", "reference_value",
           "retriever_for"]
