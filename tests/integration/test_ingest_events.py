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

START = datetime(2026, 11, 2, tzinfo=UTC)


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
    for i in range(4):
        hour = START + timedelta(hours=i)
        dag_run = run_dag("ingest_events", conf=_partition(hour))
        assert str(dag_run.state) == "success", task_states(dag_run)
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


def test_critical_validation_failure_fails_the_run_and_blocks_downstream(run_dag, task_states, simulated) -> None:
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
    assert states["validate_events"] == "failed"
    for downstream in ("commit_hour", "update_state", "validate_state"):
        assert states[downstream] == "upstream_failed", states
    assert lake.read_manifest(settings.lake_uri, hour) is None, "a failed hour must not be committed"


def test_an_impossible_partition_fails_the_first_task_at_once_without_retries(run_dag, task_states, task_tries) -> None:
    # Passes the Param's pattern (it allows February 29), but 2027 is not a leap year.
    dag_run = run_dag("ingest_events", conf={"partition": "2027-02-29T09"})

    states = task_states(dag_run)
    assert str(dag_run.state) == "failed"
    assert states["resolve_hour"] == "failed"
    assert task_tries(dag_run)["resolve_hour"] == 1, "a bad Param must not be retried"
    assert states["list_files"] == "upstream_failed", states
