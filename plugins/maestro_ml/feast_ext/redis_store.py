"""A Redis online store that writes Feast's own hash layout in bulk, keeping stock newer-wins semantics.

Why: stock ``RedisOnlineStore.online_write_batch`` builds one ``HMGET`` and one ``HSET`` (plus ``EXPIRE``)
per entity in Python; packing and parsing those commands with redis-py costs more than Redis itself. This
subclass ships a whole batch of pre-encoded rows (see ``encoding.py``) as one blob to a small Lua script
that, per entity, reads the stored ``_ts:<view>`` timestamp, skips the row unless it is strictly newer
(the stock rule), then ``HSET``s the same fields and applies ``key_ttl_seconds`` with ``EXPIRE`` exactly as
stock does. The check and the write run atomically per entity on the server, which also closes the stock
read-then-write race. Scripts are sent through non-transactional pipelines of ``write_batch_entities``
entities each.

The layout is taken from the stock reader itself: hash field names come from
``_generate_hset_keys_for_features`` and the key rule (serialized entity key + project) is checked against
``_generate_redis_keys_for_entities`` on every batch, so writer and reader agree by construction. Reads,
``update`` and ``teardown`` are inherited.

Select it with ``online_store: type: maestro_ml.feast_ext.redis_store.MaestroRedisOnlineStore``. Redis Cluster,
``use_lua: false``, event times before 1970 and batches with a few very large cells use chunked pipelines of
``HGET`` then ``HSET``/``EXPIRE`` (the stock algorithm, without per-row proto work) instead of the script.

Bulk reads: ``read_serialized`` returns the stored cells of several views for serialized entity keys, with
the stock reader's keys and hash fields, without building protos (``maestro_ml.feast_ext.online`` reads
through it). One read-only Lua script runs every ``HMGET`` on the server and returns all cells as one string
(4-byte lengths, then the bytes): redis-py without hiredis packs and parses each command and each reply cell
in Python, which for one request of 50 candidates (about 250 ``HMGET``s, 2,000 cells) took longer than
everything else. With hiredis (which parses replies in C) the script answers one flat array of cells instead,
which reads faster than unpacking the string. Redis Cluster, the GLIDE client, ``use_lua: false`` and very large reads use one pipeline of
``HMGET``s through the stock ``_read_hash_fields`` instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal

import numpy as np
from feast import FeatureView, RepoConfig
from feast.infra.key_encoding_utils import deserialize_entity_key
from feast.infra.online_stores.helpers import compute_versioned_name
from feast.infra.online_stores.redis import (
    RedisClient,
    RedisOnlineStore,
    RedisOnlineStoreConfig,
    RedisType,
    _versioned_fv_name,
)
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from google.protobuf.timestamp_pb2 import Timestamp

from maestro_ml.feast_ext.encoding import CellColumn, EncodedBatch, encode_proto_rows, redis_timestamps

log = logging.getLogger(__name__)

STORE_TYPE = "maestro_ml.feast_ext.redis_store.MaestroRedisOnlineStore"
# Lua 5.1 allows about 250 registers per function: unrolled HSET calls are generated up to this many features.
UNROLLED_MAX_FEATURES = 60
# unpack() is bounded by the Lua C stack (8000 slots); wider views use the pipelined path.
LUA_MAX_FEATURES = 3000
# A bulk read runs as one script (Redis runs nothing else meanwhile) up to this many keys; larger ones pipeline.
READ_SCRIPT_MAX_KEYS = 5000

_READ_LUA = r"""
-- KEYS: the entity keys of every read, in order. ARGV: the number of reads, then per read its key count,
-- its field count and its fields. Returns one string: a 4-byte little-endian length per cell (-1: no value),
-- read by read, key by key, field by field, then the bytes of the cells that have one, in the same order.
-- Lengths are packed per key (one struct.pack call per key, not per cell).
local spack, call = struct.pack, redis.call
local lengths, cells, nl, nc = {}, {}, 0, 0
local k, a = 1, 2
for r = 1, tonumber(ARGV[1]) do
  local nk, nf = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local fields, sizes = {}, {}
  for j = 1, nf do fields[j] = ARGV[a + 1 + j] end
  a = a + 2 + nf
  local fmt = '<' .. string.rep('i4', nf)
  for i = 1, nk do
    local values = call('HMGET', KEYS[k], unpack(fields))
    k = k + 1
    for j = 1, nf do
      local v = values[j]
      if v then
        sizes[j] = #v
        nc = nc + 1
        cells[nc] = v
      else
        sizes[j] = -1
      end
    end
    nl = nl + 1
    lengths[nl] = spack(fmt, unpack(sizes, 1, nf))
  end
