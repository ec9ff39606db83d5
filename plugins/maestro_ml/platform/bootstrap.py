"""Local-platform chores shared by ``make up`` and ``make demo``: the Airflow pool, Feast and demo data.

``python -m maestro_ml.platform.bootstrap init`` is idempotent: it creates or updates the training pool
from ``include/gpu_node_pool.json``, applies the Feast repo only when the definitions changed and
simulates demo events only when the landing zone has none. ``python -m maestro_ml.platform.bootstrap pools``
does the pool alone, for deployments that run it after ``airflow db migrate`` (the Helm chart's
migration job, the compose stack's ``airflow-init``) and must not seed demo data.

Airflow runs in a child process (``airflow pools set``): this module stays importable without
Airflow, like the rest of the core, and the pool is written through Airflow's own code path.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys

from maestro_ml import storage
from maestro_ml.feast_ext import store as feature_store
from maestro_ml.platform.training_job import GPU_POOL_JSON, GpuPool, get_gpu_pool
from maestro_ml.settings import Settings, get_settings, join_uri
from maestro_ml.simulation import config_for_preset, simulate

log = logging.getLogger(__name__)

POOL_DESCRIPTION = f"Training runs (include/{GPU_POOL_JSON.name}): one GPU pod a slot; a local run takes them all"


def airflow_pool_command(pool: GpuPool, python: str | None = None) -> list[str]:
    """``airflow pools set``: create or update, straight on the metadata DB (no API server is up yet)."""
    return [
        python or sys.executable, "-m", "airflow", "pools", "set",
        pool.airflow_pool, str(pool.airflow_pool_slots), POOL_DESCRIPTION,
        # A deferred pod (deferrable KubernetesPodOperator) still holds its GPU, so it keeps its slot.
        "--include-deferred",
    ]


def ensure_airflow_pool(pool: GpuPool | None = None) -> dict[str, object]:
    """Make the Airflow pool match the JSON; run after ``airflow db migrate`` (it writes the ``slot_pool`` table)."""
    pool = pool or get_gpu_pool()
    command = airflow_pool_command(pool)
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"`airflow pools set {pool.airflow_pool}` failed with exit code {done.returncode}:\n{tail}")
    log.info("Airflow pool %r: %d slots", pool.airflow_pool, pool.airflow_pool_slots)
    return {"name": pool.airflow_pool, "slots": pool.airflow_pool_slots}


def landing_has_events(settings: Settings) -> bool:
    return bool(storage.glob(join_uri(settings.landing_uri, "events", "dt=*", "hour=*", "*.jsonl.gz")))


def seed_demo_data(settings: Settings, preset: str = "demo", days: int | None = None, seed: int = 7) -> dict | None:
    """Simulate the demo window from ``settings.start_date`` unless landing already has events."""
    if landing_has_events(settings):
        log.info("landing already has events; keeping them")
        return None
    overrides = {"days": days or settings.seed_days}
    config = config_for_preset(preset, start=settings.start_date, seed=seed, **overrides)
    return simulate(config, landing_uri=settings.landing_uri, truth_uri=settings.truth_uri).to_dict()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="the training pool, Feast if needed and demo data if landing is empty")
    init.add_argument("--preset", default="demo")
    init.add_argument("--days", type=int, default=None)
    init.add_argument("--seed", type=int, default=7)
    sub.add_parser("pools", help="only create or update the training pool (after `airflow db migrate`)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    pool = ensure_airflow_pool()
    if args.command == "pools":
        print(json.dumps({"pool": pool}))
        return
    settings = get_settings()
    applied = feature_store.apply_if_changed(settings)
    seeded = seed_demo_data(settings, args.preset, args.days, args.seed)
    print(json.dumps({"pool": pool, "feast_applied": applied, "seeded": seeded}, default=str))


if __name__ == "__main__":
    main()
