"""The two blocking gates: one hour of ingested events, and the state tables after folding them in."""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa

from maestro_ml.contracts.events import EVENT_TYPES, STATE_SCHEMAS, schema_for
from maestro_ml.contracts.features import VIEWS, arrow_schema, nullable_in_sets
from maestro_ml.settings import Settings, get_settings
from maestro_ml.validation import context, frames, suites
from maestro_ml.validation.outcome import ValidationOutcome, failures_from

log = logging.getLogger(__name__)

# Which event type creates each entity, and the column holding its id.
CREATED_BY: dict[str, tuple[str, str]] = {
    "tasks": ("task_created", "task_id"),
    "users": ("user_joined", "user_id"),
    "projects": ("project_created", "project_id"),
}
_ENTITY_ALIASES = {
    alias: entity
    for entity, singular in (("tasks", "task"), ("users", "user"), ("projects", "project"), ("teams", "team"))
    for alias in (entity, singular, f"{singular}_id", f"{singular}_ids")
}

DEFAULT_FRESHNESS = dt.timedelta(hours=2)
DEFAULT_VOLUME_BAND = (0.2, 5.0)
DEFAULT_MIN_HISTORY = 3


def _utc(value: dt.datetime) -> dt.datetime:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def _ids(value: Any, key: str) -> Any:
    """The id column of a state table, or the ids themselves."""
    if isinstance(value, pa.Table):
        return value.column(key) if key in value.column_names else pa.array([], pa.string())
    if isinstance(value, pd.DataFrame):
        return value[key] if key in value.columns else pa.array([], pa.string())
    return value


def _known_state_ids(known_ids: Mapping[str, Any] | None) -> dict[str, Any]:
    known: dict[str, Any] = {}
    for name, value in (known_ids or {}).items():
        entity = _ENTITY_ALIASES.get(str(name))
        if entity is None:
            raise ValueError(f"known_ids key {name!r} is not one of tasks, users, projects, teams")
        known[entity] = _ids(value, f"{entity[:-1]}_id")
    return known


def volume_bounds(
    trailing_volumes: Sequence[int],
    band: tuple[float, float] = DEFAULT_VOLUME_BAND,
    min_history: int = DEFAULT_MIN_HISTORY,
) -> tuple[int, int] | None:
    """The accepted row count band around the trailing mean, or None without enough history."""
    history = [int(v) for v in trailing_volumes if v is not None]
    if len(history) < min_history:
        return None
    mean = sum(history) / len(history)
    return math.floor(mean * band[0]), math.ceil(mean * band[1])


def _outcome(
    kind: str,
    run_name: str,
    settings: Settings,
    batches: list[Any],
    statistics: dict[str, Any],
    started: float,
) -> ValidationOutcome:

    prepared = time.perf_counter()
    results, index, docs_error, timings = context.run(settings, batches, run_name)
    critical: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    suites: dict[str, Any] = {}
    for r in results:
        c, w = failures_from(r.suite_name, r.result, r.batch.frame, r.batch.id_columns)
        critical += c
        warnings += w
        stats = dict(r.result.statistics)
        suites[r.suite_name] = {
            "evaluated": stats.get("evaluated_expectations"),
            "successful": stats.get("successful_expectations"),
            "critical_failures": len(c),
            "warnings": len(w),
        }
    statistics.update(
        {
            "suites": suites,
            "evaluated_expectations": sum(s["evaluated"] or 0 for s in suites.values()),
            "successful_expectations": sum(s["successful"] or 0 for s in suites.values()),
            "timings_s": {
                "prepare": round(prepared - started, 3),
                **timings,
                "total": round(time.perf_counter() - started, 3),
            },
        }
    )
    if docs_error:
        statistics["data_docs_error"] = docs_error
    outcome = ValidationOutcome(
        success=not critical,
        critical_failures=critical,
        warnings=warnings,
        statistics=statistics,
        data_docs_path=index,
        run_name=run_name,
        kind=kind,
        data_docs_pages={r.suite_name: r.page for r in results if r.page},
    )
    log.log(logging.INFO if outcome.success and not warnings else logging.WARNING, "%s", outcome.describe())
    return outcome


