"""The Great Expectations gates: clean data passes, each class of defect is caught at the right severity."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from maestro_ml.contracts.events import EVENT_TYPES, NUM_SKILLS, STATE_SCHEMAS, schema_for
from maestro_ml.settings import get_settings
from maestro_ml.validation import (
    DataValidationError,
    ValidationOutcome,
    raise_for_critical,
    validate_events,
    validate_state,
)

START = dt.datetime(2026, 11, 2, 13, tzinfo=dt.UTC)
END = START + dt.timedelta(hours=1)
SKILLS = [0.5] * NUM_SKILLS
HASH = "9f" * 32


@pytest.fixture(autouse=True)
def reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAESTRO_REPORTS_URI", str(tmp_path / "reports"))
    get_settings.cache_clear()
    return tmp_path / "reports"


def _at(minute: int) -> dt.datetime:
    return START + dt.timedelta(minutes=minute)


def _event(event_type: str, n: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"{event_type}-{n}",
        "event_type": event_type,
        "occurred_at": _at(n),
        "actor_id": "u1",
        **fields,
    }


def clean_rows() -> dict[str, list[dict[str, Any]]]:
    """A consistent hour: state knows users u1, u2, tasks t1, t2 and project p1; this hour adds u3, t3 and p2."""
    return {
        "user_joined": [
            _event(
                "user_joined",
                1,
                user_id="u3",
                team_id="team1",
                email=HASH,
                name=HASH,
                seniority=3,
                weekly_capacity_hours=40.0,
                timezone="Europe/Berlin",
                skills=SKILLS,
            )
        ],
        "user_left": [_event("user_left", 2, user_id="u2")],
        "project_created": [
            _event(
                "project_created",
                3,
                project_id="p2",
                team_id="team1",
                name="Apollo",
                priority=2,
                deadline=END + dt.timedelta(days=30),
                required_skills=SKILLS,
            )
        ],
        "task_created": [
            _event(
                "task_created",
                4,
                task_id="t3",
                project_id="p2",
                title="Write the launch plan",
                priority=3,
                estimated_hours=5.0,
                due_at=END + dt.timedelta(days=7),
                required_skills=SKILLS,
                parent_task_id="t1",
            )
        ],
        "task_assigned": [
            _event("task_assigned", 5, task_id="t3", assignee_id="u3"),
            _event("task_assigned", 6, task_id="t1", assignee_id="u1", previous_assignee_id="u2"),
        ],
        "task_status_changed": [
            _event("task_status_changed", 7, task_id="t1", from_status="todo", to_status="in_progress"),
            _event("task_status_changed", 8, task_id="t3", from_status="in_progress", to_status="in_review"),
        ],
        "task_completed": [_event("task_completed", 9, task_id="t2", assignee_id="u1")],
        "task_reopened": [_event("task_reopened", 10, task_id="t2")],
        "comment_added": [_event("comment_added", 11, comment_id="c1", task_id="t3", text="Looks good")],
        "time_logged": [
            _event("time_logged", 12, task_id="t1", user_id="u1", hours=1.5),
            _event("time_logged", 13, task_id="t3", user_id="u3", hours=0.25),
            _event("time_logged", 14, task_id="t2", user_id="u1", hours=3.0),
        ],
    }


KNOWN = {"tasks": ["t1", "t2"], "users": ["u1", "u2"], "projects": ["p1"]}


def tables_of(rows: dict[str, list[dict[str, Any]]]) -> dict[str, pa.Table]:
    return {name: pa.Table.from_pylist(r, schema=schema_for(name)) for name, r in rows.items()}


def run_events(rows: dict[str, list[dict[str, Any]]] | None = None, **kwargs: Any) -> ValidationOutcome:
    params: dict[str, Any] = {"trailing_volumes": [15, 16, 14], "known_ids": KNOWN, "run_name": "test_run"}
    params.update(kwargs)
    return validate_events(tables_of(rows if rows is not None else clean_rows()), START, END, **params)


def failure(failures: list[dict[str, Any]], suite: str, expectation: str, column: str | None) -> dict[str, Any]:
    matches = [
        f for f in failures if f["suite"] == suite and f["expectation_type"] == expectation and f["column"] == column
    ]
    assert matches, f"no {suite} {expectation} failure on {column!r} in {json.dumps(failures, indent=1)}"
    return matches[0]


def test_clean_hour_passes_with_data_docs(reports: Path) -> None:
    outcome = run_events()

    assert outcome.success, outcome.describe()
    assert outcome.critical_failures == [] and outcome.warnings == []
    assert outcome.statistics["total_rows"] == 14
    assert outcome.statistics["skipped_checks"] == []
    assert outcome.statistics["known_ids"] == {"tasks": 3, "users": 3, "projects": 2}  # state + this hour
    # every suite ran: the schema, the envelope of the whole hour and one per event type
    assert set(outcome.statistics["suites"]) == {"events.schema", "events.envelope"} | {
        f"events.{t}" for t in EVENT_TYPES
    }
    assert outcome.statistics["evaluated_expectations"] == outcome.statistics["successful_expectations"] > 60

    index = Path(outcome.data_docs_path or "")
    assert index == reports / "gx" / "data_docs" / "index.html"
    assert index.is_file() and "events.envelope" in index.read_text()
    page = Path(outcome.data_docs_pages["events.time_logged"])
    assert page.is_file() and page.is_relative_to(index.parent)
    assert "test_run" in str(page)
    json.dumps(outcome.to_dict())  # XCom-safe
    assert raise_for_critical(outcome) is outcome


def _set(rows: dict[str, list[dict[str, Any]]], table: str, index: int, **fields: Any) -> None:
    rows[table][index].update(fields)


def _extra(rows: dict[str, list[dict[str, Any]]], table: str, n: int, **fields: Any) -> None:
    """Append a clean copy of the table's first event under a new id, with ``fields`` changed."""
    rows[table].append({**rows[table][0], "event_id": f"{table}-{n}", "occurred_at": _at(n), **fields})