end
return table.concat(lengths) .. table.concat(cells)
"""

_READ_LUA_ARRAY = r"""
-- The same reads as _READ_LUA, answered as one flat array of cells (nil: no value), read by read, key by
-- key, field by field: what the client reads fastest when its replies are parsed in C (hiredis).
local call, out, n = redis.call, {}, 0
local k, a = 1, 2
for r = 1, tonumber(ARGV[1]) do
  local nk, nf = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local fields = {}
  for j = 1, nf do fields[j] = ARGV[a + 1 + j] end
  a = a + 2 + nf
  for i = 1, nk do
    local values = call('HMGET', KEYS[k], unpack(fields))
    k = k + 1
    for j = 1, nf do
      n = n + 1
      out[n] = values[j]
    end
  end
end
return out
"""


def _parses_in_c(client: Any) -> bool:
    """Whether ``client`` parses replies with hiredis and returns bytes (then many small cells are cheap)."""
    try:
        from redis._parsers import _HiredisParser
        from redis.connection import DefaultParser
    except ImportError:  # another redis-py layout: the single-string reply, which any parser reads fast
        return False
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    if not isinstance(kwargs, dict) or kwargs.get("decode_responses") or kwargs.get("protocol") not in (None, 2, "2"):
        return False
    parser = kwargs.get("parser_class", DefaultParser)
    return isinstance(parser, type) and issubclass(parser, _HiredisParser)


class MaestroRedisOnlineStoreConfig(RedisOnlineStoreConfig):
    """``RedisOnlineStoreConfig`` plus the bulk writer's options."""

    type: Literal["maestro_ml.feast_ext.redis_store.MaestroRedisOnlineStore"] = STORE_TYPE  # type: ignore[assignment]

    write_batch_entities: int = 2000
    """Entities per Lua call (or per pipeline round in the fallback path)."""

    use_lua: bool = True
    """Use the server-side check-and-write script; false uses pipelined HGET then HSET/EXPIRE."""


_LUA_HEAD = r"""
-- KEYS: redis keys of the entities, in row order.
-- ARGV: 1 ts field, 2 ttl seconds (0: none), 3 '1' to keep newer stored rows, 4 record width, 5 records blob,
--       then per feature: hash field names, 0-based offsets in a record, widths (-1: length-prefixed cell).
-- A record is the timestamp cell then one cell per feature. A length-prefixed cell is a 4-byte big-endian
-- length then the bytes; a column whose cells all have the same width in this batch is stored bare.
local sbyte, ssub, call = string.byte, string.sub, redis.call
local ts_field, ttl, check = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local recw, blob = tonumber(ARGV[4]), ARGV[5]
local nf = (#ARGV - 5) / 3
local F, O, W, E = {}, {}, {}, {}
for j = 1, nf do
  F[j] = ARGV[5 + j]; O[j] = tonumber(ARGV[5 + nf + j]); W[j] = tonumber(ARGV[5 + 2 * nf + j])
  E[j] = O[j] + W[j] - 1
end
local function cell(p)
  local a, b, c, d = sbyte(blob, p, p + 3)
  return ssub(blob, p + 4, p + 3 + ((a * 256 + b) * 256 + c) * 256 + d)
end
local function decode_ts(s)  -- google.protobuf.Timestamp: field 1 seconds, field 2 nanos (varints)
  local secs, nanos, pos, n = 0, 0, 1, #s
  while pos <= n do
    local tag = sbyte(s, pos); pos = pos + 1
    local v, mult, b = 0, 1, 0
    repeat
      b = sbyte(s, pos); pos = pos + 1
      v = v + (b % 128) * mult; mult = mult * 128
    until b < 128
    if v >= 9223372036854775808 then v = v - 18446744073709551616 end
    if tag == 8 then secs = v elseif tag == 16 then nanos = v end
  end
  return secs, nanos
end
local written, base = 0, 1
"""