def validate_events(
    tables: Mapping[str, pa.Table | pd.DataFrame],
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    *,
    trailing_volumes: Sequence[int],
    known_ids: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    run_name: str,
    freshness_max_age: dt.timedelta = DEFAULT_FRESHNESS,
    volume_band: tuple[float, float] = DEFAULT_VOLUME_BAND,
    min_volume_history: int = DEFAULT_MIN_HISTORY,
) -> ValidationOutcome:
    """Validate one hour of ingested, deduplicated events with Great Expectations.

    ``tables`` maps event type to its table (columns per ``events.schema_for``); types with no
    events this hour may be left out. ``trailing_volumes`` are the event counts of the previous
    hours (the volume check needs ``min_volume_history`` of them). ``known_ids`` maps
    ``tasks``/``users``/``projects`` (or ``task_id``...) to the ids already in state (an
    iterable, an Arrow/pandas column, or the state table itself); this hour's
    ``task_created``/``user_joined``/``project_created`` are added to them. References to an
    entity missing from ``known_ids`` are not checked (listed in ``statistics['skipped_checks']``):
    pass an empty list for an empty state.

    Returns the verdict; use :func:`raise_for_critical` to block on it.
    """
    started = time.perf_counter()
    settings = settings or get_settings()
    start, end = _utc(interval_start), _utc(interval_end)
    if end <= start:
        raise ValueError(f"interval_end {end} is not after interval_start {start}")

    arrow = {
        name: frames.to_arrow(table, schema_for(name) if name in EVENT_TYPES else None)
        for name, table in tables.items()
    }
    skipped: list[str] = []
    state_ids = _known_state_ids(known_ids)
    known: dict[str, pa.Array] = {}
    for entity, (event_type, column) in CREATED_BY.items():
        if entity not in state_ids:
            continue
        created = arrow.get(event_type)
        created_ids = created.column(column) if created is not None and column in created.column_names else None
        known[entity] = frames.id_set(state_ids[entity], created_ids)

    batches: list[context.Batch] = []
    schema_rows = []
    for name, table in arrow.items():
        if name not in EVENT_TYPES:
            continue  # the envelope suite fails the unknown table
        schema = schema_for(name)
        schema_rows.append(frames.observed_schema_rows(name, table, schema))
        refs = []
        for column, entity, severity in suites.EVENT_REFERENCES.get(name, ()):
            if entity in known:
                refs.append((column, entity, severity))
            else:
                skipped.append(f"events.{name}.{column} -> {entity}: no known_ids[{entity!r}]")
        table = frames.with_contract_columns(table, schema)
        table = frames.add_ref_columns(table, {c: (e, known[e]) for c, e, _ in refs})
        suite = suites.event_type_suite(name, refs)
        needed = suites.columns_of(suite) | {"event_id"}
        frame = frames.to_pandas(table.select([c for c in table.column_names if c in needed]))
        batches.append(context.Batch(suite, frame, "events", ("event_id",)))

    schema_frame, expected = frames.schema_frame(schema_rows)
    batches.insert(0, context.Batch(suites.schema_suite("events.schema", expected), schema_frame, "events"))

    bounds = volume_bounds(trailing_volumes, volume_band, min_volume_history)
    if bounds is None:
        skipped.append(f"volume: {len(trailing_volumes)} trailing hour(s), fewer than {min_volume_history}")
    occurred_min = start - dt.timedelta(hours=settings.allowed_lateness_hours)
    occurred_max = end + dt.timedelta(minutes=settings.future_tolerance_minutes)
    envelope = frames.to_pandas(frames.envelope_table(arrow))
    envelope_suite = suites.envelope_suite(
        occurred_min=occurred_min,
        occurred_max=occurred_max,
        volume_bounds=bounds,
        freshness_min=end - freshness_max_age,
    )
    batches.insert(1, context.Batch(envelope_suite, envelope, "events", ("event_id", "table")))

    history = [int(v) for v in trailing_volumes if v is not None]
    statistics: dict[str, Any] = {
        "interval_start": start.isoformat(),
        "interval_end": end.isoformat(),
        "rows": {name: t.num_rows for name, t in arrow.items()},
        "total_rows": len(envelope),
        "occurred_at_bounds": [occurred_min.isoformat(), occurred_max.isoformat()],
        "freshness_min": (end - freshness_max_age).isoformat(),
        "volume": {
            "history": len(history),
            "trailing_mean": (sum(history) / len(history)) if history else None,
            "bounds": list(bounds) if bounds else None,
        },
        "known_ids": {entity: len(ids) for entity, ids in known.items()},
        "skipped_checks": skipped,
    }
    return _outcome("events", run_name, settings, batches, statistics, started)