# Every critical defect class, each planted in its own event so that one GX run shows them all:
# (suite, expectation type, contract column) -> (events to add: (table, n, changed fields), a value GX must report)
Plants = list[tuple[str, int, dict[str, Any]]]
CRITICAL_DEFECTS: dict[tuple[str, str, str | None], tuple[Plants, Any]] = {
    ("events.envelope", "expect_column_values_to_not_be_null", "event_id"): (
        [("comment_added", 20, {"event_id": None})],
        None,
    ),
    ("events.task_assigned", "expect_column_values_to_not_be_null", "assignee_id"): (
        [("task_assigned", 21, {"assignee_id": None})],
        None,
    ),
    ("events.task_status_changed", "expect_column_values_to_be_in_set", "to_status"): (
        [("task_status_changed", 22, {"to_status": "archived"})],
        "archived",
    ),
    ("events.envelope", "expect_column_values_to_be_unique", "event_id"): (
        [("time_logged", 23, {"event_id": "comment_added-11"})],
        "comment_added-11",
    ),
    ("events.envelope", "expect_column_values_to_be_between", "occurred_at"): (
        [
            ("task_reopened", 24, {"occurred_at": START - dt.timedelta(hours=49)}),  # beyond allowed lateness
            ("task_reopened", 25, {"occurred_at": END + dt.timedelta(minutes=11)}),  # beyond future tolerance
        ],
        None,
    ),
    ("events.time_logged", "expect_column_values_to_be_between", "hours"): (
        [("time_logged", 26, {"hours": -2.0}), ("time_logged", 27, {"hours": 30.0})],
        -2.0,
    ),
    ("events.task_created", "expect_column_values_to_be_between", "estimated_hours"): (
        [("task_created", 28, {"task_id": "t4", "estimated_hours": 0.0})],
        0.0,
    ),
    ("events.project_created", "expect_column_values_to_be_between", "priority"): (
        [("project_created", 29, {"project_id": "p3", "priority": 7})],
        7,
    ),
    ("events.envelope", "expect_column_pair_values_to_be_equal", "event_type"): (
        [("task_reopened", 32, {"event_type": "task_completed"})],
        None,
    ),
    ("events.user_joined", "expect_column_values_to_not_match_regex", "email"): (
        [("user_joined", 33, {"user_id": "u4", "email": "jane@example.com"})],
        "jane@example.com",
    ),
}


