"""The lake: where committed event data lives, and the only sanctioned way to read it.

Layout (``<lake>`` is ``Settings.lake_uri``, local path or ``s3://``)::

    <lake>/events/<event_type>/dt=<YYYY-MM-DD>/part-<YYYYMMDDTHH>-<token>.parquet
        typed event rows, partitioned by the UTC date of ``occurred_at``; the file name
        carries the ingest hour that wrote it and that run's commit token
    <lake>/_index/ingest_events/hour=<YYYYMMDDTHH>/ids-<token>.parquet
        the event ids an ingest hour committed (dedupe lookback of later hours)
    <lake>/_manifests/ingest_events/<YYYYMMDDTHH>.json
        one manifest per ingest hour; writing it is the hour's commit point
    <lake>/state/<name>/base.parquet, <lake>/state/<name>/deltas/<YYYYMMDDTHH>.parquet
    <lake>/state/<name>/deltas/<YYYYMMDDTHH>-<YYYYMMDDTHH>.parquet
        current-state tables (``events.STATE_SCHEMAS``): a compacted base, runs of hourly
        deltas merged into one file each, and one delta per ingest hour since; ``read_state``
        merges them

A data file is *committed* when the manifest of the hour in its name exists and carries
the same token. Readers here only ever return committed rows, so files of a run that was
killed before its commit, or leftovers a later run has not cleaned up yet, are invisible.

Event tables in the lake have exactly ``events.schema_for(event_type)`` (``lake_schema``).
PII: the ``events.PII_HASHED`` columns (``user_joined.email`` and ``user_joined.name``) keep
their names but hold the keyed hash (HMAC-SHA256 of the value, lowercase hex, 64 chars),
never the raw value; the ``users`` state table carries the same hashes as ``email_hash`` and
``name_hash``. Free text and every other string column is scrubbed of emails and phone
numbers (``[EMAIL]``, ``[PHONE]``) before it is written.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.contracts import events
from maestro_ml.lake.state import merge_states
from maestro_ml.settings import join_uri, to_utc

INGEST_DATASET = "ingest_events"
HOUR_KEY_FORMAT = "%Y%m%dT%H"
_PART_RE = re.compile(r"^part-(?P<hour>\d{8}T\d{2})-(?P<token>[0-9A-Za-z]+)\.parquet$")
_DT_RE = re.compile(r"^dt=(\d{4}-\d{2}-\d{2})$")
_MANIFEST_RE = re.compile(r"^(\d{8}T\d{2})\.json$")
# An hour's delta (<hour>.parquet) or a run of hourly deltas merged into one (<first>-<last>.parquet).
_DELTA_RE = re.compile(r"^\d{8}T\d{2}(-\d{8}T\d{2})?\.parquet$")

# --------------------------------------------------------------------------- hours


def as_hour(value: datetime | str) -> datetime:
    """A UTC ``datetime`` on the hour from a datetime (naive means UTC) or an ISO-8601 string."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        value = datetime.fromisoformat(text)
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime or ISO string, got {type(value).__name__}")
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value.minute or value.second or value.microsecond:
        raise ValueError(f"{value.isoformat()} is not on the hour")
    # A plain datetime (pendulum's DateTime subclasses it) keeps JSON and comparisons boring.
    return datetime(value.year, value.month, value.day, value.hour, tzinfo=UTC)


def hour_key(hour: datetime | str) -> str:
    return as_hour(hour).strftime(HOUR_KEY_FORMAT)


def hour_from_key(key: str) -> datetime:
    return datetime.strptime(key, HOUR_KEY_FORMAT).replace(tzinfo=UTC)


# --------------------------------------------------------------------------- layout


def events_dir(lake_uri: str, event_type: str) -> str:
    return join_uri(lake_uri, "events", event_type)


def data_file_uri(lake_uri: str, event_type: str, dt: date, hour: datetime | str, token: str) -> str:
    return join_uri(events_dir(lake_uri, event_type), f"dt={dt.isoformat()}", f"part-{hour_key(hour)}-{token}.parquet")


def manifests_dir(lake_uri: str) -> str:
    return join_uri(lake_uri, "_manifests", INGEST_DATASET)