_LUA_LOOP = r"""
for i = 1, #KEYS do
  local key = KEYS[i]
  local ts = cell(base)
  local write = true
  if check then
    local prev = call('HGET', key, ts_field)
    if prev then
      local ps, pn = decode_ts(prev)
      local ns, nn = decode_ts(ts)
      write = ns > ps or (ns == ps and nn > pn)
    end
  end
  if write then
    {hset}
    if ttl > 0 then call('EXPIRE', key, ttl) end
    written = written + 1
  end
  base = base + recw
end
return written
"""


def lua_script(fixed: tuple[bool, ...]) -> str:
    """The check-and-write script for a batch layout: per feature, whether its cells are bare fixed-width.

    Up to ``UNROLLED_MAX_FEATURES`` the HSET call is unrolled with each cell read specialised; wider views
    use a loop and ``unpack``.
    """
    if len(fixed) <= UNROLLED_MAX_FEATURES:
        reads = [
            f"ssub(blob, base + O[{j}], base + E[{j}])" if bare else f"cell(base + O[{j}])"
            for j, bare in enumerate(fixed, start=1)
        ]
        args = "".join(f", F[{j}], {read}" for j, read in enumerate(reads, start=1))
        return _LUA_HEAD + _LUA_LOOP.replace("{hset}", f"call('HSET', key, ts_field, ts{args})")
    hset = (
        "local args = {ts_field, ts}\n"
        "    for j = 1, nf do\n"
        "      args[1 + 2 * j] = F[j]\n"
        "      if W[j] >= 0 then args[2 + 2 * j] = ssub(blob, base + O[j], base + E[j])\n"
        "      else args[2 + 2 * j] = cell(base + O[j]) end\n"
        "    end\n"
        "    call('HSET', key, unpack(args))"
    )
    return _LUA_HEAD + _LUA_LOOP.replace("{hset}", hset)


def _records(ts_cells: CellColumn, columns: list[CellColumn]) -> tuple[np.ndarray, list[int], list[int]]:
    """Row-major records: the timestamp cell, then each feature cell (bare when the column is fixed-width).

    Returns the records, each feature's 0-based offset in a record and its width (-1: length-prefixed).
    """
    matrix, lengths = ts_cells.as_matrix()
    parts = [lengths.astype(">u4").view(np.uint8).reshape(len(lengths), 4), matrix]
    width = 4 + matrix.shape[1]
    offsets, widths = [], []
    for column in columns:
        matrix, lengths = column.as_matrix()
        offsets.append(width)
        if len(lengths) and bool((lengths == matrix.shape[1]).all()):
            parts.append(matrix)
            widths.append(matrix.shape[1])
            width += matrix.shape[1]
        else:
            parts.extend([lengths.astype(">u4").view(np.uint8).reshape(len(lengths), 4), matrix])
            widths.append(-1)
            width += 4 + matrix.shape[1]
    return np.ascontiguousarray(np.hstack(parts)), offsets, widths


