"""A Feast batch materialization engine: chunked pulls, vectorized encoding, bulk online writes.

Why: the stock ``LocalComputeEngine`` (Feast 0.67's successor of ``LocalMaterializationEngine``) converts
every cell of the window into a ``ValueProto`` in Python before the online store serializes each cell again
and writes it row by row. This engine, selected with
``batch_engine: {type: maestro_ml.feast_ext.engine.MaestroComputeEngine}``, does per feature view:

1. split ``[start, end]`` into chunks of ``window_chunk_hours`` (oldest first), so the offline store never
   holds more than one chunk of events;
2. per chunk, read the latest row per entity through the offline store's public API:
   ``pull_latest_from_table_or_query``, or (``pull: auto`` on the file/Dask store, where it is about 3x
   cheaper and breaks created-timestamp ties like the stock engine) ``pull_all_from_table_or_query`` plus
   the stock dedup rule applied in Arrow. A Parquet ``FileSource`` whose directory holds one file per
   day (``YYYY-MM-DD*.parquet``, as ``build_features`` writes them) is read with Arrow instead, only the
   days of the chunk: the Dask store reads every file of the directory for every chunk, so a two-week
   window over years of history cost hours. Rows and bounds are the Dask store's (``start <= ts <= end``);
   any other layout goes through the offline store;
3. encode ``write_batch_rows`` rows at a time with ``encoding.encode_batch`` (checked against Feast's own
   encoders on every batch, see there);
4. hand each batch to the online store: Maestro stores take it as-is (``online_write_encoded``); any other
   store gets ordinary ``online_write_batch`` proto rows, so the engine works with every Feast online store.

Chunks and batches are written oldest first by one writer per feature view, so the result equals one pull
over the whole window, also for stores that overwrite unconditionally.

Upgrade safety: only documented extension points are used (a ``batch_engine`` type that Feast resolves from
its dotted path and ``<Class>Config``, ``ComputeEngine.materialize``, the ``OfflineStore`` pull methods,
``OnlineStore.online_write_batch``). Views the fast path does not model exactly (transformations,
aggregations, filters, validation, derived or stream views, offline sinks, entity-less views) are handed to
the stock engine unchanged.
"""

from __future__ import annotations

import logging
import posixpath
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from feast import BatchFeatureView, FeatureView, FileSource, RepoConfig
from feast.data_format import ParquetFormat
from feast.feature_view import DUMMY_ENTITY_ID
from feast.infra.common.materialization_job import (
    MaterializationJob,
    MaterializationJobStatus,
    MaterializationTask,
)
from feast.infra.compute_engines.local.compute import LocalComputeEngine, LocalComputeEngineConfig
from feast.infra.offline_stores.dask import DaskOfflineStore
from feast.infra.registry.base_registry import BaseRegistry
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.type_map import python_values_to_proto_values
from feast.value_type import ValueType

from maestro_ml import storage
from maestro_ml.feast_ext.encoding import EPOCH_UTC, EncodedBatch, encode_batch, encode_entity_keys

log = logging.getLogger(__name__)

ENGINE_TYPE = "maestro_ml.feast_ext.engine.MaestroComputeEngine"


class MaestroComputeEngineConfig(LocalComputeEngineConfig):
    """Options under ``batch_engine:`` in ``feature_store.yaml``."""

    type: str = ENGINE_TYPE  # type: ignore[assignment]

    window_chunk_hours: float = 168.0
    """Materialization windows longer than this are pulled in chunks of this size, oldest first (0: never)."""

    read_days: bool = True
    """With ``pull: all``, read a ``FileSource`` directory with one file per day directly, only the chunk's days
    (see ``day_files``); False: always through the offline store."""

    write_batch_rows: int = 50_000
    """Rows encoded and written at a time; bounds the memory of the encoded copy."""

    pull: Literal["auto", "latest", "all"] = "auto"
    """How a chunk is read: ``latest`` asks the offline store for the latest row per entity
    (``pull_latest_from_table_or_query``, best for SQL warehouses); ``all`` reads the chunk's rows with
    ``pull_all_from_table_or_query`` and keeps the latest per entity in Arrow, like the stock engine's dedup
    (latest event timestamp, then latest created timestamp). ``auto`` picks ``all`` for the file (Dask)
    offline store, whose ``pull_latest`` sorts through Dask at about 3x the cost, and ``latest`` otherwise."""