def manifest_uri(lake_uri: str, hour: datetime | str) -> str:
    return join_uri(manifests_dir(lake_uri), f"{hour_key(hour)}.json")


def index_dir(lake_uri: str, hour: datetime | str) -> str:
    return join_uri(lake_uri, "_index", INGEST_DATASET, f"hour={hour_key(hour)}")


def index_file_uri(lake_uri: str, hour: datetime | str, token: str) -> str:
    return join_uri(index_dir(lake_uri, hour), f"ids-{token}.parquet")


def state_dir(lake_uri: str, name: str) -> str:
    if name not in events.STATE_SCHEMAS:
        raise KeyError(f"unknown state table {name!r}; known: {sorted(events.STATE_SCHEMAS)}")
    return join_uri(lake_uri, "state", name)


def state_base_uri(lake_uri: str, name: str) -> str:
    return join_uri(state_dir(lake_uri, name), "base.parquet")


def state_delta_uri(lake_uri: str, name: str, hour: datetime | str) -> str:
    return join_uri(state_dir(lake_uri, name), "deltas", f"{hour_key(hour)}.parquet")


def state_delta_run_uri(lake_uri: str, name: str, first: datetime | str, last: datetime | str) -> str:
    """The run file of the hourly deltas of the hours ``first`` to ``last``."""
    return join_uri(state_dir(lake_uri, name), "deltas", f"{hour_key(first)}-{hour_key(last)}.parquet")


def is_delta_run(uri: str) -> bool:
    """Whether a delta file is a merged run of hourly deltas (``<first>-<last>.parquet``), not one hour's."""
    return "-" in posixpath.basename(uri)


def state_delta_uris(lake_uri: str, name: str) -> list[str]:
    """The deltas of a state table not yet compacted into its base (hourly ones and merged runs), by first hour."""
    folder_uri = join_uri(state_dir(lake_uri, name), "deltas")
    local = storage.local_path(folder_uri)
    if local is not None:  # called for every table every hour: no fsspec round trip
        try:
            names = os.listdir(local)
        except FileNotFoundError:
            return []
        return [posixpath.join(local, n) for n in sorted(names) if _DELTA_RE.match(n)]
    fs, folder = storage.filesystem(folder_uri)
    try:
        names = fs.ls(folder, detail=False)  # one listing: cheaper than a glob, called every hour
    except FileNotFoundError:
        return []
    deltas = sorted(path for path in names if _DELTA_RE.match(posixpath.basename(path)))
    return deltas if storage.is_local_fs(fs) else [storage.to_uri(fs, path) for path in deltas]


def parse_part_name(uri: str) -> tuple[str, str] | None:
    """``(hour_key, token)`` from a data file's name, or None when it is not a part file."""
    match = _PART_RE.match(posixpath.basename(uri))
    return (match["hour"], match["token"]) if match else None


# --------------------------------------------------------------------------- schemas


def lake_schema(event_type: str) -> pa.Schema:
    """Schema of ``events/<event_type>`` in the lake: the contract's (PII columns hold hashes)."""
    schema = _LAKE_SCHEMAS.get(event_type)
    if schema is None:  # built once per type (schemas are immutable); unknown types raise as before
        schema = _LAKE_SCHEMAS.setdefault(event_type, events.schema_for(event_type))
    return schema


_LAKE_SCHEMAS: dict[str, pa.Schema] = {}


# --------------------------------------------------------------------------- manifests


def read_manifest(lake_uri: str, hour: datetime | str) -> dict[str, Any] | None:
    """The committed manifest of one ingest hour, or None when that hour was never committed."""
    uri = manifest_uri(lake_uri, hour)
    try:
        data = storage.read_bytes(uri)
    except FileNotFoundError:
        return None
    manifest: dict[str, Any] = json.loads(data)
    return manifest


def list_manifests(
    lake_uri: str, start: datetime | str | None = None, end: datetime | str | None = None
) -> list[dict[str, Any]]:
    """Committed manifests of the ingest hours ``H`` with ``start <= H < end``, oldest first (None: unbounded)."""
    lo = _as_utc(start) if start is not None else None
    hi = _as_utc(end) if end is not None else None
    out: list[dict[str, Any]] = []
    for uri in storage.glob(join_uri(manifests_dir(lake_uri), "*.json")):
        match = _MANIFEST_RE.match(posixpath.basename(uri))
        if not match:
            continue
        hour = hour_from_key(match[1])
        if (lo is not None and hour < lo) or (hi is not None and hour >= hi):
            continue
        manifest = read_manifest(lake_uri, hour)
        if manifest is not None:
            out.append(manifest)
    return out


