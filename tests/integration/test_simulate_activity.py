from __future__ import annotations

import gzip
import json

from maestro_ml import storage
from maestro_ml.settings import get_settings


def test_simulate_activity_writes_landing_files_through_airflow(run_dag) -> None:
    dag_run = run_dag(
        "simulate_activity", conf={"preset": "tiny", "start": "2026-11-01T00:00:00Z", "days": 1, "seed": 3, "dirt": False}
    )
    assert str(dag_run.state) == "success"
    settings = get_settings()
    files = storage.glob(f"{settings.landing_uri}/events/dt=*/hour=*/*.jsonl.gz")
    assert files, "no landing files were written"
    assert all("/events/dt=2026-11-0" in f for f in files)
    # Truth stays out of landing.
    truth_names = {uri.rsplit("/", 1)[-1] for uri in storage.glob(f"{settings.truth_uri}/**")}
    assert "summary.json" in truth_names
    landing_names = {uri.rsplit("/", 1)[-1] for uri in storage.glob(f"{settings.landing_uri}/**")}
    assert not truth_names & landing_names
    first_line = gzip.decompress(storage.read_bytes(files[0])).splitlines()[0]
    assert "event_type" in json.loads(first_line)
