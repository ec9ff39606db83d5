"""maestro_ml.ingestion.state and maestro_ml.lake.state: the state fold, last writer wins, hourly deltas and compaction."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.ingestion_support import HOUR, _state, ev, write_landing

from maestro_ml import lake, storage
from maestro_ml.contracts import events
from maestro_ml.ingestion import ingest_hour, update_state
from maestro_ml.ingestion.state import apply_events, compact
from maestro_ml.settings import Settings


def test_state_tables_are_last_writer_wins_by_event_time(settings: Settings) -> None:
    t0 = HOUR + timedelta(minutes=1)
    items = [
        ev("user_joined", t0, user_id="u_a", team_id="team_x", seniority=2),
        ev("project_created", t0, project_id="p_1", team_id="team_y", name="Apollo"),
        ev("task_created", t0, task_id="t_1", project_id="p_1", title="Parse"),
        ev("task_assigned", t0 + timedelta(minutes=2), task_id="t_1", assignee_id="u_a"),
        ev("task_assigned", t0 + timedelta(minutes=1), task_id="t_1", assignee_id="u_old"),  # older, listed later
        ev("task_status_changed", t0 + timedelta(minutes=3), task_id="t_1", to_status="in_progress"),
        ev("task_completed", t0 + timedelta(minutes=9), task_id="t_1", assignee_id="u_a"),
        ev("task_reopened", t0 + timedelta(minutes=10), task_id="t_1"),
        ev("user_left", t0 + timedelta(minutes=20), user_id="u_a"),
    ]
    write_landing(settings, "part-0000.jsonl.gz", items)
    ingest_hour(HOUR, settings)
    state = _state(settings)
    task = state["tasks"][0]
    assert (task["task_id"], task["assignee_id"], task["status"]) == ("t_1", "u_a", "todo")
    assert task["assigned_at"] == t0 + timedelta(minutes=2)
    assert task["completed_at"] == t0 + timedelta(minutes=9)
    assert task["status_changed_at"] == task["updated_at"] == t0 + timedelta(minutes=10)
    assert (task["title"], task["created_at"]) == ("Parse", t0)
    user = state["users"][0]
    assert (user["user_id"], user["team_id"], user["seniority"]) == ("u_a", "team_x", 2)
    assert (user["joined_at"], user["left_at"], user["updated_at"]) == (t0, t0 + timedelta(minutes=20), user["left_at"])
    assert [(t["team_id"], t["first_seen_at"]) for t in state["teams"]] == [("team_x", t0), ("team_y", t0)]
    assert [(p["project_id"], p["name"]) for p in state["projects"]] == [("p_1", "Apollo")]

    # Re-applying the hour changes nothing.
    ingest_hour(HOUR, settings)
    assert _state(settings) == state


def test_state_fold_is_order_independent(settings: Settings, tmp_path: Path) -> None:
    h1, h2 = HOUR, HOUR + timedelta(hours=1)
    hour1 = [
        ev("task_created", h1 + timedelta(minutes=1), task_id="t_1", title="old title"),
        ev("task_status_changed", h1 + timedelta(minutes=30), task_id="t_1", to_status="blocked"),
        ev("user_joined", h1, user_id="u_a", seniority=1),
    ]
    hour2 = [
        ev("task_status_changed", h1 + timedelta(minutes=20), task_id="t_1", to_status="in_review"),  # late, older
        ev("task_completed", h2 + timedelta(minutes=5), task_id="t_1"),
        ev("task_completed", h2 + timedelta(minutes=5), task_id="t_1"),  # same time, same status
        ev("user_joined", h2, user_id="u_a", seniority=4),
    ]
    write_landing(settings, "part-0000.jsonl.gz", hour1, hour=h1)
    write_landing(settings, "part-0000.jsonl.gz", hour2, hour=h2)
    m1 = ingest_hour(h1, settings, apply_state=False)
    m2 = ingest_hour(h2, settings, apply_state=False)
    update_state(m1, settings)
    update_state(m2, settings)
    expected = _state(settings)

    # The other order, an hour applied twice, and a compaction in between: the same state.
    backward = str(tmp_path / "other-lake")
    hour1_tables, hour2_tables = _tables_of_manifest(m1), _tables_of_manifest(m2)
    apply_events(backward, hour2_tables, h2)
    for name in events.STATE_SCHEMAS:
        compact(backward, name)
    apply_events(backward, hour1_tables, h1)
    apply_events(backward, hour2_tables, h2)
    assert {name: lake.read_state(backward, name).to_pylist() for name in events.STATE_SCHEMAS} == expected
    task = expected["tasks"][0]
    assert (task["title"], task["status"], task["completed_at"]) == ("old title", "done", h2 + timedelta(minutes=5))
    assert expected["users"][0]["seniority"] == 4


def test_state_deltas_cost_the_hour_merge_into_daily_runs_and_runs_into_a_base(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from maestro_ml.ingestion import state as state_module

    monkeypatch.setattr(state_module, "COMPACT_AFTER", 2)  # hourly deltas per run
    monkeypatch.setattr(state_module, "RUNS_PER_BASE", 2)  # runs per base rewrite
    key = [lake.hour_key(HOUR + timedelta(hours=k)) for k in range(5)]
    files_after: list[list[str]] = []
    for k in range(5):
        hour = HOUR + timedelta(hours=k)
        items = [
            ev("task_created", hour, task_id=f"t_{k}"),
            ev("task_status_changed", hour, task_id="t_0", to_status=events.TASK_STATUSES[k % 5]),
        ]
        write_landing(settings, "part-0000.jsonl.gz", items, hour=hour)
        manifest = ingest_hour(hour, settings)
        assert manifest["state"]["rows_touched"]["tasks"] == (1 if k == 0 else 2)
        files_after.append([Path(u).stem for u in lake.state_delta_uris(settings.lake_uri, "tasks")])
    assert files_after[:3] == [[key[0]], [f"{key[0]}-{key[1]}"], [f"{key[0]}-{key[1]}", key[2]]]
    # Hour 3 closed the second run, and two runs went into the base; hour 4 is a delta.
    assert storage.exists(lake.state_base_uri(settings.lake_uri, "tasks"))
    assert files_after[3:] == [[], [key[4]]]
    tasks = lake.read_state(settings.lake_uri, "tasks").to_pylist()
    assert [t["task_id"] for t in tasks] == [f"t_{k}" for k in range(5)]
    assert tasks[0]["status"] == events.TASK_STATUSES[4]  # the latest status change, from a delta

    # The same hours folded without compaction give the same state.
    monkeypatch.setattr(state_module, "COMPACT_AFTER", 1000)
    other = str(tmp_path / "no-compaction")
    for k in range(5):
        manifest = lake.read_manifest(settings.lake_uri, HOUR + timedelta(hours=k))
        assert manifest is not None
        apply_events(other, _tables_of_manifest(manifest), HOUR + timedelta(hours=k))
    assert lake.read_state(other, "tasks").to_pylist() == tasks


def _tables_of_manifest(manifest: dict[str, Any]) -> dict[str, pa.Table]:
    tables: dict[str, list[pa.Table]] = {}
    for entry in manifest["outputs"]["data"]:
        tables.setdefault(entry["event_type"], []).append(pq.read_table(entry["path"]))
    return {t: pa.concat_tables(parts) for t, parts in tables.items()}
