"""The hourly ingestion: the in-process range path the DAG runs, and the staged steps.

``ingest_events`` runs ``plan.plan_hours`` then ``ingest_range`` (every hour through ``ingest_hours`` with
the GX gate ``validate_hour_tables`` before its commit) and ``validate_current_state``.

The staged steps below are the same work split at staging boundaries (each step a separate
process); no DAG runs them now, and the tests use them as the reference a range run must equal.
They pass small JSON-serialisable dicts; the rows travel as staged Parquet under
``staging_uri(hour)``. Each step takes the previous step's dict and returns it extended::

    files    = list_hour_files(settings.landing_uri, hour)
    parsed   = parse_hour(files, hour, staging_uri(hour))   # decode + validate -> staged rows
    masked   = mask_staged(parsed)                          # PII hashed / scrubbed
    deduped  = dedupe_staged(masked)                        # within hour + lookback
    manifest = commit_hour(deduped)                         # lake files + manifest (commit point)
    summary  = update_state(manifest)                       # current-state tables

The Great Expectations gates sit between them: ``validate_staged_hour`` between dedupe
and commit, so an hour that fails a critical expectation is never committed (the lake keeps its
previous contents and the task fails loudly; warnings travel on into the hour's manifest), and
``validate_current_state`` after the fold.

Masking runs before deduplication so ids are compared in the form the lake stores them.
``staged_events`` maps event type -> one Parquet file with ``lake.lake_schema(event_type)``
plus ``_file`` (index into ``files``) and ``_line`` (1-based line); ``staged_quarantine`` has
``lake.QUARANTINE_SCHEMA``. A step refuses a dict from the wrong stage (``"stage"`` key). The
staging folder stays until ``update_state`` (so a retried ``commit_hour`` finds its input).
``ingest_hour(hour)`` runs the same functions in-process without staging.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.ingestion.commit import HourOutput, commit
from maestro_ml.ingestion.dedupe import dedupe_tables
from maestro_ml.ingestion.layout import list_hour_files, new_token, staging_uri
from maestro_ml.ingestion.parse import ParsedHour, count_reasons, parse_files, staged_schema
from maestro_ml.ingestion.pii import MaskStats, mask_tables
from maestro_ml.ingestion.state import apply_events
from maestro_ml.lake import (
    as_hour,
    hour_key,
    lake_schema,
    list_manifests,
    read_manifest,
    read_state,
)
from maestro_ml.lake.state import STATE_EVENT_TYPES
from maestro_ml.settings import Settings, get_settings, join_uri
from maestro_ml.validation import DataValidationError, raise_for_critical, validate_events, validate_state
from maestro_ml.validation.context import data_docs_once, index_path

log = logging.getLogger(__name__)
T = TypeVar("T")
STAGE_ORDER = ("parsed", "masked", "deduped")


def _timed(timings: dict[str, float], name: str, fn: Callable[[], T]) -> T:
    started = time.perf_counter()
    try:
        return fn()
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - started


def _lateness(settings: Settings) -> timedelta:
    return timedelta(hours=settings.allowed_lateness_hours)


def _tolerance(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.future_tolerance_minutes)


def _read_parquet(uri: str) -> pa.Table:
    fs, path = storage.filesystem(uri)
    with fs.open(path, "rb") as handle:
        return pq.read_table(handle)


def _write_staged(uri: str, table: pa.Table) -> None:
    with storage.atomic_open(uri, "wb") as handle:
        pq.write_table(table, handle, compression="lz4")


def _stage_tables(staging: str, step: str, tables: dict[str, pa.Table]) -> dict[str, str]:
    """One staged Parquet file per event type; returns event type -> URI."""
    token = new_token()
    uris: dict[str, str] = {}
    for event_type, table in tables.items():
        uri = join_uri(staging, f"{step}-{event_type}-{token}.parquet")
        _write_staged(uri, table)
        uris[event_type] = uri
    return uris


def _read_staged(uris: dict[str, str]) -> dict[str, pa.Table]:
    return {t: _read_parquet(uri).cast(staged_schema(t)) for t, uri in uris.items()}


def _commit(output: HourOutput, settings: Settings, max_workers: int = 2) -> tuple[dict[str, Any], dict[str, pa.Table]]:
    """Commit one hour with the settings' lake layout and windows; times the commit in the manifest."""
    started = time.perf_counter()
    manifest, tables = commit(
        output,
        lake_uri=settings.lake_uri,
        quarantine_uri=settings.quarantine_uri,
        allowed_lateness=_lateness(settings),
        future_tolerance=_tolerance(settings),
        dedupe_lookback_hours=settings.dedupe_lookback_hours,
        max_workers=max_workers,
    )
    manifest["timings_s"]["commit"] = round(time.perf_counter() - started, 4)
    return manifest, tables