@runtime_checkable
class EncodedBatchWriter(Protocol):
    """What a Maestro online store adds to Feast's ``OnlineStore`` interface."""

    def online_write_encoded(self, config: RepoConfig, table: FeatureView, batch: EncodedBatch) -> int: ...


@dataclass(frozen=True)
class ViewRun:
    """What one feature view's materialization did, for ``materialize_window`` and logs."""

    view: str
    rows: int | None
    chunks: int
    seconds: float
    path: str  # "bulk" (Maestro store), "proto" (any other store), "stock" (handed to the stock engine)


_RUNS: dict[tuple[str, str], ViewRun] = {}
_RUNS_LOCK = threading.Lock()


def pop_view_run(project: str, view: str) -> ViewRun | None:
    """The last run this process recorded for ``view``, removed so a later call cannot see it twice."""
    with _RUNS_LOCK:
        return _RUNS.pop((project, view), None)


def _record(project: str, run: ViewRun) -> None:
    with _RUNS_LOCK:
        _RUNS[(project, run.view)] = run


@dataclass
class MaestroMaterializationJob(MaterializationJob):
    """A finished in-process job, shaped like the stock local job."""

    task: MaterializationTask
    _job_id: str
    _status: MaterializationJobStatus
    _error: BaseException | None = None

    def status(self) -> MaterializationJobStatus:
        return self._status

    def error(self) -> BaseException | None:
        return self._error

    def should_be_retried(self) -> bool:
        return False

    def job_id(self) -> str:
        return self._job_id

    def url(self) -> str | None:
        return None


def window_chunks(start: datetime, end: datetime, chunk: timedelta | None) -> list[tuple[datetime, datetime]]:
    """``[start, end]`` cut into consecutive chunks, oldest first; chunks share their boundary instant.

    Offline stores differ on whether the end bound is inclusive, so chunks overlap at the boundary rather
    than risk a gap; a row on a boundary is written by both chunks, and the later write is the same or newer.
    """
    if chunk is None or chunk <= timedelta(0) or end - start <= chunk:
        return [(start, end)]
    out = []
    cursor = start
    while cursor < end:
        nxt = min(cursor + chunk, end)
        out.append((cursor, nxt))
        cursor = nxt
    return out