def committed_hours(lake_uri: str) -> list[datetime]:
    """The ingest hours that have a manifest (committed), oldest first, from the file names alone."""
    hours = []
    for uri in storage.glob(join_uri(manifests_dir(lake_uri), "*.json")):
        match = _MANIFEST_RE.match(posixpath.basename(uri))
        if match:
            hours.append(hour_from_key(match[1]))
    return sorted(hours)


_as_utc = to_utc


# --------------------------------------------------------------------------- events


def committed_event_files(
    lake_uri: str, event_type: str, start: datetime | str | None = None, end: datetime | str | None = None
) -> list[str]:
    """URIs of the committed data files of one event type whose date partition meets ``[start, end)``.

    Lists only the date partitions in range and reads one manifest per ingest hour found
    there, so the cost follows the range asked for, not the lake's history.
    """
    if event_type not in events.EVENT_TYPES:
        raise KeyError(f"unknown event type {event_type!r}")
    fs, root = storage.filesystem(events_dir(lake_uri, event_type))
    if not fs.exists(root):
        return []
    lo = _as_utc(start).date() if start is not None else None
    hi_ts = _as_utc(end) if end is not None else None
    hi = None
    if hi_ts is not None:
        hi = hi_ts.date() if hi_ts.time() != datetime.min.time() else hi_ts.date() - timedelta(days=1)
    partitions: list[tuple[date, str]] = []
    for entry in fs.ls(root, detail=False):
        match = _DT_RE.match(posixpath.basename(entry.rstrip("/")))
        if not match:
            continue
        day = date.fromisoformat(match[1])
        if (lo is None or day >= lo) and (hi is None or day <= hi):
            partitions.append((day, entry))
    tokens: dict[str, str | None] = {}
    files: list[tuple[date, str, str]] = []
    for day, entry in sorted(partitions):
        for path in fs.ls(entry, detail=False):
            parsed = parse_part_name(path)
            if parsed is None:
                continue
            key, token = parsed
            if key not in tokens:
                manifest = read_manifest(lake_uri, hour_from_key(key))
                tokens[key] = None if manifest is None else str(manifest.get("token"))
            if tokens[key] == token:
                files.append((day, key, storage.to_uri(fs, path)))
    return [uri for _, _, uri in sorted(files)]


def read_events(
    lake_uri: str,
    event_type: str,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    columns: list[str] | None = None,
    where: pc.Expression | None = None,
) -> pa.Table:
    """Committed rows of one event type with ``start <= occurred_at < end`` (None: unbounded).

    Rows come in (date partition, ingest hour, landing order); the schema is
    ``lake_schema(event_type)`` (or its ``columns``), also for an empty result. ``where`` is a
    further row filter, applied during the scan.
    """
    schema = lake_schema(event_type)
    files = committed_event_files(lake_uri, event_type, start, end)
    if columns is not None:
        schema = pa.schema([schema.field(name) for name in columns])
    if not files:
        return schema.empty_table()
    fs, _ = storage.filesystem(files[0])
    paths = [storage.filesystem(uri)[1] for uri in files]
    expr = None
    if start is not None:
        expr = pc.field("occurred_at") >= pa.scalar(_as_utc(start), events.TS)
    if end is not None:
        upper = pc.field("occurred_at") < pa.scalar(_as_utc(end), events.TS)
        expr = upper if expr is None else expr & upper
    if where is not None:
        expr = where if expr is None else expr & where
    dataset = ds.dataset(paths, schema=lake_schema(event_type), format="parquet", filesystem=fs)
    table = dataset.to_table(columns=columns, filter=expr)
    return table.cast(schema) if table.schema != schema else table


def read_all_events(
    lake_uri: str, start: datetime | str | None = None, end: datetime | str | None = None
) -> dict[str, pa.Table]:
    """``read_events`` for every event type."""
    return {event_type: read_events(lake_uri, event_type, start, end) for event_type in events.EVENT_TYPES}