def _require_stage(ctx: dict[str, Any], stage: str, step: str) -> None:
    if ctx.get("stage") != stage:
        raise ValueError(f"{step} needs the output of the {stage!r} step, got stage {ctx.get('stage')!r}")


# --------------------------------------------------------------------------- DAG steps


def parse_hour(
    files: list[str],
    hour: datetime | str,
    staging_uri: str,
    settings: Settings | None = None,
    *,
    max_workers: int | None = None,
) -> dict[str, Any]:
    """Decode and validate the hour's landing files; stage valid rows and quarantine rows.

    Returns ``{"stage": "parsed", "hour", "files", "staging_uri", "staged_events",
    "staged_quarantine", "lines_in", "rows_parsed", "rows_quarantined",
    "rows_quarantined_by_reason", "decode_paths", "warnings", "timings_s"}``.
    """
    settings = settings or get_settings()
    start = as_hour(hour)
    timings: dict[str, float] = {}
    parsed = _timed(
        timings,
        "parse",
        lambda: parse_files(
            list(files),
            start,
            allowed_lateness=_lateness(settings),
            future_tolerance=_tolerance(settings),
            max_workers=max_workers,
        ),
    )
    quarantine_uri = join_uri(staging_uri, f"quarantine-{new_token()}.parquet")
    staged = _timed(timings, "stage_write", lambda: _stage_tables(staging_uri, "parsed", parsed.tables))
    _timed(timings, "stage_write", lambda: _write_staged(quarantine_uri, parsed.quarantine))
    return {
        "stage": "parsed",
        "hour": start.isoformat(),
        "files": list(files),
        "staging_uri": staging_uri,
        "staged_events": staged,
        "staged_quarantine": quarantine_uri,
        "lines_in": parsed.lines_in,
        "rows_parsed": parsed.rows_valid,
        "rows_quarantined": parsed.quarantine.num_rows,
        "rows_quarantined_by_reason": parsed.quarantined_by_reason(),
        "decode_paths": parsed.paths,
        "warnings": parsed.warnings,
        "timings_s": timings,
    }


