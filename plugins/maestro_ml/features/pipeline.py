"""The steps of ``build_features`` as plain functions: resolve the window, compute, validate, publish.

``compute_staged`` writes the computed tables to a staging folder private to the run, the
Great Expectations gate reads them from there, and only ``publish_staged`` touches the offline
store, one atomic file per (view, day). A failed gate therefore leaves the offline store exactly
as it was, and downstream (materialization) does not run.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.features.compute import compute_features, load_inputs
from maestro_ml.features.offline import day_start, days_between, to_arrow, write_days
from maestro_ml.features.schema import VIEWS
from maestro_ml.lake import as_hour, list_manifests
from maestro_ml.settings import Settings, get_settings, join_uri, to_utc

log = logging.getLogger(__name__)



def resolve_window(
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    hours: list[str] | None = None,
    settings: Settings | None = None,
) -> dict[str, str]:
    """The UTC days to (re)build, as ``{"start", "end"}`` ISO strings on day boundaries.

    An explicit ``start``/``end`` (manual runs) wins. Otherwise ``hours`` are the ingest hours that
    triggered the run (asset events): their days are rebuilt, reaching back by the allowed lateness
    because late events change earlier days. Without either, the days of the newest committed hour.
    """
    settings = settings or get_settings()
    if start is not None or end is not None:
        if start is None or end is None:
            raise ValueError("give both start and end, or neither")
        lo, hi = to_utc(start), to_utc(end)
    else:
        if not hours:
            manifests = list_manifests(settings.lake_uri)
            if not manifests:
                raise ValueError("nothing ingested yet: no committed ingest hour to build features for")
            hours = [manifests[-1]["hour"]]
        parsed = sorted(as_hour(h) for h in hours)
        lo = parsed[0] - timedelta(hours=settings.allowed_lateness_hours)
        hi = parsed[-1] + timedelta(hours=1)
    if hi <= lo:
        raise ValueError(f"empty window: start {lo.isoformat()} is not before end {hi.isoformat()}")
    lo = day_start(lo)
    hi = day_start(hi) if day_start(hi) == hi else day_start(hi) + timedelta(days=1)
    return {"start": lo.isoformat(), "end": hi.isoformat()}


def staging_uri(settings: Settings, token: str) -> str:
    return join_uri(settings.home, "staging", "build_features", token)


def compute_staged(window: dict[str, str], settings: Settings | None = None) -> dict[str, Any]:
    """Compute every view for the window and stage it; returns the window, staged URIs, rows and timings."""
    settings = settings or get_settings()
    started = time.perf_counter()
    inputs = load_inputs(settings.lake_uri, window["start"], window["end"])
    loaded = time.perf_counter()
    frames = compute_features(inputs)
    computed = time.perf_counter()
    token = uuid.uuid4().hex[:12]
    staged = {}
    for name, frame in frames.items():
        uri = join_uri(staging_uri(settings, token), f"{name}.parquet")
        with storage.atomic_open(uri) as handle:
            pq.write_table(to_arrow(VIEWS[name], frame), handle)
        staged[name] = uri
    rows = {name: len(frame) for name, frame in frames.items()}
    log.info("computed features for [%s, %s): %s", window["start"], window["end"], rows)
    return {
        **window,
        "token": token,
        "staged": staged,
        "rows": rows,
        "timings_s": {"load": round(loaded - started, 3), "compute": round(computed - loaded, 3)},
    }


def _read_staged(staged: dict[str, Any]) -> dict[str, Any]:
    tables = {}
    for name, uri in staged["staged"].items():
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            tables[name] = pq.read_table(handle)
    return tables


def validate_staged(staged: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The Great Expectations gate on the staged tables; raises ``DataValidationError`` on a critical failure."""
    from maestro_ml.validation import raise_for_critical, validate_features

    settings = settings or get_settings()
    run_name = f"build_features-{staged['start'][:10]}-{staged['end'][:10]}"
    outcome = validate_features(_read_staged(staged), settings=settings, run_name=run_name)
    log.info("Great Expectations Data Docs for these features: %s", outcome.data_docs_path)
    raise_for_critical(outcome)
    return {**staged, "validation": {"data_docs_path": outcome.data_docs_path, "warnings": len(outcome.warnings)}}


def publish_staged(validated: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Replace the window's day partitions of every view with the validated tables, then drop the staging."""
    settings = settings or get_settings()
    days = days_between(to_utc(validated["start"]), to_utc(validated["end"]))
    written = {}
    for name, table in _read_staged(validated).items():
        written[name] = write_days(settings.features_uri, name, table.to_pandas(), days)
    storage.remove(staging_uri(settings, validated["token"]), recursive=True)
    return {
        "start": validated["start"],
        "end": validated["end"],
        "rows": validated["rows"],
        "days": [d.isoformat() for d in days],
        "written": written,
    }


def build_features(
    start: datetime | str, end: datetime | str, settings: Settings | None = None, *, validate: bool = True
) -> dict[str, Any]:
    """Compute, validate and publish the features of the days in ``[start, end)`` in this process."""
    settings = settings or get_settings()
    window = resolve_window(start=start, end=end, settings=settings)
    staged = compute_staged(window, settings)
    if validate:
        staged = validate_staged(staged, settings)
    return publish_staged(staged, settings)
