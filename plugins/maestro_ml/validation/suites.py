"""The expectation suites, as code: what "good data" means for the hourly events and the state tables.

Every expectation carries a ``severity`` (GX's own field: ``critical`` blocks the pipeline,
``warning`` is reported) and ``meta`` with the check class, the contract column and the rule in
words. Suites are rebuilt on each run from the contract in :mod:`maestro_ml.contracts.events` and the run's
parameters (interval, settings, history); they are never persisted.

Which check is which severity, and why:

========================  ========  ======================================================
check                     severity  notes
========================  ========  ======================================================
schema                    critical  every contract column present with its logical type
not_null                  critical  event_id, event_type, occurred_at and the type's REQUIRED
not_null (completeness)   warning   the type's EXPECTED fields (estimates, skills, due dates,
                                    the assigner...): optional, often missing in real trackers
unique                    critical  event_id across the whole hour; state primary keys
accepted_values           critical  event_type == its table and a known type; statuses;
                                    priority 1..4; seniority 1..5
range                     critical  occurred_at in [start - lateness, end + tolerance];
                                    hours in [0, 24]; estimated_hours > 0; capacity in (0, 168]
referential_integrity     critical  state: tasks.project_id in projects, tasks.assignee_id in users,
                                    team_id in teams -- unless at most 5% of rows are orphans
referential_integrity     warning   every reference inside an hour's events (task ids, assignees,
                                    projects, parents, who logged time, who left)
pii                       critical  user_joined.email holds a hash, never an address ('@')
volume                    warning   row count within [0.2x, 5x] the trailing mean (>= 3 hours)
freshness                 warning   newest event not older than 2 h before the interval end
========================  ========  ======================================================
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.metadata_types import FailureSeverity

from maestro_ml.contracts.events import (
    EVENT_TYPES,
    EXPECTED,
    FIELD_BOUNDS,
    FIELD_VALUES,
    REQUIRED,
    STATE_SCHEMAS,
    TASK_STATUSES,
    Bounds,
)
from maestro_ml.validation.frames import ref_column_name

CRITICAL = FailureSeverity.CRITICAL
WARNING = FailureSeverity.WARNING


# (column, referenced entity, severity) per event type. Known entities are the state's ids plus
# the ones this hour creates (task_created, user_joined, project_created).
# Inside one hour an orphan reference is normal, not bad data: events arrive out of order (a
# task_created may land hours after its first comment) and an entity's creating event may sit in
# quarantine. Blocking the hour on it would stall ingestion for good, so hourly references only
# warn (and land in the manifest); the state suite blocks when orphans become systemic.
STATE_REFERENCE_MOSTLY = 0.95
EVENT_REFERENCES: dict[str, tuple[tuple[str, str, FailureSeverity], ...]] = {
    "user_left": (("user_id", "users", WARNING),),
    "task_created": (
        ("project_id", "projects", WARNING),
        ("parent_task_id", "tasks", WARNING),
        ("depends_on_task_id", "tasks", WARNING),
    ),
    "task_assigned": (
        ("task_id", "tasks", WARNING),
        ("assignee_id", "users", WARNING),
        ("previous_assignee_id", "users", WARNING),
    ),
    "task_status_changed": (("task_id", "tasks", WARNING),),
    "task_completed": (("task_id", "tasks", WARNING), ("assignee_id", "users", WARNING)),
    "task_reopened": (("task_id", "tasks", WARNING),),
    "comment_added": (("task_id", "tasks", WARNING),),
    "time_logged": (("task_id", "tasks", WARNING), ("user_id", "users", WARNING)),
}

STATE_KEYS: dict[str, str] = {"users": "user_id", "teams": "team_id", "projects": "project_id", "tasks": "task_id"}
STATE_REFERENCES: dict[str, tuple[tuple[str, str, FailureSeverity], ...]] = {
    "users": (("team_id", "teams", CRITICAL),),
    "projects": (("team_id", "teams", CRITICAL),),
    "tasks": (
        ("project_id", "projects", CRITICAL),
        ("assignee_id", "users", CRITICAL),
        ("parent_task_id", "tasks", WARNING),
        ("depends_on_task_id", "tasks", WARNING),
    ),
}


def _meta(check: str, column: str | None, rule: str, **extra: Any) -> dict[str, Any]:
    return {"check": check, "column": column, "rule": rule, **extra}


def not_null(column: str, severity: FailureSeverity = CRITICAL) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToNotBeNull(
        column=column, severity=severity, meta=_meta("not_null", column, f"{column} is always set")
    )


def expected_set(column: str) -> gxe.Expectation:
    """An optional field the product fills but real trackers may not: its absence is reported, never blocking."""
    return gxe.ExpectColumnValuesToNotBeNull(
        column=column,
        severity=WARNING,
        meta=_meta("completeness", column, f"{column} is usually set (optional: features carry an is-known flag)"),
    )


def unique(column: str, scope: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeUnique(
        column=column, severity=CRITICAL, meta=_meta("unique", column, f"{column} is unique {scope}")
    )


def in_set(column: str, values: Iterable[Any], severity: FailureSeverity = CRITICAL) -> gxe.Expectation:
    values = list(values)
    return gxe.ExpectColumnValuesToBeInSet(
        column=column,
        value_set=values,
        severity=severity,
        meta=_meta("accepted_values", column, f"{column} is one of {values}"),
    )


def between(
    column: str,
    min_value: Any = None,
    max_value: Any = None,
    *,
    strict_min: bool = False,
    severity: FailureSeverity = CRITICAL,
    rule: str,
) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column=column,
        min_value=min_value,
        max_value=max_value,
        strict_min=strict_min,
        severity=severity,
        meta=_meta("range", column, rule),
    )


def references(
    column: str, entity: str, severity: FailureSeverity, key: str, mostly: float = 1.0
) -> gxe.Expectation:
    """``column`` refers to an existing ``entity``: its derived ``<column>_not_in_<entity>`` is all null."""
    return gxe.ExpectColumnValuesToBeNull(
        column=ref_column_name(column, entity),
        severity=severity,
        mostly=mostly,
        meta=_meta(
            "referential_integrity",
            column,
            f"every {column} set is a known {entity}.{key} (the derived column lists the unknown ones)",
            references=f"{entity}.{key}",
        ),
    )


def schema_suite(name: str, expected: list[str]) -> gx.ExpectationSuite:
    """Every contract column is present with its logical type: one expectation over the observed schema."""
    return gx.ExpectationSuite(
        name=name,
        expectations=[
            gxe.ExpectColumnValuesToBeInSet(
                column="column_type",
                value_set=sorted(expected),
                severity=CRITICAL,
                meta=_meta(
                    "schema",
                    None,
                    "each contract column is present with its type; unexpected values are "
                    "'<table>.<column>:<observed type>' (or ':<missing>')",
                ),
            )
        ],
    )


def envelope_suite(
    *,
    occurred_min: dt.datetime,
    occurred_max: dt.datetime,
    volume_bounds: tuple[int, int] | None,
    freshness_min: dt.datetime,
) -> gx.ExpectationSuite:
    """Checks over all events of the hour together (``frames.envelope_table``)."""
    expectations = [
        not_null("event_id"),
        unique("event_id", "across all events of the hour"),
        not_null("event_type"),
        not_null("occurred_at"),
        between(
            "occurred_at",
            occurred_min,
            occurred_max,
            rule="occurred_at lies in [interval start - allowed lateness, interval end + future tolerance]",
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="event_type",
            column_B="table",
            severity=CRITICAL,
            meta=_meta("accepted_values", "event_type", "event_type matches the table it was filed under"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="table",
            value_set=list(EVENT_TYPES),
            severity=CRITICAL,
            meta=_meta("accepted_values", "event_type", "every table is a known event type"),
        ),
        gxe.ExpectColumnMaxToBeBetween(
            column="occurred_at",
            min_value=freshness_min,
            severity=WARNING,
            meta=_meta("freshness", "occurred_at", "the newest event is recent relative to the interval end"),
        ),
    ]
    if volume_bounds is not None:
        expectations.append(
            gxe.ExpectTableRowCountToBeBetween(
                min_value=volume_bounds[0],
                max_value=volume_bounds[1],
                severity=WARNING,
                meta=_meta("volume", None, "the hour's event count is within a band around the trailing mean"),
            )
        )
    return gx.ExpectationSuite(name="events.envelope", expectations=expectations)


def _bounded(bounds: Bounds, column: str) -> Any:
    return between(column, bounds.low, bounds.high, strict_min=bounds.strict_low, rule=bounds.rule)


def event_type_suite(event_type: str, referenced: Iterable[tuple[str, str, FailureSeverity]]) -> gx.ExpectationSuite:
    """Type-specific checks of one event table (the envelope is checked over the whole hour)."""
    envelope = {"event_id", "event_type", "occurred_at"}
    expectations = [not_null(c) for c in sorted(REQUIRED[event_type] - envelope)]
    expectations += [expected_set(c) for c in sorted(EXPECTED.get(event_type, frozenset()))]
    # The row checks already quarantined rows outside these: the suite proves none landed.
    expectations += [_bounded(b, column) for column, b in FIELD_BOUNDS.get(event_type, {}).items()]
    expectations += [in_set(column, values) for column, values in FIELD_VALUES.get(event_type, {}).items()]
    if event_type == "user_joined":
        expectations.append(
            gxe.ExpectColumnValuesToNotMatchRegex(
                column="email",
                regex="@",
                severity=CRITICAL,
                meta=_meta("pii", "email", "email holds the keyed hash, never a raw address"),
            )
        )
    expectations += [references(c, entity, sev, STATE_KEYS[entity]) for c, entity, sev in referenced]
    return gx.ExpectationSuite(name=f"events.{event_type}", expectations=expectations)


# The state's columns come from these events' fields, under the same bounds.
_STATE_BOUNDS_FROM = {"users": "user_joined", "projects": "project_created", "tasks": "task_created"}


def state_suite(table: str, referenced: Iterable[tuple[str, str, FailureSeverity]]) -> gx.ExpectationSuite:
    key = STATE_KEYS[table]
    schema = STATE_SCHEMAS[table]
    expectations = [not_null(f.name) for f in schema if not f.nullable]
    expectations.append(unique(key, f"in state.{table}"))
    if table == "tasks":
        expectations.append(in_set("status", TASK_STATUSES))
    source = _STATE_BOUNDS_FROM.get(table)
    if source:
        expectations += [_bounded(b, column) for column, b in FIELD_BOUNDS[source].items() if column in schema.names]
    expectations += [
        references(c, entity, sev, STATE_KEYS[entity], STATE_REFERENCE_MOSTLY if sev == CRITICAL else 1.0)
        for c, entity, sev in referenced
    ]
    return gx.ExpectationSuite(name=f"state.{table}", expectations=expectations)


def columns_of(suite: gx.ExpectationSuite) -> set[str]:
    """The frame columns a suite reads."""
    columns: set[str] = set()
    for e in suite.expectations:
        for attr in ("column", "column_A", "column_B"):
            value = getattr(e, attr, None)
            if isinstance(value, str):
                columns.add(value)
    return columns


def feature_suite(view: Any) -> gx.ExpectationSuite:
    """A feature table (``maestro_ml.contracts.features.View``): keys and timestamps set, one row per key and time,
    every non-nullable feature set, numbers inside their declared ranges (rates in [0, 1]), known statuses."""
    keys = list(view.join_keys)
    expectations: list[gxe.Expectation] = [not_null(k) for k in [*keys, "event_timestamp"]]
    expectations.append(
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[*keys, "event_timestamp"],
            severity=CRITICAL,
            meta=_meta("unique", None, f"one row per ({', '.join(keys)}, event_timestamp)"),
        )
    )
    for feature in view.features:
        if not feature.nullable:
            expectations.append(not_null(feature.name))
        if feature.values is not None:
            expectations.append(in_set(feature.name, feature.values))
        if feature.min_value is not None or feature.max_value is not None:
            bounds = f"[{feature.min_value if feature.min_value is not None else '-inf'}, " + (
                f"{feature.max_value}]" if feature.max_value is not None else "inf)"
            )
            expectations.append(
                between(feature.name, feature.min_value, feature.max_value, rule=f"{feature.name} in {bounds}")
            )
    return gx.ExpectationSuite(name=f"features.{view.name}", expectations=expectations)