def mask_staged(parsed: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Hash PII fields and scrub emails/phones from the staged rows.

    Returns the input dict with ``"stage": "masked"``, new ``staged_events`` and ``"pii"``:
    ``{"hashed_values", "emails_scrubbed", "phones_scrubbed", "ids_pseudonymised"}`` (cells
    per ``event_type.column``).
    """
    _require_stage(parsed, "parsed", "mask_staged")
    settings = settings or get_settings()
    key = settings.pii_key()
    timings = dict(parsed.get("timings_s", {}))
    tables = _timed(timings, "stage_read", lambda: _read_staged(parsed["staged_events"]))
    masked, stats = _timed(timings, "mask", lambda: mask_tables(tables, key))
    staged = _timed(timings, "stage_write", lambda: _stage_tables(parsed["staging_uri"], "masked", masked))
    return {**parsed, "stage": "masked", "staged_events": staged, "pii": stats.to_dict(), "timings_s": timings}


def dedupe_staged(masked: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Drop duplicate event ids (within the hour, and against the lookback's id indexes).

    Returns the input dict with ``"stage": "deduped"``, new ``staged_events``, ``rows_valid``,
    ``rows_duplicate`` and ``"duplicates"``: ``{"rows_duplicate", "within_hour", "lookback",
    "lookback_hours_committed", "lookback_hours_missing", "lookback_ids_read"}``.
    """
    _require_stage(masked, "masked", "dedupe_staged")
    settings = settings or get_settings()
    timings = dict(masked.get("timings_s", {}))
    tables = _timed(timings, "stage_read", lambda: _read_staged(masked["staged_events"]))
    kept, result = _timed(
        timings,
        "dedupe",
        lambda: dedupe_tables(tables, settings.lake_uri, masked["hour"], settings.dedupe_lookback_hours),
    )
    staged = _timed(timings, "stage_write", lambda: _stage_tables(masked["staging_uri"], "deduped", kept))
    return {
        **masked,
        "stage": "deduped",
        "staged_events": staged,
        "rows_valid": sum(t.num_rows for t in kept.values()),
        "rows_duplicate": result.duplicates,
        "duplicates": result.to_dict(),
        "timings_s": timings,
    }


def commit_hour(deduped: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Write the hour to the lake and commit its manifest; returns the manifest (see ``commit``)."""
    _require_stage(deduped, "deduped", "commit_hour")
    settings = settings or get_settings()
    timings = dict(deduped.get("timings_s", {}))
    tables = _timed(timings, "stage_read", lambda: _read_staged(deduped["staged_events"]))
    quarantine = _timed(timings, "stage_read", lambda: _read_parquet(deduped["staged_quarantine"]))
    output = HourOutput(
        hour=as_hour(deduped["hour"]),
        files=list(deduped["files"]),
        lines_in=int(deduped["lines_in"]),
        tables=tables,
        quarantine=quarantine,
        rows_quarantined_by_reason=count_reasons(quarantine),
        duplicates=dict(deduped["duplicates"]),
        pii=dict(deduped.get("pii", {})),
        decode_paths=dict(deduped.get("decode_paths", {})),
        warnings=list(deduped.get("warnings", [])),
        timings_s=timings,
    )
    manifest, _ = _commit(output, settings)
    return manifest


def update_state(manifest: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Fold the committed rows of the manifest's hour into the current-state tables.

    Reads the hour's *current* manifest (a later re-run may have replaced the one passed in)
    and only the event types state is made of. Last step of the hour: it also removes the
    hour's staging folder (kept until now so that a retried ``commit_hour`` still finds its
    input). Returns ``{"hour", "token", "events_applied", "state": {"rows_touched": {table: rows},
    "compacted": {table: deltas}}, "staging_removed"}``.
    """
    settings = settings or get_settings()
    hour = as_hour(manifest["hour"])
    current = read_manifest(settings.lake_uri, hour)
    if current is None:
        raise RuntimeError(f"hour {hour.isoformat()} has no committed manifest; commit it before updating state")
    tables: dict[str, list[pa.Table]] = {}
    for entry in current["outputs"]["data"]:
        if entry["event_type"] in STATE_EVENT_TYPES:
            table = _read_parquet(entry["path"]).cast(lake_schema(entry["event_type"]))
            tables.setdefault(entry["event_type"], []).append(table)
    merged = {t: pa.concat_tables(parts) for t, parts in tables.items()}
    state = apply_events(settings.lake_uri, merged, hour)
    staging = staging_uri(hour, settings)
    removed = storage.exists(staging)
    if removed:
        storage.remove(staging, recursive=True)
    return {
        "hour": hour.isoformat(),
        "token": current["token"],
        "events_applied": sum(t.num_rows for t in merged.values()),
        "state": state,
        "staging_removed": removed,
    }


# --------------------------------------------------------------------------- in-process


@dataclass
class _Prepared:
    """An hour parsed and masked, not yet deduplicated (that needs the earlier hours committed)."""

    hour: datetime
    files: list[str]
    parsed: ParsedHour
    masked: dict[str, pa.Table]
    pii: MaskStats
    timings: dict[str, float]


def _prepare(
    hour: datetime, settings: Settings, key: bytes, files: list[str] | None, max_workers: int | None
) -> _Prepared:
    """List, parse and mask one hour: depends on the landing files only, never on the lake."""
    timings: dict[str, float] = {}
    files = list_hour_files(settings.landing_uri, hour) if files is None else list(files)
    parsed = _timed(
        timings,
        "parse",
        lambda: parse_files(
            files,
            hour,
            allowed_lateness=_lateness(settings),
            future_tolerance=_tolerance(settings),
            max_workers=max_workers,
        ),
    )
    masked, stats = _timed(timings, "mask", lambda: mask_tables(parsed.tables, key))
    return _Prepared(hour, files, parsed, masked, stats, timings)


# The ingest gate between dedupe and commit: (hour, deduplicated tables) -> warning lines; raises to stop the commit.
Gate = Callable[[datetime, dict[str, pa.Table]], list[str]]


def _dedupe_and_commit(
    prepared: _Prepared, settings: Settings, max_workers: int | None, gate: Gate | None = None
) -> tuple[dict[str, Any], dict[str, pa.Table]]:
    """Dedupe against the committed lookback, pass the gate and commit the hour (manifest = commit point)."""
    timings = prepared.timings
    kept, result = _timed(
        timings,
        "dedupe",
        lambda: dedupe_tables(prepared.masked, settings.lake_uri, prepared.hour, settings.dedupe_lookback_hours),
    )
    parsed = prepared.parsed
    warnings = list(parsed.warnings)
    if gate is not None:
        warnings += _timed(timings, "validate", lambda: gate(prepared.hour, kept))
    output = HourOutput(
        hour=prepared.hour,
        files=prepared.files,
        lines_in=parsed.lines_in,
        tables=kept,
        quarantine=parsed.quarantine,
        rows_quarantined_by_reason=count_reasons(parsed.quarantine),
        duplicates=result.to_dict(),
        pii=prepared.pii.to_dict(),
        decode_paths=parsed.paths,
        warnings=warnings,
        timings_s=timings,
    )
    return _commit(output, settings, max_workers=max(2, max_workers or 2))


def _apply_state(manifest: dict[str, Any], tables: dict[str, pa.Table], settings: Settings) -> dict[str, Any]:
    """Fold an hour's committed rows into the state tables; adds ``state`` and its timing to ``manifest``."""
    started = time.perf_counter()
    state_tables = {t: tables[t] for t in STATE_EVENT_TYPES if t in tables}
    manifest["state"] = apply_events(settings.lake_uri, state_tables, manifest["hour"])
    manifest["timings_s"]["state"] = round(time.perf_counter() - started, 4)
    return manifest


def ingest_hour(
    hour: datetime | str,
    settings: Settings | None = None,
    *,
    files: list[str] | None = None,
    apply_state: bool = True,
    max_workers: int | None = None,
) -> dict[str, Any]:
    """List, parse, mask, dedupe and commit one hour in this process (no staging); returns the manifest.

    With ``apply_state`` the committed rows are also folded into the state tables and the
    manifest dict returned (not the stored one) gets ``"state"``.
    """
    settings = settings or get_settings()
    start = as_hour(hour)
    key = settings.pii_key()  # fail before doing any work when the key is missing
    prepared = _prepare(start, settings, key, files, max_workers)
    manifest, tables = _dedupe_and_commit(prepared, settings, max_workers)
    if apply_state:
        _apply_state(manifest, tables, settings)
    return manifest


# Hours with more landing lines than this are not overlapped with their neighbours: each is then
# big enough to keep both cores busy alone, and overlapping would hold two or three in memory.
PIPELINE_MAX_LINES = 200_000


def ingest_hours(
    hours: Iterable[datetime | str],
    settings: Settings | None = None,
    *,
    apply_state: bool = True,
    max_workers: int | None = None,
    overlap: bool = False,
    on_hour: Callable[[dict[str, Any]], None] | None = None,
    gate: Gate | None = None,
) -> list[dict[str, Any]]:
    """``ingest_hour`` for several hours in one process (a catch-up or backfill), oldest first.

    Every hour is committed on its own, with its own manifest, exactly as ``ingest_hour`` would
    commit it run hour by hour in ascending order: each hour is deduplicated only once the
    hours before it are committed, so the lake rows are the same. One process serves every
    hour, so its caches (lookback ids and manifests, fast-path odds, schemas) are warm after
    the first, and the PII key is checked once, before any work.

    ``overlap``: list, parse and mask the next hour (which reads landing files only) in a
    second thread while the current one is deduplicated and committed, and fold the previous
    hour's rows into the state in a third. Off by default until measured on a quiet machine:
    on the shared 2-core benchmark machine it took 17-24% less wall time in the two full
    benchmark runs but none in shorter runs (many small steps hand the GIL back and forth);
    see ``benchmarks/README.md``. Hours over ``PIPELINE_MAX_LINES`` lines are never overlapped.

    Stops at the first hour that fails and raises its error: the hours before it stay
    committed (state folded too), the ones after it are not committed. With ``overlap``, when
    folding an hour's state is what fails, the next hour may already be committed without its
    state, as after a worker killed between commit and state in ``ingest_hour``. Re-running
    the batch, or any of its hours, is safe and completes them. Returns the manifests (with
    ``state`` when ``apply_state``), in hour order; ``on_hour`` is called with each one as soon
    as its hour is complete (to log progress).

    ``gate`` (``validate_hour_tables`` for the DAGs) runs on each deduplicated hour before its
    commit; when it raises, that hour is not committed and the batch stops there. It reads the
    state the hour before folded, so it does not combine with ``overlap``.
    """
    if gate is not None and overlap:
        raise ValueError("a gated batch cannot overlap hours: the gate reads the previous hour's state")
    settings = settings or get_settings()
    ordered = sorted({as_hour(h) for h in hours})
    key = settings.pii_key()  # fail before doing any work when the key is missing
    manifests: list[dict[str, Any]] = []

    def done(manifest: dict[str, Any]) -> dict[str, Any]:
        manifests.append(manifest)
        if on_hour is not None:
            on_hour(manifest)
        return manifest

    if not overlap:
        for hour in ordered:
            manifest, tables = _dedupe_and_commit(
                _prepare(hour, settings, key, None, max_workers), settings, max_workers, gate
            )
            done(_apply_state(manifest, tables, settings) if apply_state else manifest)
        return manifests
    if not ordered:
        return manifests

    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-prepare") as prepare_pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-state") as state_pool,
    ):
        upcoming: Future[_Prepared] | None = prepare_pool.submit(_prepare, ordered[0], settings, key, None, max_workers)
        folding: Future[dict[str, Any]] | None = None
        try:
            for index, hour in enumerate(ordered):
                if upcoming is None:  # not prepared ahead (the hour before was a big one)
                    upcoming = prepare_pool.submit(_prepare, hour, settings, key, None, max_workers)
                prepared = upcoming.result()
                upcoming = None
                small = prepared.parsed.lines_in <= PIPELINE_MAX_LINES
                if small and index + 1 < len(ordered):
                    upcoming = prepare_pool.submit(_prepare, ordered[index + 1], settings, key, None, max_workers)
                manifest, tables = _dedupe_and_commit(prepared, settings, max_workers)
                del prepared
                if folding is not None:  # the previous hour's state is folded before this hour's
                    done(folding.result())
                    folding = None
                if not apply_state:
                    done(manifest)
                elif small:
                    folding = state_pool.submit(_apply_state, manifest, tables, settings)
                else:
                    done(_apply_state(manifest, tables, settings))
                del tables
            if folding is not None:
                done(folding.result())
        except BaseException:
            if upcoming is not None:
                upcoming.cancel()
            if folding is not None:  # the hour before the failing one is complete: say so
                try:
                    done(folding.result())
                except Exception:
                    log.exception("ingest: folding the state of the hour before the failed one also failed")
            raise
    return manifests


