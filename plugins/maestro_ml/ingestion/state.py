"""Ingestion's side of the state tables: one delta per table and ingest hour, compacted in two levels.

Every ``COMPACT_AFTER`` hourly deltas of a table are merged into one *run* file (a day's worth:
small, so cheap to write), and every ``RUNS_PER_BASE`` runs the runs are merged into the base.
Rewriting the base is the one step whose cost grows with the state (76,000 tasks a month into the
bench preset); doing it once a week instead of once a day took about 3 s off 720 bench hours.

The merge rule itself (which row wins) lives with the lake's readers in ``maestro_ml.lake.state``;
it is order-independent and idempotent, so any grouping of deltas into runs gives the same state.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from maestro_ml import storage
from maestro_ml.contracts import events
from maestro_ml.ingestion.commit import write_parquet
from maestro_ml.lake import (
    STATE_FILES,
    hour_from_key,
    is_delta_run,
    read_state,
    state_base_uri,
    state_delta_run_uri,
    state_delta_uri,
    state_delta_uris,
)
from maestro_ml.lake.state import SOURCES, events_to_state, merge_states

COMPACT_AFTER = 24  # hourly deltas merged into one run
RUNS_PER_BASE = 7  # runs merged into the base


def _write(uri: str, table: pa.Table, compression: str = "zstd") -> None:
    # Atomic, zstd level 1. No dictionary pages: state rows are keyed by unique ids, and without
    # them a large base is both smaller and faster to write and read.
    write_parquet(uri, table, compression=compression, use_dictionary=False)
    STATE_FILES.remember(uri, table)  # the next compaction in this process need not read it back


def merge_hourly_deltas(lake_uri: str, name: str) -> int:
    """Merge a state table's hourly deltas into one run file (atomic), then drop them; returns the deltas merged.

    A kill between the two steps leaves hourly deltas that are also in the run: merging them
    again changes nothing. A re-ingested hour writes a new hourly delta beside the run.
    """
    hourly = [uri for uri in state_delta_uris(lake_uri, name) if not is_delta_run(uri)]
    if not hourly:
        return 0
    parts = [table for table in (STATE_FILES.read(uri) for uri in hourly) if table is not None]
    first, last = (hour_from_key(Path(uri).stem) for uri in (hourly[0], hourly[-1]))
    _write(state_delta_run_uri(lake_uri, name, first, last), merge_states(name, parts))
    for uri in hourly:
        storage.remove(uri)
    return len(hourly)


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
            # Uncompressed: an hourly delta lives a day at most (until its run is merged), and
            # compressing its few hundred rows cost a third of writing it.
            _write(uri, delta, compression="none")
        else:
            storage.remove(uri)  # a re-run of the hour that no longer touches this table
        folded = 0
        deltas = state_delta_uris(lake_uri, name)
        runs = sum(is_delta_run(uri) for uri in deltas)
        if len(deltas) - runs >= COMPACT_AFTER:
            merge_hourly_deltas(lake_uri, name)
            if runs + 1 >= RUNS_PER_BASE:
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
