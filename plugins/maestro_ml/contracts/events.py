"""The product-event contract: one flat JSON object per line, one explicit Arrow schema per event type.

Every event carries the envelope (``event_id``, ``event_type``, ``occurred_at``, ``actor_id``)
plus the fields of its type at the top level. ``occurred_at`` and other timestamps are
ISO-8601 strings in UTC (``2026-11-02T13:45:07.123456Z``) on the wire and
``timestamp[us, UTC]`` in the lake.

``REQUIRED`` lists, per type, the fields that must be present and non-null; every other
field of the type is optional (nullable). ``EXPECTED`` names the optional fields whose absence
is worth a warning (real trackers often lack them; see the README's "Optional fields"). ``PII_HASHED`` fields are replaced by a keyed
hash before anything is written, ``FREE_TEXT`` fields are scrubbed of emails and phone
numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
SKILLS = pa.list_(pa.float32())

NUM_SKILLS = 12
SKILL_NAMES: tuple[str, ...] = (
    "backend",
    "frontend",
    "mobile",
    "data",
    "ml",
    "devops",
    "security",
    "design",
    "qa",
    "writing",
    "product",
    "support",
)
TASK_STATUSES: tuple[str, ...] = ("todo", "in_progress", "blocked", "in_review", "done")

ENVELOPE: list[pa.Field] = [
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("event_type", pa.string(), nullable=False),
    pa.field("occurred_at", TS, nullable=False),
    pa.field("actor_id", pa.string()),
]

_TYPE_FIELDS: dict[str, list[pa.Field]] = {
    "user_joined": [
        pa.field("user_id", pa.string()),
        pa.field("team_id", pa.string()),
        pa.field("email", pa.string()),
        pa.field("name", pa.string()),
        pa.field("seniority", pa.int8()),  # 1 (junior) .. 5 (principal)
        pa.field("weekly_capacity_hours", pa.float32()),
        pa.field("timezone", pa.string()),
        pa.field("skills", SKILLS),  # NUM_SKILLS proficiencies in [0, 1], in SKILL_NAMES order
    ],
    "user_left": [
        pa.field("user_id", pa.string()),
    ],
    "project_created": [
        pa.field("project_id", pa.string()),
        pa.field("team_id", pa.string()),
        pa.field("name", pa.string()),
        pa.field("priority", pa.int8()),  # 1 (low) .. 4 (critical)
        pa.field("deadline", TS),
        pa.field("required_skills", SKILLS),
    ],
    "task_created": [
        pa.field("task_id", pa.string()),
        pa.field("project_id", pa.string()),
        pa.field("title", pa.string()),
        pa.field("priority", pa.int8()),
        pa.field("estimated_hours", pa.float32()),
        pa.field("due_at", TS),
        pa.field("required_skills", SKILLS),
        pa.field("parent_task_id", pa.string()),
        pa.field("depends_on_task_id", pa.string()),
    ],
    "task_assigned": [
        pa.field("task_id", pa.string()),
        pa.field("assignee_id", pa.string()),
        pa.field("previous_assignee_id", pa.string()),  # set on a reassignment
    ],
    "task_status_changed": [
        pa.field("task_id", pa.string()),
        pa.field("from_status", pa.string()),
        pa.field("to_status", pa.string()),
    ],
    "task_completed": [
        pa.field("task_id", pa.string()),
        pa.field("assignee_id", pa.string()),
    ],
    "task_reopened": [
        pa.field("task_id", pa.string()),
    ],
    "comment_added": [
        pa.field("comment_id", pa.string()),
        pa.field("task_id", pa.string()),
        pa.field("text", pa.string()),
    ],
    "time_logged": [
        pa.field("task_id", pa.string()),
        pa.field("user_id", pa.string()),
        pa.field("hours", pa.float32()),
    ],
}

EVENT_TYPES: tuple[str, ...] = tuple(_TYPE_FIELDS)

REQUIRED: dict[str, frozenset[str]] = {
    "user_joined": frozenset({"user_id", "team_id", "email", "name"}),
    "user_left": frozenset({"user_id"}),
    "project_created": frozenset({"project_id", "team_id", "name", "priority"}),
    "task_created": frozenset({"task_id", "project_id", "title", "priority"}),
    "task_assigned": frozenset({"task_id", "assignee_id"}),
    "task_status_changed": frozenset({"task_id", "from_status", "to_status"}),
    "task_completed": frozenset({"task_id"}),
    "task_reopened": frozenset({"task_id"}),
    "comment_added": frozenset({"comment_id", "task_id", "actor_id", "text"}),
    "time_logged": frozenset({"task_id", "user_id", "hours"}),
}

# Fields our own product always fills but real trackers often lack (no estimates, no skills, no due
# dates, an assignment whose assigner was not recorded, a completion without its assignee). They are
# optional: a row without them lands, the hourly GX suite *warns* about how many lack them, and the
# features carry a null plus an ``*_known`` indicator instead of a made-up value. Where such a field
# is present, its range is checked as strictly as a required one.
EXPECTED: dict[str, frozenset[str]] = {
    "user_joined": frozenset({"seniority", "weekly_capacity_hours", "skills"}),
    "project_created": frozenset({"deadline", "required_skills"}),
    "task_created": frozenset({"estimated_hours", "due_at", "required_skills"}),
    "task_assigned": frozenset({"actor_id"}),
    "task_completed": frozenset({"assignee_id"}),
}


@dataclass(frozen=True)
class Bounds:
    """The plausible values of one numeric field; beyond them a number is a unit or entry error."""

    low: float | None
    high: float | None
    rule: str
    strict_low: bool = False

    def __str__(self) -> str:
        return self.rule


# Per event type: numeric bounds and accepted values of its fields. A row outside them is
# quarantined on its own (reason out_of_range / unknown_value), so one mistyped entry does not
# block its hour; the hourly GX suite checks the same rules on what lands.
MAX_HOURS_PER_LOG = 24.0
MAX_WEEKLY_CAPACITY_HOURS = 168.0
_PRIORITY = Bounds(1, 4, "priority is 1 (low) .. 4 (critical)")
FIELD_BOUNDS: dict[str, dict[str, Bounds]] = {
    "user_joined": {
        "seniority": Bounds(1, 5, "seniority is 1 (junior) .. 5 (principal)"),
        "weekly_capacity_hours": Bounds(0, MAX_WEEKLY_CAPACITY_HOURS, f"weekly_capacity_hours is in (0, "
                                        f"{MAX_WEEKLY_CAPACITY_HOURS:g}]", strict_low=True),
    },
    "project_created": {"priority": _PRIORITY},
    "task_created": {
        "priority": _PRIORITY,
        "estimated_hours": Bounds(0, None, "estimated_hours > 0", strict_low=True),
    },
    "time_logged": {"hours": Bounds(0, MAX_HOURS_PER_LOG, f"hours logged at once is in [0, {MAX_HOURS_PER_LOG:g}]")},
}
FIELD_VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "task_status_changed": {"from_status": TASK_STATUSES, "to_status": TASK_STATUSES},
}

PII_HASHED: dict[str, tuple[str, ...]] = {"user_joined": ("email", "name")}
FREE_TEXT: dict[str, tuple[str, ...]] = {
    "comment_added": ("text",),
    "task_created": ("title",),
    "project_created": ("name",),
}


def schema_for(event_type: str) -> pa.Schema:
    """The lake schema of one event type: envelope plus the type's own fields."""
    return pa.schema(ENVELOPE + _TYPE_FIELDS[event_type])