def _padding_is_small(batch: EncodedBatch) -> bool:
    """Records pad every cell to its column's widest; a few huge cells (long lists, big strings) would blow
    that up, so such batches take the pipelined path instead."""
    real = padded = 0
    for feature in batch.features:
        total, widest = feature.cells.byte_sizes()
        real += total
        padded += widest * batch.num_rows
    return padded <= 4 * real + (16 << 20)


class MaestroRedisOnlineStore(RedisOnlineStore):
    """Stock Redis online store whose writes are batched server-side scripts; reads are inherited."""

    background_writes = True
    """Tells ``MaestroComputeEngine`` a write mostly waits on Redis, so the next batch can be encoded meanwhile."""

    _scripts: dict[tuple[int, tuple[bool, ...]], Any]

    def online_write_batch(
        self,
        config: RepoConfig,
        table: FeatureView,
        data: list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]],
        progress: Callable[[int], Any] | None,
    ) -> None:
        """Proto rows (stock engines, ``push``, ``write_to_online_store``) through the same bulk writer."""
        for batch in encode_proto_rows(data, config.entity_key_serialization_version):
            self.online_write_encoded(config, table, batch)
        if progress:
            progress(len(data))

    def online_write_encoded(self, config: RepoConfig, table: FeatureView, batch: EncodedBatch) -> int:
        """Write an encoded batch with stock newer-wins and TTL semantics; returns entities written."""
        if batch.num_rows == 0:
            return 0
        store_config = config.online_store
        assert isinstance(store_config, RedisOnlineStoreConfig)
        client = self._get_client(store_config)
        fv_name = compute_versioned_name(table, config.registry.enable_online_feature_view_versioning)
        names = [f.name for f in batch.features]
        # The stock helper reads "no names" as "all features", so rows without features ask for a dummy one.
        _, hset_keys = self._generate_hset_keys_for_features(table, list(names) or [""], fv_name_override=fv_name)
        fields, ts_field = (hset_keys[:-1] if names else []), hset_keys[-1]
        keys = self._redis_keys(config, batch.entity_keys)
        ts_cells, seconds, nanos = redis_timestamps(batch.event_us)
        ttl = int(store_config.key_ttl_seconds or 0)
        check = not store_config.skip_dedup
        size = max(1, int(getattr(store_config, "write_batch_entities", 2000)))
        use_lua = (
            getattr(store_config, "use_lua", True)
            and store_config.redis_type != RedisType.redis_cluster
            and len(names) <= LUA_MAX_FEATURES
            and not bool((seconds < 0).any())
            and _padding_is_small(batch)
        )
        if use_lua:
            return self._write_lua(client, keys, ts_cells, batch, fields, ts_field, ttl, check, size)
        return self._write_pipelined(client, keys, ts_cells, seconds, nanos, batch, fields, ts_field, ttl, check, size)

    def read_serialized(self, config: RepoConfig, reads: Sequence[Any]) -> list[list[list[bytes | None]]]:
        """Stored cells of each read (``table``, distinct serialized ``entity_keys``, ``features``).

        Returns, per read, one list per feature of the stored ``ValueProto`` bytes aligned with the keys
        (``None``: no key or no field), as the stock reader's ``HMGET`` replies hold them.
        """
        project = config.project.encode("utf-8")
        keyed: list[tuple[list[bytes], list[Any]]] = []
        for read in reads:
            if not read.features:
                keyed.append(([], []))
                continue
            fields = self._read_fields(config, read.table, tuple(read.features))
            keyed.append((self._read_keys(config, read.entity_keys, project), fields))
        total_keys = sum(len(keys) for keys, _ in keyed)
        store_config = config.online_store
        scripted = (
            getattr(store_config, "use_lua", True)
            and store_config.redis_type != RedisType.redis_cluster
            and getattr(store_config, "client", RedisClient.redis) != RedisClient.glide
            and 0 < total_keys <= READ_SCRIPT_MAX_KEYS
            and all(len(fields) <= LUA_MAX_FEATURES for _, fields in keyed)
        )
        flat = self._read_scripted(config, keyed) if scripted else self._read_pipelined(config, keyed)
        out: list[list[list[bytes | None]]] = []
        offset = 0
        for read, (keys, fields) in zip(reads, keyed, strict=True):
            nf, size = len(fields), len(keys) * len(fields)
            cells = flat[offset : offset + size]
            offset += size
            out.append([cells[j::nf] for j in range(nf)] if nf else [[] for _ in read.features])
        return out

    def _read_keys(self, config: RepoConfig, entity_keys: list[bytes], project: bytes) -> list[bytes]:
        """Redis keys of serialized entity keys: key + project, checked once against the stock rule."""
        if not entity_keys:
            return []
        if getattr(self, "_read_rule_ok", None) is None:
            self._read_rule_ok = self._redis_keys(config, entity_keys[:1]) == [entity_keys[0] + project]
        if self._read_rule_ok:
            return [key + project for key in entity_keys]
        return self._redis_keys(config, entity_keys)

    def _read_scripted(self, config: RepoConfig, keyed: list[tuple[list[bytes], list[Any]]]) -> list[bytes | None]:
        """All cells in one script call: a flat array of cells when hiredis parses the reply (each cell is then
        a C-parsed bulk string, 30% faster than the single string for a request of 50 candidates), else one
        string of lengths and bytes (redis-py's Python parser would take longer than Redis on 2,000 cells)."""
        client = self._get_client(config.online_store)
        if getattr(self, "_read_script", None) is None or getattr(self, "_read_script_client", None) is not client:
            self._read_array = _parses_in_c(client)
            self._read_script = client.register_script(_READ_LUA_ARRAY if self._read_array else _READ_LUA)
            self._read_script_client = client
        keys: list[bytes] = []
        args: list[Any] = [len(keyed)]
        for read_keys, fields in keyed:
            keys.extend(read_keys)
            args.extend((len(read_keys), len(fields), *fields))
        total = sum(len(read_keys) * len(fields) for read_keys, fields in keyed)
        reply = self._read_script(keys=keys, args=args)
        # The reply's own shape decides how it is read (the registered script and the parser could disagree
        # only if one of them changed under a live store, but reading by shape makes that harmless).
        if isinstance(reply, list):
            if len(reply) != total:
                raise RuntimeError(f"bulk read: {total} cells expected, the script answered {len(reply)}")
            cells: list[bytes | None] = reply
            return cells
        blob: bytes = reply
        lengths = np.frombuffer(blob, dtype="<i4", count=total)
        sizes = np.maximum(lengths, 0)
        ends = (np.cumsum(sizes) + 4 * total).tolist()
        return [
            blob[end - size : end] if length >= 0 else None
            for end, size, length in zip(ends, sizes.tolist(), lengths.tolist(), strict=True)
        ]

    def _read_pipelined(self, config: RepoConfig, keyed: list[tuple[list[bytes], list[Any]]]) -> list[bytes | None]:
        commands = [(key, fields) for read_keys, fields in keyed if fields for key in read_keys]
        replies = self._read_hash_fields(config, commands) if commands else []
        return [None if value is None else bytes(value) for reply in replies for value in reply]

    def _read_fields(self, config: RepoConfig, table: FeatureView, features: tuple[str, ...]) -> list[Any]:
        """Hash fields of ``features`` (no timestamp field), as the stock reader names them; cached."""
        if not hasattr(self, "_fields_cache"):
            self._fields_cache: dict[tuple[str, tuple[str, ...]], list[Any]] = {}
        fv_name = _versioned_fv_name(table, config)
        key = (fv_name, features)
        fields = self._fields_cache.get(key)
        if fields is None:
            if len(self._fields_cache) > 1024:
                self._fields_cache.clear()
            _, hset_keys = self._generate_hset_keys_for_features(table, list(features), fv_name_override=fv_name)
            fields = hset_keys[:-1]  # the last one is the timestamp field
            self._fields_cache[key] = fields
        return fields

    def _redis_keys(self, config: RepoConfig, entity_keys: list[bytes]) -> list[bytes]:
        """Serialized entity key + project, checked against the stock reader's own key function."""
        project = config.project.encode("utf-8")
        keys = [k + project for k in entity_keys]
        version = config.entity_key_serialization_version
        probe = self._generate_redis_keys_for_entities(config, [deserialize_entity_key(entity_keys[0], version)])
        if probe == keys[:1]:
            return keys
        log.warning("Redis key layout differs from the stock reader's; deriving keys with its function")
        protos = [deserialize_entity_key(k, version) for k in entity_keys]
        return list(self._generate_redis_keys_for_entities(config, protos))

    def _script(self, client: Any, fixed: tuple[bool, ...]) -> Any:
        if not hasattr(self, "_scripts"):
            self._scripts = {}
        key = (id(client), fixed)
        if key not in self._scripts:
            self._scripts[key] = client.register_script(lua_script(fixed))
        return self._scripts[key]

    def _write_lua(
        self,
        client: Any,
        keys: list[bytes],
        ts_cells: CellColumn,
        batch: EncodedBatch,
        fields: list[Any],
        ts_field: Any,
        ttl: int,
        check: bool,
        size: int,
    ) -> int:
        records, offsets, widths = _records(ts_cells, [f.cells for f in batch.features])
        script = self._script(client, tuple(w >= 0 for w in widths))
        written = 0
        with client.pipeline(transaction=False) as pipe:
            for start in range(0, len(keys), size):
                blob = records[start : start + size].tobytes()
                args = [ts_field, ttl, "1" if check else "0", records.shape[1], blob, *fields, *offsets, *widths]
                script(keys=keys[start : start + size], args=args, client=pipe)
            for result in pipe.execute():
                written += int(result)
        return written

    def _write_pipelined(
        self,
        client: Any,
        keys: list[bytes],
        ts_cells: CellColumn,
        seconds: np.ndarray,
        nanos: np.ndarray,
        batch: EncodedBatch,
        fields: list[Any],
        ts_field: Any,
        ttl: int,
        check: bool,
        size: int,
    ) -> int:
        """Stock algorithm in chunks: read stored timestamps, keep strictly newer rows, HSET + EXPIRE them."""
        ts_list = ts_cells.as_list()
        columns = [f.cells.as_list() for f in batch.features]
        new_nanos = (seconds * 1_000_000_000 + nanos).tolist()
        latest: dict[bytes, int] = {}
        written = 0
        for start in range(0, len(keys), size):
            rows = range(start, min(start + size, len(keys)))
            previous: list[Any] = [None] * len(rows)
            if check:
                with client.pipeline(transaction=False) as pipe:
                    for i in rows:
                        pipe.hget(keys[i], ts_field)
                    previous = pipe.execute()
            with client.pipeline(transaction=False) as pipe:
                for i, prev in zip(rows, previous, strict=True):
                    key = keys[i]
                    if check:
                        seen = max(_timestamp_nanos(prev), latest.get(key, 0))
                        if seen and new_nanos[i] <= seen:
                            continue
                        latest[key] = new_nanos[i]
                    mapping: list[Any] = [ts_field, ts_list[i]]
                    for field_key, column in zip(fields, columns, strict=True):
                        mapping.extend((field_key, column[i]))
                    pipe.execute_command("HSET", key, *mapping)
                    if ttl:
                        pipe.expire(key, ttl)
                    written += 1
                pipe.execute()
        return written


def _timestamp_nanos(value: bytes | None) -> int:
    if not value:
        return 0
    proto = Timestamp()
    proto.ParseFromString(value)
    return int(proto.seconds) * 1_000_000_000 + int(proto.nanos)


__all__ = ["MaestroRedisOnlineStore", "MaestroRedisOnlineStoreConfig", "lua_script"]