# --------------------------------------------------------------------------- Great Expectations gates

STATE_TABLES = ("users", "teams", "projects", "tasks")
KNOWN_ID_COLUMNS = {"users": "user_id", "projects": "project_id", "tasks": "task_id"}
VOLUME_HISTORY_HOURS = 24


def ingest_range(hours: Iterable[datetime | str], settings: Settings | None = None) -> dict[str, Any]:
    """Ingest hours oldest first in this process, each through the GX gate and committed on its own.

    The same lake rows, quarantine and manifests as one hourly run per hour (the tests compare
    them): each hour is deduplicated against the hours committed before it, validated, then
    committed with its own manifest and folded into the state. An hour that fails a critical
    expectation is not committed and the range goes on, as the next hourly run would; at the end a
    ``DataValidationError`` names every failed hour, after the others are committed. Returns
    ``{"hours", "days", "rows_valid", "rows_quarantined"}`` of what was committed.
    """
    settings = settings or get_settings()

    def gate(hour: datetime, tables: dict[str, pa.Table]) -> list[str]:
        return validate_hour_tables(hour, tables, settings)[0]

    manifests: list[dict[str, Any]] = []
    failed: dict[str, DataValidationError] = {}
    with data_docs_once(settings):  # each hour's verdict at once, the report pages of all hours at the end
        for hour in sorted({as_hour(h) for h in hours}):
            try:
                # One hour per call keeps a failed hour from stopping the rest; the caches stay warm.
                manifest = ingest_hours([hour], settings, gate=gate)[0]
            except DataValidationError as exc:
                failed[hour.isoformat()] = exc
                log.error("hour %s failed validation and is not committed: %s", hour.isoformat(), exc)
                continue
            manifests.append(manifest)
            log.info("committed %s: %d rows, %d quarantined", manifest["hour"], manifest["rows_valid"],
                     manifest["rows_quarantined"])
    if failed:
        first = next(iter(failed.values()))
        error = DataValidationError(first.outcome)
        error.args = (f"{len(failed)} of {len(failed) + len(manifests)} hours failed validation and were not "
                      f"committed ({', '.join(failed)}); the other hours are committed. Data Docs of every hour: "
                      f"{index_path(settings)}. First failure:\n{first}",)
        raise error
    committed = [str(m["hour"]) for m in manifests]
    return {
        "hours": committed,
        "days": sorted({h[:10] for h in committed}),
        "rows_valid": sum(int(m["rows_valid"]) for m in manifests),
        "rows_quarantined": sum(int(m["rows_quarantined"]) for m in manifests),
    }


