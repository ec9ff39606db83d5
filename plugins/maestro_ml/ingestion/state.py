"""Ingestion's side of the state tables: one delta per table and ingest hour, compacted every ``COMPACT_AFTER``.

The merge rule itself (which row wins) lives with the lake's readers in ``maestro_ml.lake.state``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pyarrow as pa

from maestro_ml import storage
from maestro_ml.contracts import events
from maestro_ml.ingestion.commit import write_parquet
from maestro_ml.lake import STATE_FILES, read_state, state_base_uri, state_delta_uri, state_delta_uris
from maestro_ml.lake.state import SOURCES, events_to_state

COMPACT_AFTER = 24


def _write(uri: str, table: pa.Table) -> None:
    # Atomic, zstd level 1. No dictionary pages: state rows are keyed by unique ids, and without
    # them a large base is both smaller and faster to write and read.
    write_parquet(uri, table, use_dictionary=False)
    STATE_FILES.remember(uri, table)  # the next compaction in this process need not read it back


def compact(lake_uri: str, name: str) -> int:
    """Fold the deltas of a state table into its base (atomic), then drop them; returns the deltas folded.

    A kill between the two steps leaves deltas that are already in the base: merging them
    again changes nothing.
    """
    deltas = state_delta_uris(lake_uri, name)
    if not deltas:
        return 0
    merged = read_state(lake_uri, name)
    _write(state_base_uri(lake_uri, name), merged)
    for uri in deltas:
        storage.remove(uri)
    return len(deltas)


def apply_events(
    lake_uri: str, tables: dict[str, pa.Table], hour: datetime | str, max_workers: int = 2
) -> dict[str, Any]:
    """Write the state delta of one ingest hour for every state table (replacing that hour's earlier delta).

    A delta depends on the hour's events only, so this costs the hour's size, not the state's;
    every ``COMPACT_AFTER`` deltas a table is compacted. Returns ``{"rows_touched": {table: rows},
    "compacted": {table: deltas folded}}``.
    """

    def one(name: str) -> tuple[int, int]:
        relevant = {t: tables[t] for t in SOURCES[name] if t in tables and tables[t].num_rows}
        uri = state_delta_uri(lake_uri, name, hour)
        delta = events_to_state(name, relevant) if relevant else None
        if delta is not None and delta.num_rows:
            _write(uri, delta)
        else:
            storage.remove(uri)  # a re-run of the hour that no longer touches this table
        folded = 0
        if len(state_delta_uris(lake_uri, name)) >= COMPACT_AFTER:
            folded = compact(lake_uri, name)
        return (0 if delta is None else delta.num_rows), folded

    names = list(events.STATE_SCHEMAS)
    if max_workers > 1 and sum(t.num_rows for t in tables.values()) >= 50_000:
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ingest-state") as pool:
            results = list(pool.map(one, names))
    else:
        results = [one(name) for name in names]
    return {
        "rows_touched": {name: r[0] for name, r in zip(names, results, strict=True) if r[0]},
        "compacted": {name: r[1] for name, r in zip(names, results, strict=True) if r[1]},
    }