class MaestroComputeEngine(LocalComputeEngine):
    """``LocalComputeEngine`` with a bulk path for plain batch feature views."""

    def __init__(self, *, repo_config: RepoConfig, offline_store: Any, online_store: Any, **kwargs: Any) -> None:
        # Feast passes the yaml's batch_engine mapping as keyword arguments; unknown keys are errors.
        self.options = MaestroComputeEngineConfig(**kwargs)
        super().__init__(
            repo_config=repo_config,
            offline_store=offline_store,
            online_store=online_store,
            backend=self.options.backend,
        )

    def materialize(  # type: ignore[override]
        self,
        registry: BaseRegistry,
        tasks: MaterializationTask | list[MaterializationTask],
        **kwargs: Any,
    ) -> list[MaterializationJob]:
        """Materialize each task with the bulk path when it applies, else with the stock engine."""
        if isinstance(tasks, MaterializationTask):
            tasks = [tasks]
        jobs: list[MaterializationJob] = []
        for task in tasks:
            reason = self.stock_reason(task)
            if reason is None:
                jobs.append(self._materialize_bulk(registry, task))
                continue
            log.info("feature view %s: stock engine (%s)", task.feature_view.name, reason)
            started = time.perf_counter()
            stock_jobs = super().materialize(registry, [task], **kwargs)
            _record(task.project, ViewRun(task.feature_view.name, None, 1, time.perf_counter() - started, "stock"))
            jobs.extend(stock_jobs)
        return jobs

    def stock_reason(self, task: MaterializationTask) -> str | None:
        """Why ``task`` must go to the stock engine, or None when the bulk path reproduces it exactly."""
        fv = task.feature_view
        checks = [
            (type(fv) not in (FeatureView, BatchFeatureView), f"{type(fv).__name__} is not a plain feature view"),
            (fv.batch_source is None, "no batch source"),
            (getattr(fv, "stream_source", None) is not None, "stream/push source"),
            (bool(getattr(fv, "source_views", None)), "derived from other views"),
            (bool(getattr(fv, "feature_transformation", None)), "has a transformation"),
            (bool(getattr(fv, "aggregations", None)), "has aggregations"),
            (bool(getattr(fv, "filter", None)), "has a filter"),
            (bool(getattr(fv, "enable_validation", False)), "validation enabled"),
            (bool(getattr(fv, "offline", False)), "writes to the offline store too"),
            (not fv.online, "online is disabled"),
            (not task.only_latest, "not latest-only"),
            (task.disable_event_timestamp, "disable_event_timestamp"),
            (not fv.entity_columns or any(c.name == DUMMY_ENTITY_ID for c in fv.entity_columns), "entity-less view"),
        ]
        for failed, reason in checks:
            if failed:
                return reason
        return None

    def _materialize_bulk(self, registry: BaseRegistry, task: MaterializationTask) -> MaterializationJob:
        fv = task.feature_view
        job_id = f"{fv.name}-{task.start_time}-{task.end_time}"
        started = time.perf_counter()
        try:
            rows, chunks = self._run_view(task)
        except Exception as exc:  # the provider re-raises errors carried by the job, as with the stock engine
            log.exception("bulk materialization of %s failed", fv.name)
            return MaestroMaterializationJob(task, job_id, MaterializationJobStatus.ERROR, exc)
        path = "bulk" if isinstance(self.online_store, EncodedBatchWriter) else "proto"
        run = ViewRun(fv.name, rows, chunks, time.perf_counter() - started, path)
        _record(task.project, run)
        log.info("feature view %s: %d rows in %d chunk(s), %.2fs (%s)", fv.name, rows, chunks, run.seconds, path)
        return MaestroMaterializationJob(task, job_id, MaterializationJobStatus.SUCCEEDED)

    def _run_view(self, task: MaterializationTask) -> tuple[int, int]:
        fv = task.feature_view
        source = fv.batch_source
        assert source is not None
        mapping = dict(source.field_mapping or {})
        reverse = {v: k for k, v in mapping.items()}
        join_keys = {c.name: c.dtype.to_value_type() for c in fv.entity_columns}
        features = {f.name: f.dtype.to_value_type() for f in fv.features}
        timestamp_field = source.timestamp_field
        created_field = source.created_timestamp_column or None
        chunk_hours = self.options.window_chunk_hours
        chunk = timedelta(hours=chunk_hours) if chunk_hours and chunk_hours > 0 else None
        rows = 0
        chunks = window_chunks(task.start_time, task.end_time, chunk)
        pull_all = self.pull_strategy() == "all"
        by_day = day_files(source) if pull_all and self.options.read_days else None
        source_columns = [reverse.get(k, k) for k in join_keys] + [
            reverse.get(f, f) for f in features if f not in join_keys]
        source_timestamp = reverse.get(timestamp_field, timestamp_field)
        source_created = reverse.get(created_field, created_field) if created_field else None
        for chunk_start, chunk_end in chunks:
            job: Any = None
            if by_day is not None:
                columns = [*source_columns, source_timestamp, *([source_created] if source_created else [])]
                table = read_days(by_day, columns, source_timestamp, chunk_start, chunk_end)
            else:
                pull = self.offline_store.pull_all_from_table_or_query if pull_all else (
                    self.offline_store.pull_latest_from_table_or_query
                )
                job = pull(
                    config=self.repo_config,
                    data_source=source,
                    join_key_columns=source_columns[: len(join_keys)],
                    feature_name_columns=source_columns[len(join_keys) :],
                    timestamp_field=source_timestamp,
                    created_timestamp_column=source_created,
                    start_date=chunk_start,
                    end_date=chunk_end,
                )
                table = job.to_arrow()
            if mapping:
                table = table.rename_columns([mapping.get(c, c) for c in table.column_names])
            if pull_all:
                table = latest_per_entity(table, list(join_keys), timestamp_field, created_field)
            keys: list[bytes] | None = None
            if table.num_rows and getattr(self.online_store, "prefers_key_order", False):
                table, keys = self._sorted_by_entity_key(table, join_keys)
            size = max(1, self.options.write_batch_rows)
            with OrderedWriter(background=bool(getattr(self.online_store, "background_writes", False))) as writer:
                for offset in range(0, table.num_rows, size):
                    batch = table.slice(offset, size).combine_chunks().to_batches()[0]
                    batch_keys = keys[offset : offset + size] if keys is not None else None
                    encoded = encode_batch(
                        batch,
                        join_keys=join_keys,
                        features=features,
                        timestamp_field=timestamp_field,
                        created_timestamp_column=created_field,
                        entity_key_serialization_version=self.repo_config.entity_key_serialization_version,
                        entity_keys=batch_keys,
                    )
                    writer.submit(self._store, fv, batch, encoded, join_keys)
                    rows += encoded.num_rows
            del table, job, keys
        return rows, len(chunks)

    def pull_strategy(self) -> str:
        """``all`` or ``latest`` (see ``MaestroComputeEngineConfig.pull``)."""
        if self.options.pull != "auto":
            return self.options.pull
        return "all" if isinstance(self.offline_store, DaskOfflineStore) else "latest"

    def _sorted_by_entity_key(self, table: pa.Table, join_keys: dict[str, ValueType]) -> tuple[pa.Table, list[bytes]]:
        """The chunk ordered by serialized entity key, which B-tree stores (SQLite) insert much faster.

        Sorting the whole chunk, not each write batch, keeps successive batches from interleaving in the
        index. The chunk holds one row per entity by now, so no order between rows of an entity is lost.
        """
        columns = {name: table.column(name).combine_chunks() for name in join_keys}
        keys = encode_entity_keys(columns, join_keys, self.repo_config.entity_key_serialization_version)
        order = sorted(range(len(keys)), key=keys.__getitem__)
        return table.take(pa.array(order, type=pa.int64())), [keys[i] for i in order]

    def _store(self, fv: FeatureView, batch: pa.RecordBatch, encoded: EncodedBatch, join_keys: dict[str, ValueType]) -> None:
        if isinstance(self.online_store, EncodedBatchWriter):
            self.online_store.online_write_encoded(self.repo_config, fv, encoded)
        else:
            rows = proto_rows(batch, encoded, join_keys)
            self.online_store.online_write_batch(self.repo_config, fv, rows, progress=None)


