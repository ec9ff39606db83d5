"""Local-platform chores shared by ``make up`` and ``make demo``: apply Feast and seed demo data.

``python -m maestro_ml.bootstrap init`` is idempotent: it applies the Feast repo only when the
definitions changed and simulates demo events only when the landing zone has none.
"""

from __future__ import annotations

import argparse
import json
import logging

from maestro_ml import feature_store, storage
from maestro_ml.settings import Settings, get_settings, join_uri

log = logging.getLogger(__name__)


def landing_has_events(settings: Settings) -> bool:
    return bool(storage.glob(join_uri(settings.landing_uri, "events", "dt=*", "hour=*", "*.jsonl.gz")))


def seed_demo_data(settings: Settings, preset: str = "demo", days: int | None = None, seed: int = 7) -> dict | None:
    """Simulate the demo window from ``settings.start_date`` unless landing already has events."""
    if landing_has_events(settings):
        log.info("landing already has events; keeping them")
        return None
    from maestro_ml.simulation import config_for_preset, simulate

    overrides = {"days": days} if days else {}
    config = config_for_preset(preset, start=settings.start_date, seed=seed, **overrides)
    return simulate(config, landing_uri=settings.landing_uri, truth_uri=settings.truth_uri).to_dict()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="apply Feast if needed and seed demo data if landing is empty")
    init.add_argument("--preset", default="demo")
    init.add_argument("--days", type=int, default=None)
    init.add_argument("--seed", type=int, default=7)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args = parse_args(argv)
    settings = get_settings()
    applied = feature_store.apply_if_changed(settings)
    seeded = seed_demo_data(settings, args.preset, args.days, args.seed)
    print(json.dumps({"feast_applied": applied, "seeded": seeded}, default=str))


if __name__ == "__main__":
    main()