def required_fields(event_type: str) -> frozenset[str]:
    return frozenset({"event_id", "event_type", "occurred_at"}) | REQUIRED[event_type]


# Current-state tables derived from the event stream, kept in the lake under ``state/<name>/``.
# PII columns arrive already hashed (``*_hash``); free text arrives already scrubbed.
# Each group of columns carries the event time that set it (``created_at``, ``assigned_at``,
# ``status_changed_at``, ...), so folding an hour's events in is last-writer-wins by event
# time: idempotent and order-independent, which makes re-running any hour safe.
# Counters (hours logged, reopen counts) are not state: features compute them from events.
STATE_SCHEMAS: dict[str, pa.Schema] = {
    "users": pa.schema(
        [
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("team_id", pa.string()),
            pa.field("email_hash", pa.string()),
            pa.field("name_hash", pa.string()),
            pa.field("seniority", pa.int8()),
            pa.field("weekly_capacity_hours", pa.float32()),
            pa.field("timezone", pa.string()),
            pa.field("skills", SKILLS),
            pa.field("joined_at", TS),
            pa.field("left_at", TS),
            pa.field("updated_at", TS, nullable=False),
        ]
    ),
    "teams": pa.schema(
        [
            pa.field("team_id", pa.string(), nullable=False),
            pa.field("first_seen_at", TS, nullable=False),
            pa.field("updated_at", TS, nullable=False),
        ]
    ),
    "projects": pa.schema(
        [
            pa.field("project_id", pa.string(), nullable=False),
            pa.field("team_id", pa.string()),
            pa.field("name", pa.string()),
            pa.field("priority", pa.int8()),
            pa.field("deadline", TS),
            pa.field("required_skills", SKILLS),
            pa.field("created_at", TS),
            pa.field("updated_at", TS, nullable=False),
        ]
    ),
    "tasks": pa.schema(
        [
            pa.field("task_id", pa.string(), nullable=False),
            pa.field("project_id", pa.string()),
            pa.field("title", pa.string()),
            pa.field("priority", pa.int8()),
            pa.field("estimated_hours", pa.float32()),
            pa.field("due_at", TS),
            pa.field("required_skills", SKILLS),
            pa.field("parent_task_id", pa.string()),
            pa.field("depends_on_task_id", pa.string()),
            pa.field("reporter_id", pa.string()),  # who filed it: the actor of its task_created
            pa.field("created_at", TS),
            pa.field("status", pa.string()),
            pa.field("assignee_id", pa.string()),
            pa.field("assigned_at", TS),
            pa.field("completed_at", TS),
            pa.field("status_changed_at", TS),
            pa.field("updated_at", TS, nullable=False),
        ]
    ),
}