class OrderedWriter:
    """Runs a feature view's writes one at a time, in submission order.

    With ``background=True`` (stores whose writes mostly wait on the network, like Redis) each write runs
    in one worker thread while the caller encodes the next batch; at most one batch is in flight, so memory
    stays at two batches, and there is still a single writer. A failed write is raised by the next
    ``submit`` or on exit. SQLite writes stay in the caller's thread: ``sqlite3`` drops the GIL on every
    statement, and handing it back and forth with an encoding thread would make the writer crawl.
    """

    def __init__(self, background: bool) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maestro-feast-writer") if background else None
        self._pending: Future[Any] | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._pool is None:
            fn(*args)
            return
        self._drain()
        self._pending = self._pool.submit(fn, *args)

    def _drain(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def __enter__(self) -> OrderedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._drain()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)


_DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})[^/]*\.parquet$")


def day_files(source: Any) -> list[tuple[date, str]] | None:
    """The files of a ``FileSource`` directory named by day (none while it does not exist), or None when it
    is laid out otherwise.

    Only absolute paths and URIs (a relative one is resolved against the repo by Feast); files whose
    name starts with ``_`` or ``.`` are not data. One file of another name and the source is read whole.
    """
    # The Dask store reads every FileSource as Parquet; a source with its own S3 endpoint or credentials
    # is left to it (this read would not use them).
    if not isinstance(source, FileSource) or not isinstance(source.file_format, ParquetFormat | None):
        return None
    if source.file_options.s3_endpoint_override or source.resolve_credentials():
        return None
    path = source.path
    if "://" not in path and not posixpath.isabs(path):
        return None
    fs, root = storage.filesystem(path)
    try:
        infos = fs.ls(root, detail=True)
    except FileNotFoundError:
        # No file written yet (a view with no rows in any built day). On an object store that is no
        # "folder" at all, and the Dask store fails on it: there is simply nothing to materialize.
        return []
    except NotADirectoryError:
        return None
    found = []
    for info in infos:
        name = posixpath.basename(info["name"].rstrip("/"))
        if name.startswith(("_", ".")):
            continue
        match = _DAY_FILE.match(name)
        if info.get("type") != "file" or match is None:
            return None
        try:
            day = date.fromisoformat(match[1])
        except ValueError:
            return None
        found.append((day, storage.to_uri(fs, info["name"])))
    return sorted(found)


