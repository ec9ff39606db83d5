"""Writing an hour to the lake: data, quarantine and id index under a fresh token, then the manifest.

Protocol (atomic and idempotent, whatever point a worker is killed at):

1. every output file is written under a new token, each one atomically (``storage.atomic_open``);
2. the hour's manifest is written atomically: that is the commit point. Readers only trust
   files whose token is the one in their hour's manifest (``lake.committed_event_files``), so
   until this write nothing of the run is visible, and after it all of it is;
3. files of the same hour with another token (an earlier run, a killed attempt) are deleted.
   A failure here is reported, not raised: the commit stands and the next run of the hour
   cleans up again.

An *attempt marker* (``_manifests/ingest_events/_attempts/<hour>``) is written before step 1
and removed after a clean step 3. Finding it at the start of a commit means an earlier attempt
died part-way, and only then are the hour's date partitions listed to find its files; a normal
run only deletes what the previous manifest lists, so cleanup costs the hour, not the lake.

Re-running an hour therefore replaces exactly that hour's output.
"""

from __future__ import annotations

import logging
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.contracts import events
from maestro_ml.ingestion.contract import REASONS
from maestro_ml.ingestion.dedupe import LOOKBACK_CACHE
from maestro_ml.ingestion.layout import new_token, quarantine_dir, quarantine_file_uri
from maestro_ml.lake import (
    INGEST_DATASET,
    as_hour,
    data_file_uri,
    hour_key,
    index_dir,
    index_file_uri,
    lake_schema,
    manifest_uri,
    manifests_dir,
    parse_part_name,
    read_manifest,
)
from maestro_ml.settings import join_uri

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
PARQUET_COMPRESSION = "zstd"
PARQUET_COMPRESSION_LEVEL = 1


class ConservationError(RuntimeError):
    """lines_in != valid + duplicate + quarantined: something was lost or counted twice."""


@dataclass
class HourOutput:
    """Everything an hour produced, ready to commit."""

    hour: datetime
    files: list[str]
    lines_in: int
    tables: dict[str, pa.Table]  # event type -> rows (lake schema, extra columns ignored), masked and deduplicated
    quarantine: pa.Table  # lake.QUARANTINE_SCHEMA
    rows_quarantined_by_reason: dict[str, int]
    duplicates: dict[str, Any]
    pii: dict[str, Any] = field(default_factory=dict)
    decode_paths: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)


# Below this many rows a file is written without dictionary encoding: for the small files of a
# typical hour the dictionary pass costs more time than it saves space. The rows are the same.
DICTIONARY_MIN_ROWS = 10_000
# An hour's files are written by several threads only from this many rows on.
PARALLEL_WRITE_ROWS = 50_000


def encode_parquet(
    table: pa.Table, compression: str = PARQUET_COMPRESSION, use_dictionary: bool | None = None
) -> pa.Buffer:
    """``table`` as the bytes of one Parquet file, encoded in memory (Arrow releases the GIL meanwhile).

    ``use_dictionary`` None: only for tables of ``DICTIONARY_MIN_ROWS`` rows or more.
    """
    level = PARQUET_COMPRESSION_LEVEL if compression == "zstd" else None
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression=compression,
        compression_level=level,
        use_dictionary=table.num_rows >= DICTIONARY_MIN_ROWS if use_dictionary is None else use_dictionary,
    )
    return sink.getvalue()


def write_parquet(
    uri: str, table: pa.Table, compression: str = PARQUET_COMPRESSION, use_dictionary: bool | None = None
) -> None:
    """One Parquet file, written atomically through fsspec (encoded first, then one write)."""
    data = encode_parquet(table, compression, use_dictionary)
    with storage.atomic_open(uri, "wb") as handle:
        handle.write(memoryview(data))