def test_each_critical_defect_fails_naming_its_expectation() -> None:
    rows = clean_rows()
    for plants, _ in CRITICAL_DEFECTS.values():
        for table, n, fields in plants:
            _extra(rows, table, n, **fields)

    outcome = run_events(rows)

    assert not outcome.success
    found = {(f["suite"], f["expectation_type"], f["column"]): f for f in outcome.critical_failures}
    # exactly the planted defects, each named by its suite, expectation and column; nothing else blamed
    assert set(found) == set(CRITICAL_DEFECTS), outcome.describe()
    assert len(outcome.critical_failures) == len(CRITICAL_DEFECTS)
    for key, (_, bad_value) in CRITICAL_DEFECTS.items():
        assert found[key]["severity"] == "critical"
        assert found[key]["unexpected_count"] >= 1, key
        if bad_value is not None:
            assert bad_value in found[key]["sample"], (key, found[key])
    assert found["events.envelope", "expect_column_values_to_be_between", "occurred_at"]["unexpected_count"] == 2
    assert found["events.time_logged", "expect_column_values_to_be_between", "hours"]["unexpected_count"] == 2
    assert outcome.warnings == []

    duplicate = found["events.envelope", "expect_column_values_to_be_unique", "event_id"]
    assert {r["table"] for r in duplicate["sample_rows"]} == {"comment_added", "time_logged"}

    with pytest.raises(DataValidationError) as raised:
        raise_for_critical(outcome)
    assert f"{len(CRITICAL_DEFECTS)} critical expectation(s) failed" in str(raised.value)


def test_orphan_references_in_an_hour_warn_with_the_orphans_named() -> None:
    """Out-of-order arrival and quarantined creators make hourly orphans normal: reported, not blocking."""
    rows = clean_rows()
    _extra(rows, "time_logged", 30, task_id="t-ghost")
    _extra(rows, "task_assigned", 31, assignee_id="u-ghost")

    outcome = run_events(rows)

    assert outcome.success and outcome.critical_failures == []
    orphans = failure(outcome.warnings, "events.time_logged", "expect_column_values_to_be_null", "task_id")
    assert orphans["check"] == "referential_integrity" and orphans["severity"] == "warning"
    assert orphans["sample"] == ["t-ghost"] and orphans["unexpected_count"] == 1
    assert orphans["sample_rows"] == [{"event_id": "time_logged-30"}]
    assert "time_logged-30" in orphans["summary"]
    assignee = failure(outcome.warnings, "events.task_assigned", "expect_column_values_to_be_null", "assignee_id")
    assert assignee["sample"] == ["u-ghost"]


def test_without_known_ids_references_are_skipped_not_failed() -> None:
    rows = clean_rows()
    _set(rows, "time_logged", 0, task_id="t-ghost")

    outcome = run_events(rows, known_ids=None)
    assert outcome.success
    skipped = outcome.statistics["skipped_checks"]
    assert any("time_logged.task_id -> tasks" in s for s in skipped)
    assert any("task_assigned.assignee_id -> users" in s for s in skipped)
    assert "events.time_logged" in outcome.statistics["suites"]
    # the alias keys and state tables are accepted as known ids
    tasks = pa.table({"task_id": ["t1", "t2"]})
    checked = run_events(rows, known_ids={"task_id": tasks, "user_ids": ["u1", "u2"], "projects": ["p1"]})
    assert failure(checked.warnings, "events.time_logged", "expect_column_values_to_be_null", "task_id")["sample"] == [
        "t-ghost"
    ]