def validate_state(
    state: Mapping[str, pa.Table | pd.DataFrame],
    *,
    settings: Settings | None = None,
    run_name: str,
) -> ValidationOutcome:
    """Validate the current-state tables (``users``, ``teams``, ``projects``, ``tasks``) with Great Expectations.

    Primary keys set and unique; ``tasks.project_id`` in projects, ``tasks.assignee_id`` in users
    (when set), ``projects.team_id`` and ``users.team_id`` in teams; statuses and ranges. A table
    left out is not validated, and references into it are not checked (both listed in
    ``statistics['skipped_checks']``).
    """
    started = time.perf_counter()
    settings = settings or get_settings()

    unknown = sorted(set(state) - set(STATE_SCHEMAS))
    if unknown:
        raise ValueError(f"unknown state tables {unknown}; expected some of {sorted(STATE_SCHEMAS)}")
    arrow = {name: frames.to_arrow(table, STATE_SCHEMAS[name]) for name, table in state.items()}
    skipped = [f"state.{name}: not given" for name in STATE_SCHEMAS if name not in arrow]
    known = {name: frames.id_set(_ids(table, suites.STATE_KEYS[name])) for name, table in arrow.items()}

    batches: list[context.Batch] = []
    schema_rows = []
    for name, table in arrow.items():
        schema = STATE_SCHEMAS[name]
        key = suites.STATE_KEYS[name]
        schema_rows.append(frames.observed_schema_rows(f"state.{name}", table, schema))
        refs = []
        for column, entity, severity in suites.STATE_REFERENCES.get(name, ()):
            if entity in known:
                refs.append((column, entity, severity))
            else:
                skipped.append(f"state.{name}.{column} -> {entity}: state.{entity} not given")
        table = frames.with_contract_columns(table, schema)
        table = frames.add_ref_columns(table, {c: (e, known[e]) for c, e, _ in refs})
        suite = suites.state_suite(name, refs)
        needed = suites.columns_of(suite) | {key}
        frame = frames.to_pandas(table.select([c for c in table.column_names if c in needed]))
        batches.append(context.Batch(suite, frame, "state", (key,)))

    schema_frame, expected = frames.schema_frame(schema_rows)
    batches.insert(0, context.Batch(suites.schema_suite("state.schema", expected), schema_frame, "state"))
    statistics: dict[str, Any] = {
        "rows": {name: t.num_rows for name, t in arrow.items()},
        "total_rows": sum(t.num_rows for t in arrow.values()),
        "skipped_checks": skipped,
    }
    return _outcome("state", run_name, settings, batches, statistics, started)


