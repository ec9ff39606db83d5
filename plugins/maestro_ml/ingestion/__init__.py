"""Hourly ingestion of landing events into the lake: parse, quarantine, mask, dedupe, commit, state.

Task-sized steps for the DAG (JSON-serialisable dicts in and out, rows staged as Parquet in
the raw zone, ``staging_uri(hour)``)::

    files    = list_hour_files(settings.landing_uri, hour)
    parsed   = parse_hour(files, hour, staging_uri(hour))
    masked   = mask_staged(parsed)
    deduped  = dedupe_staged(masked)
    manifest = commit_hour(deduped)
    summary  = update_state(manifest)

or everything in-process: ``ingest_hour(hour)``, or ``ingest_hours(hours)`` for a catch-up (each
hour still committed on its own, with its own manifest; see its docstring). Readers use :mod:`maestro_ml.lake`.

The manifest (``<lake>/_manifests/ingest_events/<YYYYMMDDTHH>.json``, returned by
``commit_hour`` and ``ingest_hour``) holds ``hour``, ``data_interval``, ``token``,
``files_read``, ``lines_in``, ``rows_valid``, ``rows_duplicate``, ``rows_quarantined``,
``rows_quarantined_by_reason`` (every reason code, zeros included), ``rows_by_type``,
``duplicates`` (within hour / lookback and the lookback hours found), ``pii`` (hashed values
and scrubbed cells per column), ``decode_paths`` (files per path), ``outputs`` (``data``:
``[{event_type, dt, path, rows}]``, ``quarantine``, ``id_index``), ``settings``,
``replaced_token``, ``timings_s``, ``warnings`` and, in the returned dict, ``cleanup``.
``lines_in == rows_valid + rows_duplicate + rows_quarantined`` is checked before committing.

See the docstrings of ``decode`` (parsing and quarantine rules), ``validate`` (reason
precedence), ``pii``, ``dedupe``, ``commit`` (the commit protocol) and ``state`` (the fold).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from maestro_ml.ingestion.commit import ConservationError
from maestro_ml.ingestion.contract import REASONS, Reason
from maestro_ml.ingestion.layout import landing_hour_dir, list_hour_files, staging_uri

if TYPE_CHECKING:
    from maestro_ml.ingestion.steps import (
        commit_hour,
        dedupe_staged,
        ingest_hour,
        ingest_hours,
        mask_staged,
        parse_hour,
        update_state,
    )

# The steps import pandas and Great Expectations: loaded on first use, so that a task importing
# only the light modules of this package (``plan``, ``layout``) starts in a fraction of the time.
_STEPS = ("commit_hour", "dedupe_staged", "ingest_hour", "ingest_hours", "mask_staged", "parse_hour", "update_state")


def __getattr__(name: str) -> Any:
    if name in _STEPS:
        return getattr(importlib.import_module("maestro_ml.ingestion.steps"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "REASONS",
    "ConservationError",
    "Reason",
    "commit_hour",
    "dedupe_staged",
    "ingest_hour",
    "ingest_hours",
    "landing_hour_dir",
    "list_hour_files",
    "mask_staged",
    "parse_hour",
    "staging_uri",
    "update_state",
]