def _warning_lines(warnings: list[dict[str, Any]]) -> list[str]:
    return [f"validation: [{w.get('check')}] {w.get('suite')}.{w.get('column')}: {w.get('summary')}" for w in warnings]


def validate_hour_tables(
    hour: datetime | str, tables: dict[str, pa.Table], settings: Settings | None = None
) -> tuple[list[str], str | None]:
    """The ingest gate: Great Expectations on one deduplicated hour, against the lake as committed so far.

    Raises ``DataValidationError`` on a critical failure (the hour must not be committed); returns
    the warning lines, which go into the hour's manifest, and the Data Docs path.
    """
    settings = settings or get_settings()
    start = as_hour(hour)
    history = list_manifests(settings.lake_uri, start - timedelta(hours=VOLUME_HISTORY_HOURS), start)
    known_ids = {
        entity: read_state(settings.lake_uri, entity).column(column) for entity, column in KNOWN_ID_COLUMNS.items()
    }
    outcome = validate_events(
        tables,
        start,
        start + timedelta(hours=1),
        trailing_volumes=[int(m["rows_valid"]) for m in history],
        known_ids=known_ids,
        settings=settings,
        run_name=f"ingest_events-{hour_key(start)}",
    )
    log.info("Great Expectations Data Docs for hour %s: %s", hour_key(start), outcome.data_docs_path)
    warnings = _warning_lines(outcome.warnings)
    for line in warnings:
        log.warning(line)
    raise_for_critical(outcome)
    return warnings, outcome.data_docs_path