# --------------------------------------------------------------------------- state and quarantine


class _StateFiles:
    """State files this process wrote or read, kept while the file on disk is the same one.

    Compacting a table reads its base and every delta; the process that compacts (a backfill, the
    hourly task) usually wrote those deltas itself a moment ago. A cached table is returned only
    while the local file's identity (inode, size, modification time) is unchanged: every write is
    an atomic rename, so a rewritten file is a new inode. Object-store files are always read.
    """

    def __init__(self, max_rows: int = 5_000_000) -> None:
        self._lock = threading.Lock()
        self._tables: OrderedDict[str, tuple[tuple[int, int, int], pa.Table]] = OrderedDict()
        self._rows = 0
        self._max_rows = max_rows

    @staticmethod
    def _identity(path: str) -> tuple[int, int, int] | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def remember(self, uri: str, table: pa.Table) -> None:
        """Keep ``table`` as the content of the local file ``uri`` as it is now (just written)."""
        path = storage.local_path(uri)
        if path is not None:
            self._put(path, self._identity(path), table)

    def _put(self, path: str, identity: tuple[int, int, int] | None, table: pa.Table) -> None:
        if identity is None or table.num_rows > self._max_rows:
            return
        with self._lock:
            self._drop(path)
            self._tables[path] = (identity, table)
            self._rows += table.num_rows
            while self._rows > self._max_rows:
                self._drop(next(iter(self._tables)))

    def _drop(self, path: str) -> None:
        old = self._tables.pop(path, None)
        if old is not None:
            self._rows -= old[1].num_rows

    def read(self, uri: str) -> pa.Table | None:
        """The file's table, or None when it does not exist."""
        path = storage.local_path(uri)
        identity = None
        if path is not None:
            identity = self._identity(path)
            if identity is None:
                return None
            with self._lock:
                hit = self._tables.get(path)
                if hit is not None and hit[0] == identity:
                    self._tables.move_to_end(path)
                    return hit[1]
        fs, fs_path = storage.filesystem(uri)
        try:
            with fs.open(fs_path, "rb") as handle:
                table = pq.read_table(handle)
        except FileNotFoundError:  # compacted away since it was listed: the base has it
            return None
        if path is not None:  # under the identity seen before the read: a file replaced meanwhile is read again
            self._put(path, identity, table)
        return table


STATE_FILES = _StateFiles()


def read_state(lake_uri: str, name: str) -> pa.Table:
    """The current-state table ``name`` (users, teams, projects, tasks), sorted by key; empty when never written.

    Merges the table's base with its deltas not yet compacted (see ``maestro_ml.lake.state``).
    """

    state_dir(lake_uri, name)  # KeyError for an unknown table
    uris = [state_base_uri(lake_uri, name), *state_delta_uris(lake_uri, name)]  # a missing base reads as None
    parts = [table for table in (STATE_FILES.read(uri) for uri in uris) if table is not None]
    return merge_states(name, parts)


def read_quarantine(lake_uri: str, start: datetime | str | None = None, end: datetime | str | None = None) -> pa.Table:
    """Quarantined lines of the committed ingest hours in ``[start, end)``."""
    tables = []
    for manifest in list_manifests(lake_uri, start, end):
        uri = manifest.get("outputs", {}).get("quarantine")
        if not uri:
            continue
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            tables.append(pq.read_table(handle))
    if not tables:
        return QUARANTINE_SCHEMA.empty_table()
    return pa.concat_tables(tables, promote_options="permissive")


QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source_uri", pa.string(), nullable=False),
        pa.field("line_number", pa.int64(), nullable=False),  # 1-based; 0 when the file could not be read
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string()),
        pa.field("raw_line", pa.string()),
        pa.field("event_id", pa.string()),
        pa.field("event_type", pa.string()),
        pa.field("ingest_hour", events.TS, nullable=False),
    ]
)


def iter_hours(start: datetime | str, end: datetime | str) -> Iterable[datetime]:
    """The hours ``start, start+1h, ... < end``."""
    hour = as_hour(start)
    stop = as_hour(end)
    while hour < stop:
        yield hour
        hour += timedelta(hours=1)
