"""maestro_ml.platform.bootstrap without Airflow: what it asks Airflow to do, and in which order."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from maestro_ml.platform import bootstrap
from maestro_ml.platform.training_job import GPU_POOL_JSON, get_gpu_pool


def test_pool_command_is_airflows_create_or_update_with_the_json_values() -> None:
    expected = json.loads(GPU_POOL_JSON.read_text())
    command = bootstrap.airflow_pool_command(get_gpu_pool())
    assert command[:5] == [sys.executable, "-m", "airflow", "pools", "set"]
    assert command[5:7] == [expected["airflow_pool"], str(expected["airflow_pool_slots"])]
    assert "--include-deferred" in command


@pytest.mark.parametrize(("argv", "steps"), [(["init"], ["pool", "feast", "seed"]), (["pools"], ["pool"])])
def test_init_and_pools_steps(argv: list[str], steps: list[str], monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[str] = []

    def pool(*_: Any) -> dict[str, Any]:
        calls.append("pool")
        return {"name": "gpu", "slots": 2}

    monkeypatch.setattr(bootstrap, "ensure_airflow_pool", pool)
    monkeypatch.setattr(bootstrap.feature_store, "apply_if_changed", lambda *_: calls.append("feast") or False)
    monkeypatch.setattr(bootstrap, "seed_demo_data", lambda *_: calls.append("seed") or None)
    bootstrap.main(argv)
    assert calls == steps
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["pool"] == {"name": "gpu", "slots": 2}
