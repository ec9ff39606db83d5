"""build_features and materialize_features through real Airflow (dag.test) on the tiny lake."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from maestro_ml.contracts.features import VIEWS
from maestro_ml.features import offline
from maestro_ml.settings import get_settings

CONF = {"start": "2026-11-01", "end": "2026-11-03"}


@pytest.fixture(scope="module")
def feast_project(tiny_home: Path) -> Iterator[str]:
    project = f"maestro_test_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAESTRO_FEAST_PROJECT", project)
        yield project


def _files() -> dict[str, bytes]:
    root = Path(get_settings().features_uri)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def test_build_then_materialize_features(feast_project: str, run_dag, task_states) -> None:
    build = run_dag("build_features", conf=CONF)
    assert task_states(build) == {
        "resolve_window": "success",
        "compute_features": "success",
        "validate_features": "success",
        "publish_features": "success",
    }
    files = _files()
    assert {Path(f).parent.name for f in files} == set(VIEWS)

    materialize = run_dag("materialize_features", conf=CONF)
    states = task_states(materialize)
    assert set(states.values()) == {"success"}, states

    from maestro_ml.feast_ext.store import get_store

    store = get_store()
    tasks = offline.read_view(get_settings().features_uri, "task_features")
    latest = tasks.sort_values("event_timestamp").drop_duplicates("task_id", keep="last").iloc[-1]
    online = store.get_online_features(
        features=["task_features:estimated_hours", "task_features:status"], entity_rows=[{"task_id": latest.task_id}]
    ).to_dict()
    assert online["estimated_hours"] == [pytest.approx(float(latest.estimated_hours))]
    assert online["status"] == [latest.status]
    store.teardown()

    # A second run of the same window rewrites identical files.
    assert task_states(run_dag("build_features", conf=CONF))["publish_features"] == "success"
    assert _files() == files


def test_bad_features_fail_the_gate_and_nothing_downstream_runs(
    feast_project: str, run_dag, task_states, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maestro_ml.features import steps

    real = steps.compute_features

    def corrupted(inputs):
        frames = real(inputs)
        frames["project_features"].loc[0, "project_overdue_ratio"] = 3.0
        return frames

    monkeypatch.setattr(steps, "compute_features", corrupted)
    before = _files()
    run = run_dag("build_features", conf={"start": "2026-11-01", "end": "2026-11-02"})
    states = task_states(run)
    assert states["validate_features"] == "failed"
    assert states["publish_features"] == "upstream_failed"
    assert _files() == before