def validate_features(
    tables: Mapping[str, pa.Table | pd.DataFrame],
    *,
    settings: Settings | None = None,
    run_name: str,
) -> ValidationOutcome:
    """Validate feature tables (view name -> rows) against ``maestro_ml.contracts.features``.

    Schema (every contract column with its type), non-null keys and timestamps, one row per key and
    timestamp, non-nullable features set, declared ranges (rates in [0, 1]) and accepted values.
    """
    started = time.perf_counter()
    settings = settings or get_settings()
    unknown = sorted(set(tables) - set(VIEWS))
    if unknown:
        raise ValueError(f"unknown feature views {unknown}; expected some of {sorted(VIEWS)}")
    batches: list[context.Batch] = []
    schema_rows = []
    for name, table in tables.items():
        view = VIEWS[name]
        schema = arrow_schema(view)
        arrow = frames.to_arrow(table, schema)
        schema_rows.append(frames.observed_schema_rows(f"features.{name}", arrow, schema))
        suite = suites.feature_suite(view)
        needed = suites.columns_of(suite) | set(view.join_keys) | {"event_timestamp"}
        frame = frames.to_pandas(arrow.select([c for c in arrow.column_names if c in needed]))
        batches.append(context.Batch(suite, frame, "features", (*view.join_keys, "event_timestamp")))
    schema_frame, expected = frames.schema_frame(schema_rows)
    batches.insert(0, context.Batch(suites.schema_suite("features.schema", expected), schema_frame, "features"))
    statistics: dict[str, Any] = {"rows": {name: len(t) for name, t in tables.items()}}
    return _outcome("features", run_name, settings, batches, statistics, started)


def validate_training_sets(
    frames: Mapping[str, pd.DataFrame],
    kind: str,
    *,
    min_groups: int | Mapping[str, int],
    settings: Settings | None = None,
    run_name: str,
) -> ValidationOutcome:
    """Training sets (split -> rows) before a model sees them: enough decisions, label balance, no null keys or labels.

    Ranking: at least ``min_groups`` decisions per split (one number, or one per split), exactly one chosen candidate per decision
    (a share of chosen rows in (0, 0.5]), ids set. Duration: ``min_groups`` completed assignments,
    durations set and positive. Features may be null (new users, imputed by the trainer), but at
    most 5% per column, except those the feature contract lets be null (``nullable_in_sets``: optional
    fields, and the history of a pair that never worked together).
    """
    import great_expectations.expectations as gxe

    started = time.perf_counter()
    settings = settings or get_settings()

    batches: list[context.Batch] = []
    ids = ["decision_id", "task_id", "user_id", "assigned_at"]
    for split, frame in frames.items():
        fewest = min_groups if isinstance(min_groups, int) else min_groups[split]
        expectations: list[Any] = [suites.not_null(c) for c in ids]
        expectations.append(
            gxe.ExpectColumnUniqueValueCountToBeBetween(
                column="decision_id", min_value=fewest, severity=suites.CRITICAL,
                meta=suites._meta("volume", "decision_id", f"at least {fewest} decisions"),
            )
        )
        if kind == "ranking":
            expectations.append(
                gxe.ExpectColumnMeanToBeBetween(
                    column="chosen", min_value=1e-6, max_value=0.5, severity=suites.CRITICAL,
                    meta=suites._meta("label_balance", "chosen", "some but at most half of the rows are chosen"),
                )
            )
        else:
            expectations.append(suites.not_null("outcome_duration_hours"))
            expectations.append(
                suites.between("outcome_duration_hours", 0, None, strict_min=True, rule="durations are positive")
            )
        nullable = nullable_in_sets()
        numeric = [c for c in frame.columns if c not in ids and pd.api.types.is_numeric_dtype(frame[c])
                   and not c.startswith("outcome_") and c not in nullable]
        for column in numeric:
            expectations.append(
                gxe.ExpectColumnValuesToNotBeNull(
                    column=column, mostly=0.95, severity=suites.CRITICAL,
                    meta=suites._meta("not_null", column, f"{column} is set on at least 95% of rows"),
                )
            )
        import great_expectations as gx

        suite = gx.ExpectationSuite(name=f"training.{kind}.{split}", expectations=expectations)
        batches.append(context.Batch(suite, frame.reset_index(drop=True), "features", ("decision_id", "user_id")))
    statistics: dict[str, Any] = {"rows": {split: len(f) for split, f in frames.items()}}
    return _outcome("training_sets", run_name, settings, batches, statistics, started)
