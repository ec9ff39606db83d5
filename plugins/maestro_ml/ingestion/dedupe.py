"""Duplicate events: by ``event_id`` within the hour, and against the ids earlier hours committed.

Within the hour the first copy in (file, line) order is kept. Across hours each committed
hour writes an id index (``lake.index_file_uri``) of the ids it kept; an hour checks the
indexes of the ``dedupe_lookback_hours`` hours before it, found through their manifests: the
cost is one manifest and one index per lookback hour, whatever the lake's age. The hour
itself and later hours are never consulted, so re-running an hour gives the same result.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.ingestion.contract import FILE_COL, LINE_COL
from maestro_ml.lake import as_hour, hour_key, manifest_uri, read_manifest

# Lookback ids are matched in batches of about this many, bounding memory for busy lakes.
_LOOKBACK_BATCH = 4_000_000


@dataclass
class DedupeResult:
    keep: np.ndarray  # bool per input row
    within_hour: int
    lookback: int
    lookback_hours_committed: list[str] = field(default_factory=list)
    lookback_hours_missing: list[str] = field(default_factory=list)
    lookback_ids_read: int = 0

    @property
    def duplicates(self) -> int:
        return self.within_hour + self.lookback

    def to_dict(self) -> dict[str, object]:
        return {
            "rows_duplicate": self.duplicates,
            "within_hour": self.within_hour,
            "lookback": self.lookback,
            "lookback_hours_committed": len(self.lookback_hours_committed),
            "lookback_hours_missing": len(self.lookback_hours_missing),
            "lookback_ids_read": self.lookback_ids_read,
        }


def _as_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def first_occurrences(ids: pa.Array | pa.ChunkedArray, order: np.ndarray | None = None) -> np.ndarray:
    """True for the first row of every distinct id; "first" is the smallest ``order`` (default: row order)."""
    array = _as_array(ids)
    n = len(array)
    if n == 0:
        return np.zeros(0, dtype=bool)
    codes = array.dictionary_encode().indices.to_numpy(zero_copy_only=False).astype(np.int64)
    counts = np.bincount(codes)
    if len(counts) == n:  # every id distinct: the common case costs one hash pass
        return np.ones(n, dtype=bool)
    first = np.ones(n, dtype=bool)
    rows = np.flatnonzero(counts[codes] > 1)  # only rows whose id repeats need ordering
    rank = rows if order is None else order[rows]
    ranked = rows[np.lexsort((rank, codes[rows]))]
    grouped = codes[ranked]
    first[ranked[1:][grouped[1:] == grouped[:-1]]] = False
    return first


def lookback_hours(hour: datetime | str, hours: int) -> list[datetime]:
    start = as_hour(hour)
    return [start - timedelta(hours=k) for k in range(1, hours + 1)]


def read_index(uri: str) -> pa.Array:
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        return _as_array(pq.read_table(handle, columns=["event_id"])["event_id"])


class _LookbackCache:
    """What a process that ingests hour after hour (a backfill, the benchmark) would otherwise re-read.

    Id indexes never change (the run token is in their name), so they are kept, up to
    ``max_ids`` ids, least recently used out first. Manifests can be rewritten, so one is
    reused only while its file identity (size, modification time, inode or ETag) is unchanged;
    where the file system gives no inode or ETag it is always read.
    """

    def __init__(self, max_ids: int = 4_000_000) -> None:
        self._lock = threading.Lock()
        self._indexes: OrderedDict[str, pa.Array] = OrderedDict()
        self._manifests: dict[str, tuple[tuple[object, ...], dict[str, Any] | None]] = {}
        self._locations: dict[tuple[str, datetime], tuple[str, Any, str]] = {}
        self._ids = 0
        self._max_ids = max_ids

    def index(self, uri: str) -> pa.Array:
        with self._lock:
            if uri in self._indexes:
                self._indexes.move_to_end(uri)
                return self._indexes[uri]
        ids = read_index(uri)
        with self._lock:
            if uri not in self._indexes and len(ids) <= self._max_ids:
                self._indexes[uri] = ids
                self._ids += len(ids)
                while self._ids > self._max_ids:
                    _, dropped = self._indexes.popitem(last=False)
                    self._ids -= len(dropped)
        return ids

    def _locate(self, lake_uri: str, hour: datetime) -> tuple[str, Any, str]:
        """(URI, file system, path) of an hour's manifest, resolved once per hour (pure string work)."""
        key = (lake_uri, hour)
        found = self._locations.get(key)
        if found is None:
            uri = manifest_uri(lake_uri, hour)
            found = (uri, *storage.filesystem(uri))
            with self._lock:
                if len(self._locations) > 10_000:
                    self._locations.clear()
                self._locations[key] = found
        return found

    def remember_index(self, uri: str, ids: pa.Array | pa.ChunkedArray) -> None:
        """Keep the ids an index file was just written with (a commit), so the next hours need not read it."""
        array = _as_array(ids)
        with self._lock:
            if uri in self._indexes or len(array) > self._max_ids:
                return
            self._indexes[uri] = array
            self._ids += len(array)
            while self._ids > self._max_ids:
                _, dropped = self._indexes.popitem(last=False)
                self._ids -= len(dropped)

    def manifest(self, lake_uri: str, hour: datetime) -> dict[str, Any] | None:
        uri, fs, path = self._locate(lake_uri, hour)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            return None
        identity = info.get("ino") or info.get("ETag") or info.get("etag")
        if not identity:
            return read_manifest(lake_uri, hour)
        signature = (identity, info.get("size"), info.get("mtime") or info.get("LastModified"))
        with self._lock:
            cached = self._manifests.get(uri)
        if cached is not None and cached[0] == signature:
            return cached[1]
        manifest = read_manifest(lake_uri, hour)
        with self._lock:
            if len(self._manifests) > 10_000:
                self._manifests.clear()
            self._manifests[uri] = (signature, manifest)
        return manifest

    def clear(self) -> None:
        with self._lock:
            self._indexes.clear()
            self._manifests.clear()
            self._locations.clear()
            self._ids = 0


