"""ingest_events through real Airflow (dag.test on Postgres metadata) on simulator data."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest

from maestro_ml import lake, storage
from maestro_ml.settings import get_settings
from maestro_ml.simulation import config_for_preset, simulate

# 20:00: the first four hours close a day, so the first range run also announces it.
START = datetime(2026, 11, 1, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def simulated():
    settings = get_settings()
    return simulate(config_for_preset("tiny", start=START, days=1, seed=11), settings.landing_uri, settings.truth_uri)


def _partition(hour: datetime) -> dict:
    return {"partition": hour.strftime("%Y-%m-%dT%H")}


def _lake_rows(hour: datetime) -> dict[str, list[dict]]:
    manifest = lake.read_manifest(get_settings().lake_uri, hour)
    assert manifest is not None
    rows: dict[str, list[dict]] = {}
    for entry in manifest["outputs"]["data"]:
        rows.setdefault(entry["event_type"], []).extend(pq.read_table(entry["path"]).to_pylist())
    return {k: sorted(v, key=lambda r: r["event_id"]) for k, v in rows.items()}


def test_hours_ingest_with_conservation_and_state(run_dag, task_states, simulated) -> None:
    settings = get_settings()
    # One range run of four hours: each hour committed on its own (test_ingest_range compares the two paths).
    before = _lake_events()
    dag_run = run_dag("ingest_events", conf={"start": "2026-11-01T20", "end": "2026-11-02T00"})
    assert str(dag_run.state) == "success", task_states(dag_run)
    # 23:00 committed: the day is complete, so the lake_events Asset is updated (build_features runs).
    assert _lake_events() == before + 1
    for i in range(4):
        hour = START + timedelta(hours=i)
        manifest = lake.read_manifest(settings.lake_uri, hour)
        assert manifest is not None
        quarantined = sum(manifest["rows_quarantined_by_reason"].values())
        assert manifest["lines_in"] == manifest["rows_valid"] + manifest["rows_duplicate"] + quarantined
        assert manifest["files_read"], "the hour's landing files are recorded"
    assert lake.read_state(settings.lake_uri, "users").num_rows > 0
    assert lake.read_state(settings.lake_uri, "tasks").num_rows > 0
    # Great Expectations Data Docs were written under the local state directory.
    assert storage.glob(f"{settings.reports_uri}/gx/data_docs/index.html")


def test_reingesting_an_hour_changes_nothing(run_dag, simulated) -> None:
    hour = START + timedelta(hours=1)
    assert str(run_dag("ingest_events", conf=_partition(hour)).state) == "success"
    before = _lake_rows(hour)
    assert str(run_dag("ingest_events", conf=_partition(hour)).state) == "success"
    assert _lake_rows(hour) == before
    assert sum(len(v) for v in before.values()) > 0


def test_critical_validation_failure_fails_the_run_and_blocks_downstream(
    run_dag, task_states, simulated, monkeypatch
) -> None:
    from maestro_ml.contracts import events

    # The row checks quarantine an unknown status on their own; with them blind to it (a bug
    # upstream of the gate), the GX gate inside ingest_hours is what stops the hour.
    monkeypatch.setattr(events, "FIELD_VALUES", {})
    settings = get_settings()
    hour = START + timedelta(days=3)
    event = {
        "event_id": "bad-status-1",
        "event_type": "task_status_changed",
        "occurred_at": (hour + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "actor_id": "u_x",
        "task_id": "t_x",
        "from_status": "todo",
        "to_status": "archived",  # parses fine, but is not an accepted status
    }
    target = f"{settings.landing_uri}/events/dt={hour:%Y-%m-%d}/hour={hour:%H}/part-0000.jsonl.gz"
    storage.write_bytes_atomic(target, gzip.compress((json.dumps(event) + "\n").encode()))

    dag_run = run_dag("ingest_events", conf=_partition(hour))

    states = task_states(dag_run)
    assert str(dag_run.state) == "failed"
    # The GX gate runs inside ingest_hours, between dedupe and each hour's commit.
    assert states["ingest_hours"] == "failed"
    assert lake.read_manifest(settings.lake_uri, hour) is None, "a failed hour must not be committed"


def test_an_impossible_partition_fails_the_first_task_at_once_without_retries(run_dag, task_states, task_tries) -> None:
    # Passes the Param's pattern (it allows February 29), but 2027 is not a leap year.
    dag_run = run_dag("ingest_events", conf={"partition": "2027-02-29T09"})

    states = task_states(dag_run)
    assert str(dag_run.state) == "failed"
    assert states["plan_hours"] == "failed"
    assert task_tries(dag_run)["plan_hours"] == 1, "a bad Param must not be retried"
    assert states["ingest_hours"] == "upstream_failed", states


def _lake_events() -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(
            select(func.count()).select_from(AssetEvent).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "lake_events")
        )


def test_a_scheduled_run_catches_up_every_hour_after_the_newest_commit(run_dag, task_states, simulated) -> None:
    settings = get_settings()
    from maestro_ml.ingestion import list_hour_files

    newest = max(lake.committed_hours(settings.lake_uri))
    behind = [newest + timedelta(hours=h) for h in range(1, 5)]
    landed = [h for h in behind if list_hour_files(settings.landing_uri, h)]
    assert landed, "the simulated day has files after the hours the first test committed"
    # A scheduled run's hour is its data interval start (the run is made when that hour has closed).
    run = run_dag("ingest_events", logical_date=behind[-1] + timedelta(hours=1))
    assert str(run.state) == "success", task_states(run)
    assert run.data_interval_start == behind[-1]
    assert [h for h in behind if lake.read_manifest(settings.lake_uri, h)] == landed


def test_a_range_run_backfills_every_hour_and_a_day_still_filling_sets_off_nothing(
    run_dag, task_states, simulated
) -> None:
    settings = get_settings()
    before = _lake_events()
    run = run_dag("ingest_events", conf={"start": "2026-11-02T04", "end": "2026-11-02T08"})
    assert str(run.state) == "success", task_states(run)
    assert all(lake.read_manifest(settings.lake_uri, START + timedelta(hours=h)) for h in range(8, 12))
    # 2026-11-02 is not complete yet: features are built once it is, not once per run.
    assert task_states(run)["ingest_hours"] == "success"
    assert _lake_events() == before, "no lake_events update for a day still filling"


def test_an_hour_without_files_is_skipped_and_sets_off_nothing(run_dag, task_states) -> None:
    before = _lake_events()
    run = run_dag("ingest_events", conf={"partition": "2026-10-01T03"})  # nothing landed then
    states = task_states(run)
    assert states["plan_hours"] == "skipped"
    assert states["ingest_hours"] == "skipped"
    assert lake.read_manifest(get_settings().lake_uri, "2026-10-01T03") is None
    assert _lake_events() == before, "no asset event, so no feature build on nothing"