def test_schema_drift_is_critical_and_names_the_column() -> None:
    tables = tables_of(clean_rows())
    logged = tables["time_logged"]
    tables["time_logged"] = logged.set_column(
        logged.schema.get_field_index("hours"), "hours", pa.array(["1.5", "0.25", "3"])
    )
    tables["comment_added"] = tables["comment_added"].drop_columns(["text"])
    tables["task_deleted"] = pa.table(  # no such event type in the contract
        {
            "event_id": ["x1"],
            "event_type": ["task_deleted"],
            "occurred_at": pa.array([_at(5)], pa.timestamp("us", "UTC")),
        }
    )

    outcome = validate_events(tables, START, END, trailing_volumes=[], known_ids=KNOWN, run_name="drift")

    schema = failure(outcome.critical_failures, "events.schema", "expect_column_values_to_be_in_set", None)
    assert set(schema["sample"]) == {"time_logged.hours:string", "comment_added.text:<missing>"}
    # the missing required text also fails its not-null check, and hours as text cannot be range-checked
    failure(outcome.critical_failures, "events.comment_added", "expect_column_values_to_not_be_null", "text")
    hours = failure(outcome.critical_failures, "events.time_logged", "expect_column_values_to_be_between", "hours")
    assert "could not be evaluated" in hours["summary"]
    unknown = failure(outcome.critical_failures, "events.envelope", "expect_column_values_to_be_in_set", "event_type")
    assert unknown["sample"] == ["task_deleted"]
    assert len(outcome.critical_failures) == 4, outcome.describe()


def test_missing_optional_fields_warn_while_a_present_one_out_of_range_still_blocks() -> None:
    """Real trackers lack estimates, due dates, skills and assigners: their absence is reported, never blocking."""
    rows = clean_rows()
    _extra(rows, "task_created", 40, task_id="t5", estimated_hours=None, due_at=None, required_skills=None)
    _extra(rows, "task_assigned", 41, actor_id=None)
    _extra(rows, "task_completed", 42, assignee_id=None)
    _extra(rows, "user_joined", 43, user_id="u5", seniority=None, weekly_capacity_hours=None, skills=None)

    outcome = run_events(rows)

    assert outcome.success and outcome.critical_failures == [], outcome.describe()
    for suite, column in [("events.task_created", "estimated_hours"), ("events.task_created", "due_at"),
                          ("events.task_created", "required_skills"), ("events.task_assigned", "actor_id"),
                          ("events.task_completed", "assignee_id"), ("events.user_joined", "seniority"),
                          ("events.user_joined", "weekly_capacity_hours"), ("events.user_joined", "skills")]:
        missing = failure(outcome.warnings, suite, "expect_column_values_to_not_be_null", column)
        assert missing["check"] == "completeness" and missing["severity"] == "warning"
        assert missing["unexpected_count"] == 1, (suite, column)

    _extra(rows, "task_created", 44, task_id="t6", estimated_hours=-3.0, due_at=None)
    blocked = run_events(rows)
    assert not blocked.success
    assert failure(blocked.critical_failures, "events.task_created", "expect_column_values_to_be_between",
                   "estimated_hours")["sample"] == [-3.0]


def test_warning_only_issue_keeps_success() -> None:
    outcome = run_events(trailing_volumes=[1000, 1100, 900, 1000])  # 14 events against ~1000 an hour

    assert outcome.success and outcome.critical_failures == []
    volume = failure(outcome.warnings, "events.envelope", "expect_table_row_count_to_be_between", None)
    assert volume["check"] == "volume" and volume["severity"] == "warning"
    assert volume["observed_value"] == 14
    assert outcome.statistics["volume"]["bounds"] == [200, 5000]
    assert raise_for_critical(outcome) is outcome


