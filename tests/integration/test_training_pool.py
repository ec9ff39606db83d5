"""`python -m maestro_ml.platform.bootstrap` on a real Airflow metadata DB: the training pool comes from include/gpu_node_pool.json."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest

from maestro_ml.platform.training_job import GPU_POOL_JSON, get_gpu_pool


@pytest.fixture
def no_gpu_pool(airflow_db: str) -> Iterator[str]:
    """The pool is absent before and after: the other tests run on a DB bootstrap never touched."""
    from airflow.models.pool import Pool

    name = json.loads(GPU_POOL_JSON.read_text())["airflow_pool"]
    if Pool.get_pool(name) is not None:
        Pool.delete_pool(name)
    yield name
    if Pool.get_pool(name) is not None:
        Pool.delete_pool(name)


def test_bootstrap_creates_then_updates_the_pool_from_the_json(no_gpu_pool: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    from maestro_ml.platform import bootstrap

    expected = json.loads(GPU_POOL_JSON.read_text())
    # A pool left by an older deployment, with another size.
    stale = dataclasses.replace(get_gpu_pool(), airflow_pool_slots=expected["airflow_pool_slots"] + 3)
    bootstrap.ensure_airflow_pool(stale)
    assert Pool.get_pool(no_gpu_pool).slots == expected["airflow_pool_slots"] + 3

    bootstrap.main(["pools"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "pool": {"name": expected["airflow_pool"], "slots": expected["airflow_pool_slots"]}
    }
    with create_session() as session:
        rows = session.query(Pool).filter(Pool.pool == no_gpu_pool).all()
        assert [(p.slots, p.include_deferred) for p in rows] == [(expected["airflow_pool_slots"], True)]
        assert "gpu_node_pool.json" in rows[0].description


def test_a_failed_pool_command_says_why(no_gpu_pool: str) -> None:
    from maestro_ml.platform import bootstrap

    too_long = dataclasses.replace(get_gpu_pool(), airflow_pool="x" * 300)
    with pytest.raises(RuntimeError, match=r"(?s)airflow pools set x+` failed with exit code \d+:.*256 characters"):
        bootstrap.ensure_airflow_pool(too_long)