def read_days(
    files: list[tuple[date, str]], columns: list[str], timestamp_field: str, start: datetime, end: datetime
) -> pa.Table:
    """The rows with ``start <= timestamp <= end`` (the Dask store's bounds) of the files of those days only."""
    first, last = utc(start).date(), utc(end).date()
    tables = []
    for day, uri in files:
        if first <= day <= last:
            fs, path = storage.filesystem(uri)
            with fs.open(path, "rb") as handle:
                tables.append(pq.read_table(handle, columns=columns))
    if not tables:
        return pa.table({c: pa.array([], pa.null()) for c in columns})
    table = pa.concat_tables(tables, promote_options="permissive")
    stamps = table.column(timestamp_field)
    lo, hi = utc(start), utc(end)
    if getattr(stamps.type, "tz", None) is None:  # naive timestamps are UTC, as the Dask store reads them
        lo, hi = lo.replace(tzinfo=None), hi.replace(tzinfo=None)
    keep = pc.and_(pc.greater_equal(stamps, pa.scalar(lo, stamps.type)), pc.less_equal(stamps, pa.scalar(hi, stamps.type)))
    return table.filter(keep)


def latest_per_entity(table: pa.Table, join_keys: list[str], timestamp_field: str, created: str | None) -> pa.Table:
    """The latest row per entity: newest event timestamp, then newest created timestamp (the stock dedup)."""
    if table.num_rows < 2:
        return table
    order = [(k, "ascending") for k in join_keys] + [(timestamp_field, "descending")]
    if created:
        order.append((created, "descending"))
    table = table.sort_by(order)
    n = table.num_rows
    same = pa.array(np.ones(n - 1, dtype=bool))
    for key in join_keys:
        column = table.column(key).combine_chunks()
        same = pc.and_(same, pc.fill_null(pc.equal(column.slice(1), column.slice(0, n - 1)), False))
    first = pa.concat_arrays([pa.array([True]), pc.invert(same)])
    return table.filter(first)


def proto_rows(
    batch: pa.RecordBatch, encoded: EncodedBatch, join_keys: dict[str, ValueType]
) -> list[tuple[EntityKeyProto, dict[str, ValueProto], datetime, datetime | None]]:
    """``online_write_batch`` rows for online stores that only speak Feast's proto interface."""
    key_values = {
        name: python_values_to_proto_values(batch.column(name).to_numpy(zero_copy_only=False), value_type)
        for name, value_type in join_keys.items()
    }
    names = list(join_keys)
    cells = [(f.name, f.cells.as_list()) for f in encoded.features]
    created = encoded.created_us.tolist() if encoded.created_us is not None else None
    rows = []
    for i, event_us in enumerate(encoded.event_us.tolist()):
        key = EntityKeyProto(join_keys=names, entity_values=[key_values[k][i] for k in names])
        values = {name: ValueProto.FromString(column[i]) for name, column in cells}
        created_at = EPOCH_UTC + timedelta(microseconds=created[i]) if created is not None else None
        rows.append((key, values, EPOCH_UTC + timedelta(microseconds=event_us), created_at))
    return rows


def utc(value: datetime) -> datetime:
    """``value`` in UTC; naive datetimes are refused because a materialization window must be explicit."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value!r} is naive: pass a timezone-aware (UTC) datetime")
    return value.astimezone(UTC)