def validate_staged_hour(deduped: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Validate the staged, deduplicated hour; raise ``DataValidationError`` on a critical failure.

    Returns the step dict with the GX warnings appended to ``warnings`` and a ``validation`` summary.
    """
    tables = {event_type: pq.read_table(uri) for event_type, uri in deduped["staged_events"].items()}
    warnings, docs = validate_hour_tables(deduped["hour"], tables, settings)
    return {
        **deduped,
        "warnings": [*deduped.get("warnings", []), *warnings],
        "validation": {"data_docs_path": docs, "warnings": len(warnings)},
    }


def validate_current_state(hour: str, settings: Settings | None = None) -> dict[str, Any]:
    """Validate the current-state tables after an hour was folded in; raise on a critical failure."""
    settings = settings or get_settings()
    state = {name: read_state(settings.lake_uri, name) for name in STATE_TABLES}
    outcome = validate_state(state, settings=settings, run_name=f"state-{hour_key(as_hour(hour))}")
    log.info("Great Expectations Data Docs for state: %s", outcome.data_docs_path)
    for line in _warning_lines(outcome.warnings):
        log.warning(line)
    raise_for_critical(outcome)
    return {"data_docs_path": outcome.data_docs_path, "warnings": len(outcome.warnings),
            "rows": {name: table.num_rows for name, table in state.items()}}