LOOKBACK_CACHE = _LookbackCache()


def dedupe(
    ids: pa.Array | pa.ChunkedArray,
    lake_uri: str,
    hour: datetime | str,
    lookback: int,
    order: np.ndarray | None = None,
) -> DedupeResult:
    """Which rows to keep: first copy within the hour and not already committed in the lookback window.

    ``order`` ranks the rows (smaller first, e.g. file and line); default: the rows' own order.
    """
    array = _as_array(ids)
    first = first_occurrences(array, order)
    keep = first.copy()
    seen = np.zeros(len(array), dtype=bool)
    committed: list[str] = []
    missing: list[str] = []
    ids_read = 0
    batch: list[pa.Array] = []
    batch_size = 0

    def flush() -> None:
        # The hour's ids are the (small) hash set and the lookback ids probe it: cheaper than hashing
        # every lookback id into a set each hour. Only the ids that hit are then matched back.
        nonlocal batch, batch_size
        if batch and len(array):
            lookback_ids = pa.chunked_array([b if b.type == pa.string() else b.cast(pa.string()) for b in batch])
            hits = lookback_ids.filter(pc.fill_null(pc.is_in(lookback_ids, value_set=array), False))
            if len(hits):
                value_set = hits.combine_chunks() if hits.num_chunks != 1 else hits.chunk(0)
                seen[:] |= pc.fill_null(pc.is_in(array, value_set=value_set), False).to_numpy(zero_copy_only=False)
        batch, batch_size = [], 0

    if len(array):
        for earlier in lookback_hours(hour, lookback):
            manifest = LOOKBACK_CACHE.manifest(lake_uri, earlier)
            if manifest is None:
                missing.append(hour_key(earlier))
                continue
            committed.append(hour_key(earlier))
            index_uri = manifest.get("outputs", {}).get("id_index")
            if not index_uri:  # the hour kept no rows
                continue
            earlier_ids = LOOKBACK_CACHE.index(index_uri)
            ids_read += len(earlier_ids)
            if len(earlier_ids):
                batch.append(earlier_ids)
                batch_size += len(earlier_ids)
            if batch_size >= _LOOKBACK_BATCH:
                flush()
        flush()
    lookback_dups = int((first & seen).sum())
    keep &= ~seen
    return DedupeResult(
        keep=keep,
        within_hour=int(len(array) - first.sum()),
        lookback=lookback_dups,
        lookback_hours_committed=committed,
        lookback_hours_missing=missing,
        lookback_ids_read=ids_read,
    )


def dedupe_tables(
    tables: dict[str, pa.Table], lake_uri: str, hour: datetime | str, lookback: int
) -> tuple[dict[str, pa.Table], DedupeResult]:
    """``dedupe`` over an hour's per-type tables (with ``_file``/``_line``): ids are unique across types."""
    names = [name for name, table in tables.items() if table.num_rows]
    if not names:
        return {}, dedupe(pa.array([], pa.string()), lake_uri, hour, lookback)
    ids = pa.chunked_array([c for name in names for c in tables[name]["event_id"].chunks], pa.string())
    order = np.concatenate(
        [
            (tables[name][FILE_COL].to_numpy().astype(np.int64) << 32) | tables[name][LINE_COL].to_numpy()
            for name in names
        ]
    )
    result = dedupe(ids, lake_uri, hour, lookback, order=order)
    kept: dict[str, pa.Table] = {}
    offset = 0
    for name in names:
        rows = tables[name].num_rows
        keep = result.keep[offset : offset + rows]
        offset += rows
        if keep.all():
            kept[name] = tables[name]
        elif keep.any():
            kept[name] = tables[name].filter(pa.array(keep))
    return kept, result