def to_lake_tables(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """Exactly ``lake.lake_schema`` per event type (drops staging columns), contract order of types."""
    out: dict[str, pa.Table] = {}
    for event_type in events.EVENT_TYPES:
        table = tables.get(event_type)
        if table is None or table.num_rows == 0:
            continue
        schema = lake_schema(event_type)
        out[event_type] = pa.Table.from_arrays([table[f.name] for f in schema], schema=schema)
    unknown = set(tables) - set(events.EVENT_TYPES)
    if unknown:
        raise ValueError(f"unvalidated event types reached the commit: {sorted(unknown)}")
    return out


def split_by_date(table: pa.Table) -> list[tuple[date, pa.Table]]:
    """Rows grouped by the UTC date of ``occurred_at`` (order kept within each date)."""
    if table.num_rows == 0:
        return []
    days = pc.cast(pc.cast(table["occurred_at"], pa.timestamp("us")), pa.date32()).combine_chunks()
    as_int = days.cast(pa.int32()).to_numpy(zero_copy_only=False)
    unique = np.unique(as_int)
    if len(unique) == 1:
        return [(date(1970, 1, 1) + timedelta(days=int(unique[0])), table)]
    return [(date(1970, 1, 1) + timedelta(days=int(day)), table.filter(pa.array(as_int == day))) for day in unique]


def check_conservation(lines_in: int, valid: int, duplicate: int, quarantined: int) -> None:
    if lines_in != valid + duplicate + quarantined:
        raise ConservationError(
            f"conservation broken: lines_in={lines_in} but valid={valid} + duplicate={duplicate} "
            f"+ quarantined={quarantined} = {valid + duplicate + quarantined}"
        )


def _window_dates(hour: datetime, allowed_lateness: timedelta, future_tolerance: timedelta) -> list[date]:
    """Dates an hour's rows can land in, with a day of margin each side (settings may have changed)."""
    first = (hour - allowed_lateness - timedelta(days=1)).date()
    last = (hour + timedelta(hours=1) + future_tolerance + timedelta(days=1)).date()
    return [first + timedelta(days=k) for k in range((last - first).days + 1)]


def stale_files(
    lake_uri: str,
    quarantine_uri: str,
    hour: datetime,
    token: str,
    dates: list[date],
    previous: dict[str, Any] | None,
    sweep: bool = True,
) -> list[str]:
    """Files of ``hour`` written under any token but ``token`` (leftovers of earlier runs/attempts).

    The hour's own index and quarantine folders are always listed; the date partitions of the
    event tables only with ``sweep`` (a killed attempt may have left files no manifest names).
    """
    key = hour_key(hour)
    found: set[str] = set()
    marker = f"part-{key}-"  # also matches ".part-...tmp", temporaries of a killed atomic write
    # (file system, folder, whether every file in it belongs to the hour), resolved once per root.
    folders = [(*storage.filesystem(index_dir(lake_uri, hour)), True)]
    folders.append((*storage.filesystem(quarantine_dir(quarantine_uri, hour)), True))
    lake_fs, lake_root = storage.filesystem(lake_uri)
    for event_type in events.EVENT_TYPES if sweep else ():
        type_dir = posixpath.join(lake_root, "events", event_type)
        folders += [(lake_fs, posixpath.join(type_dir, f"dt={day.isoformat()}"), False) for day in dates]
    for fs, path, whole in folders:
        try:
            names = fs.ls(path, detail=False)
        except FileNotFoundError:
            continue
        for name in names:
            if whole or marker in posixpath.basename(name):
                found.add(storage.to_uri(fs, name))
    if previous is not None:
        outputs = previous.get("outputs", {})
        found.update(entry["path"] for entry in outputs.get("data", []))
        found.update(uri for uri in (outputs.get("quarantine"), outputs.get("id_index")) if uri)
    # One entry per file: a listing and a manifest may spell the same file differently (memory:///x, memory://x).
    unique = {posixpath.normpath(storage.filesystem(uri)[1]): uri for uri in sorted(found)}
    stale = []
    for _, uri in sorted(unique.items()):
        name = posixpath.basename(uri)
        parsed = parse_part_name(uri)
        if parsed is not None:
            if parsed[1] != token:
                stale.append(uri)
        elif token not in name:
            stale.append(uri)
    return stale


def commit(
    output: HourOutput,
    *,
    lake_uri: str,
    quarantine_uri: str,
    allowed_lateness: timedelta,
    future_tolerance: timedelta,
    dedupe_lookback_hours: int,
    max_workers: int = 2,
) -> tuple[dict[str, Any], dict[str, pa.Table]]:
    """Write and commit one hour; returns the manifest and the committed tables per event type."""
    hour = as_hour(output.hour)
    token = new_token()
    tables = to_lake_tables(output.tables)
    rows_valid = sum(t.num_rows for t in tables.values())
    rows_duplicate = int(output.duplicates.get("rows_duplicate", 0))
    rows_quarantined = output.quarantine.num_rows
    by_reason = {reason: int(output.rows_quarantined_by_reason.get(reason, 0)) for reason in REASONS}
    if sum(by_reason.values()) != rows_quarantined:
        raise ConservationError(f"quarantine counts {by_reason} do not add up to {rows_quarantined} rows")
    check_conservation(output.lines_in, rows_valid, rows_duplicate, rows_quarantined)

    marker = attempt_marker_uri(lake_uri, hour)
    sweep = storage.exists(marker)  # an earlier attempt of this hour died part-way
    storage.write_bytes_atomic(marker, token.encode())

    writes: list[tuple[str, pa.Table]] = []
    data_entries: list[dict[str, Any]] = []
    for event_type, table in tables.items():
        for day, part in split_by_date(table):
            uri = data_file_uri(lake_uri, event_type, day, hour, token)
            writes.append((uri, part))
            data_entries.append({"event_type": event_type, "dt": day.isoformat(), "path": uri, "rows": part.num_rows})
    index_uri = None
    ids = None
    if rows_valid:
        index_uri = index_file_uri(lake_uri, hour, token)
        ids = pa.chunked_array([c for t in tables.values() for c in t["event_id"].chunks], pa.string())
        writes.append((index_uri, pa.table({"event_id": ids})))
    q_uri = None
    if rows_quarantined:
        q_uri = quarantine_file_uri(quarantine_uri, hour, token)
        writes.append((q_uri, output.quarantine))
    # Biggest first, so the two writers finish together. A typical hour's files are so small that
    # threads would cost more than they save: those are written one after the other.
    writes.sort(key=lambda item: -item[1].num_rows)
    if max_workers > 1 and len(writes) > 1 and sum(t.num_rows for _, t in writes) >= PARALLEL_WRITE_ROWS:
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ingest-write") as pool:
            list(pool.map(lambda item: write_parquet(*item), writes))
    else:
        for uri, table in writes:
            write_parquet(uri, table)

    previous = read_manifest(lake_uri, hour)
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "dataset": INGEST_DATASET,
        "hour": hour.isoformat(),
        "hour_key": hour_key(hour),
        "data_interval": {"start": hour.isoformat(), "end": (hour + timedelta(hours=1)).isoformat()},
        "token": token,
        "committed_at": datetime.now(UTC).isoformat(),
        "files_read": list(output.files),
        "lines_in": output.lines_in,
        "rows_valid": rows_valid,
        "rows_duplicate": rows_duplicate,
        "rows_quarantined": rows_quarantined,
        "rows_quarantined_by_reason": by_reason,
        "rows_by_type": {t: (tables[t].num_rows if t in tables else 0) for t in events.EVENT_TYPES},
        "duplicates": dict(output.duplicates),
        "pii": dict(output.pii),
        "decode_paths": dict(output.decode_paths),
        "outputs": {"data": data_entries, "quarantine": q_uri, "id_index": index_uri},
        "settings": {
            "allowed_lateness_hours": allowed_lateness / timedelta(hours=1),
            "future_tolerance_minutes": future_tolerance / timedelta(minutes=1),
            "dedupe_lookback_hours": dedupe_lookback_hours,
        },
        "replaced_token": previous.get("token") if previous else None,
        "timings_s": {k: round(v, 4) for k, v in output.timings_s.items()},
        "warnings": list(output.warnings),
    }
    write_manifest(lake_uri, hour, manifest)  # <- the commit point
    if index_uri is not None and ids is not None:
        # An index never changes (its name carries the token): later hours of this process use these ids.
        LOOKBACK_CACHE.remember_index(index_uri, ids)

    cleanup: dict[str, Any] = {"removed": 0, "swept": sweep, "errors": []}
    try:
        dates = _window_dates(hour, allowed_lateness, future_tolerance)
        for uri in stale_files(lake_uri, quarantine_uri, hour, token, dates, previous, sweep=sweep):
            storage.remove(uri)
            cleanup["removed"] += 1
        storage.remove(marker)
    except Exception as exc:  # the hour is committed; leftovers are invisible and cleaned next run
        log.warning("ingest %s committed, but cleanup failed: %s", hour_key(hour), exc)
        cleanup["errors"].append(f"{type(exc).__name__}: {exc}")
    manifest["cleanup"] = cleanup
    return manifest, tables


def attempt_marker_uri(lake_uri: str, hour: datetime | str) -> str:
    return join_uri(manifests_dir(lake_uri), "_attempts", hour_key(hour))


def write_manifest(lake_uri: str, hour: datetime, manifest: dict[str, Any]) -> None:
    storage.write_json_atomic(manifest_uri(lake_uri, hour), manifest)