def test_stale_hour_and_short_history_are_not_blocking() -> None:
    rows = clean_rows()
    for events in rows.values():
        for e in events:
            e["occurred_at"] = START - dt.timedelta(hours=3)  # late but within the allowed lateness

    outcome = run_events(rows, trailing_volumes=[15])

    assert outcome.success
    stale = failure(outcome.warnings, "events.envelope", "expect_column_max_to_be_between", "occurred_at")
    assert stale["check"] == "freshness"
    assert outcome.statistics["volume"]["bounds"] is None
    assert any(s.startswith("volume:") for s in outcome.statistics["skipped_checks"])


def test_raise_for_critical_message_lists_failures_and_data_docs() -> None:
    rows = clean_rows()
    _set(rows, "time_logged", 1, hours=-2.0)
    _set(rows, "task_assigned", 1, to_status="archived", event_type="task_status_changed")
    _set(rows, "task_status_changed", 1, to_status="archived")
    outcome = run_events(rows)

    with pytest.raises(DataValidationError) as raised:
        raise_for_critical(outcome)

    message = str(raised.value)
    assert raised.value.outcome is outcome
    assert f"{len(outcome.critical_failures)} critical expectation(s) failed" in message
    assert len(outcome.critical_failures) >= 2
    assert "events.time_logged.hours expect_column_values_to_be_between" in message
    assert "events.task_status_changed.to_status expect_column_values_to_be_in_set" in message
    assert "archived" in message
    assert f"Data Docs: {outcome.data_docs_path}" in message
    assert Path(outcome.data_docs_path or "").is_file()


def test_pandas_input_and_empty_hour() -> None:
    frames = {name: t.to_pandas() for name, t in tables_of(clean_rows()).items()}
    frames["time_logged"]["hours"] = [2, 1, 3]  # integers are a lossless cast to the float contract
    assert validate_events(frames, START, END, trailing_volumes=[], known_ids=KNOWN, run_name="pd").success

    empty = validate_events({}, START, END, trailing_volumes=[10, 12, 11], known_ids=KNOWN, run_name="empty")
    assert empty.success and empty.statistics["total_rows"] == 0
    assert {w["check"] for w in empty.warnings} == {"volume", "freshness"}


def state_rows() -> dict[str, list[dict[str, Any]]]:
    ts = START
    return {
        "teams": [{"team_id": "team1", "first_seen_at": ts, "updated_at": ts}],
        "users": [
            {"user_id": u, "team_id": "team1", "seniority": 2, "weekly_capacity_hours": 40.0, "updated_at": ts}
            for u in ("u1", "u2")
        ],
        "projects": [{"project_id": "p1", "team_id": "team1", "priority": 2, "updated_at": ts}],
        "tasks": [
            {"task_id": "t1", "project_id": "p1", "status": "todo", "estimated_hours": 3.0, "updated_at": ts},
            {
                "task_id": "t2",
                "project_id": "p1",
                "status": "in_progress",
                "estimated_hours": 1.0,
                "assignee_id": "u1",
                "parent_task_id": "t1",
                "updated_at": ts,
            },
        ],
    }


def run_state(rows: dict[str, list[dict[str, Any]]]) -> ValidationOutcome:
    tables = {name: pa.Table.from_pylist(r, schema=STATE_SCHEMAS[name]) for name, r in rows.items()}
    return validate_state(tables, run_name="state_run")


def test_clean_state_passes() -> None:
    outcome = run_state(state_rows())
    assert outcome.success, outcome.describe()
    assert outcome.warnings == [] and outcome.statistics["skipped_checks"] == []
    assert set(outcome.statistics["suites"]) == {"state.schema"} | {f"state.{t}" for t in STATE_SCHEMAS}
    assert Path(outcome.data_docs_path or "").is_file()


