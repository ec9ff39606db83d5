"""Plain helpers shared by the ingestion tests (tests/unit/test_ingestion_*.py): event builders, landing files, lake reads.

Imported as ``from tests.ingestion_support import ...`` (the repository root is on pytest's pythonpath;
``tests`` is a namespace package). The ``settings`` fixture lives in tests/unit/conftest.py.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from maestro_ml import lake, storage
from maestro_ml.contracts import events
from maestro_ml.ingestion import landing_hour_dir
from maestro_ml.settings import Settings

HOUR = datetime(2026, 11, 2, 13, tzinfo=UTC)
KEY = "unit-test-pii-key"
SKILLS = [0.5] * events.NUM_SKILLS


# --------------------------------------------------------------------------- builders


def ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_COUNTER = iter(range(10**9))


def ev(event_type: str, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """A valid event of ``event_type`` (every required field filled); ``fields`` override."""
    n = next(_COUNTER)
    base: dict[str, Any] = {
        "event_id": f"evt-{n:08d}",
        "event_type": event_type,
        "occurred_at": ts(at or HOUR + timedelta(minutes=5)),
        "actor_id": "u_0001",
    }
    defaults: dict[str, dict[str, Any]] = {
        "user_joined": {
            "user_id": f"u_{n:04d}",
            "team_id": "team_01",
            "email": f"Person.{n}@Example.com",
            "name": f"Person {n}",
            "seniority": 3,
            "weekly_capacity_hours": 40,
            "timezone": "Europe/Berlin",
            "skills": SKILLS,
        },
        "user_left": {"user_id": "u_0001"},
        "project_created": {
            "project_id": "p_01",
            "team_id": "team_01",
            "name": "Apollo",
            "priority": 2,
            "deadline": ts(HOUR + timedelta(days=30)),
            "required_skills": SKILLS,
        },
        "task_created": {
            "task_id": f"t_{n:05d}",
            "project_id": "p_01",
            "title": "Write the parser",
            "priority": 3,
            "estimated_hours": 4.5,
            "due_at": ts(HOUR + timedelta(days=3)),
            "required_skills": SKILLS,
        },
        "task_assigned": {"task_id": "t_00001", "assignee_id": "u_0002"},
        "task_status_changed": {"task_id": "t_00001", "from_status": "todo", "to_status": "in_progress"},
        "task_completed": {"task_id": "t_00001", "assignee_id": "u_0002"},
        "task_reopened": {"task_id": "t_00001"},
        "comment_added": {"comment_id": f"c_{n:05d}", "task_id": "t_00001", "text": "Looks good"},
        "time_logged": {"task_id": "t_00001", "user_id": "u_0002", "hours": 1.5},
    }
    base.update(defaults.get(event_type, {}))
    base.update(fields)
    return base


def line_of(item: dict[str, Any] | str | bytes) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode()
    return json.dumps(item).encode()


def write_landing(
    settings: Settings,
    name: str,
    items: list[dict[str, Any] | str | bytes],
    hour: datetime = HOUR,
    members: int = 1,
    cut_last_member_at: float | None = None,
) -> str:
    """A gzip JSONL landing file of ``members`` members; optionally cut the last member short."""
    lines = [line_of(i) + b"\n" for i in items]
    size = max(1, -(-len(lines) // members))
    chunks = [gzip.compress(b"".join(lines[i : i + size]), mtime=0) for i in range(0, len(lines), size)] or [
        gzip.compress(b"", mtime=0)
    ]
    if cut_last_member_at is not None:
        last = chunks[-1]
        chunks[-1] = last[: int(len(last) * cut_last_member_at)]
    uri = f"{landing_hour_dir(settings.landing_uri, hour)}/{name}"
    storage.write_bytes_atomic(uri, b"".join(chunks))
    return uri


# --------------------------------------------------------------------------- lake reads


def all_events(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    return {t: lake.read_events(settings.lake_uri, t).to_pylist() for t in events.EVENT_TYPES}


def event_ids(settings: Settings) -> set[str]:
    return {row["event_id"] for rows in all_events(settings).values() for row in rows}


def quarantine_rows(settings: Settings, hour: datetime = HOUR) -> list[dict[str, Any]]:
    return lake.read_quarantine(settings.lake_uri, hour, hour + timedelta(hours=1)).to_pylist()


def _state(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    return {name: lake.read_state(settings.lake_uri, name).to_pylist() for name in events.STATE_SCHEMAS}