STATE_CASES = {
    "duplicate primary key": (
        lambda r: r["users"].append(dict(r["users"][0])),
        ("state.users", "expect_column_values_to_be_unique", "user_id"),
    ),
    "null primary key": (
        lambda r: r["projects"].append({"project_id": None, "team_id": "team1", "updated_at": START}),
        ("state.projects", "expect_column_values_to_not_be_null", "project_id"),
    ),
    "task in unknown project": (
        lambda r: r["tasks"][0].update(project_id="p-ghost"),
        ("state.tasks", "expect_column_values_to_be_null", "project_id"),
    ),
    "task assigned to unknown user": (
        lambda r: r["tasks"][0].update(assignee_id="u-ghost"),
        ("state.tasks", "expect_column_values_to_be_null", "assignee_id"),
    ),
    "user in unknown team": (
        lambda r: r["users"][1].update(team_id="team-ghost"),
        ("state.users", "expect_column_values_to_be_null", "team_id"),
    ),
    "project in unknown team": (
        lambda r: r["projects"][0].update(team_id="team-ghost"),
        ("state.projects", "expect_column_values_to_be_null", "team_id"),
    ),
    "bad status": (
        lambda r: r["tasks"][1].update(status="cancelled"),
        ("state.tasks", "expect_column_values_to_be_in_set", "status"),
    ),
    "zero capacity": (
        lambda r: r["users"][0].update(weekly_capacity_hours=0.0),
        ("state.users", "expect_column_values_to_be_between", "weekly_capacity_hours"),
    ),
    "seniority out of range": (
        lambda r: r["users"][0].update(seniority=6),
        ("state.users", "expect_column_values_to_be_between", "seniority"),
    ),
}


def test_each_state_defect_is_critical_and_secondary_links_warn() -> None:
    rows = state_rows()
    for plant, _ in STATE_CASES.values():
        plant(rows)
    rows["tasks"][1]["parent_task_id"] = "t-ghost"

    outcome = run_state(rows)

    assert not outcome.success
    found = {(f["suite"], f["expectation_type"], f["column"]) for f in outcome.critical_failures}
    assert found == {key for _, key in STATE_CASES.values()}, outcome.describe()
    warning = failure(outcome.warnings, "state.tasks", "expect_column_values_to_be_null", "parent_task_id")
    assert warning["sample"] == ["t-ghost"] and len(outcome.warnings) == 1


def test_data_docs_index_lists_every_run(reports: Path) -> None:
    first = run_events(run_name="hour_13")
    second = run_events(run_name="hour_14")
    index = Path(second.data_docs_path or "")
    assert first.data_docs_path == second.data_docs_path
    html = index.read_text()
    assert "hour_13" in html and "hour_14" in html
    assert Path(first.data_docs_pages["events.envelope"]).is_file()
    assert (reports / "gx" / "validations").is_dir()


def test_results_retention_keeps_the_newest_and_docs_still_build(reports: Path) -> None:
    """GX re-reads every stored result when it builds Data Docs: the store is bounded so hour N costs what hour 1 did."""
    from maestro_ml.settings import get_settings
    from maestro_ml.validation.context import prune_results

    for i in range(3):
        run_events(run_name=f"retention_{i}")
    stored = sorted((reports / "gx" / "validations").rglob("*.json"), key=lambda p: p.stat().st_mtime)
    per_run = len(stored) // 3
    assert per_run >= 1
    removed = prune_results(get_settings(), keep=per_run)
    remaining = sorted((reports / "gx" / "validations").rglob("*.json"))
    assert removed == len(stored) - per_run
    assert set(remaining) == set(stored[-per_run:])
    latest = run_events(run_name="retention_3")
    assert latest.data_docs_path and "retention_3" in Path(latest.data_docs_path).read_text()


def test_building_each_expectation_configuration_once_changes_no_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib

    from maestro_ml.validation import context

    rows = clean_rows()
    _set(rows, "time_logged", 1, hours=-2.0)
    _set(rows, "task_status_changed", 1, to_status="archived")
    cached = run_events(rows)
    monkeypatch.setattr(context, "_configurations_built_once", contextlib.nullcontext)
    built_every_time = run_events(rows)
    assert len(cached.critical_failures) >= 2
    assert (cached.success, cached.critical_failures, cached.warnings) == (
        built_every_time.success, built_every_time.critical_failures, built_every_time.warnings)
