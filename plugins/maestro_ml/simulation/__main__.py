"""CLI: ``python -m maestro_ml.simulation --preset demo --start 2026-11-01T00:00:00Z --days 14 --seed 7``.

``--scenario reorg --scenario-day 7`` adds a drift scenario from day 7 (``maestro_ml.simulation.scenarios``).

Locations default to ``maestro_ml.settings.get_settings()`` (``landing_uri``, ``truth_uri``).
Prints one line of JSON: the run's summary.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from maestro_ml.settings import get_settings
from maestro_ml.simulation.config import PRESETS, SCENARIOS, DirtRates, config_for_preset, parse_start
from maestro_ml.simulation.core import simulate


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m maestro_ml.simulation", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument("--start", type=parse_start, required=True, help="window start, hour-aligned UTC (…Z)")
    parser.add_argument("--days", type=int, default=None, help="window length in days (default: the preset's)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users", type=int, default=None, help="number of users (default: the preset's)")
    parser.add_argument("--teams", type=int, default=None, help="number of teams (default: the preset's)")
    parser.add_argument("--landing-uri", default=None, help="default: settings.landing_uri")
    parser.add_argument("--truth-uri", default=None, help="default: settings.truth_uri")
    parser.add_argument("--no-dirt", action="store_true", help="write clean data only")
    parser.add_argument("--workers", type=int, default=None, help="threads compressing and writing files")
    parser.add_argument("--scenario", choices=list(SCENARIOS), default="none", help="drift scenario (default: none)")
    parser.add_argument(
        "--scenario-day", type=int, default=None, help="the scenario's onset, days after --start (default: the middle)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = get_settings()
    overrides: dict[str, Any] = {}
    if args.days is not None:
        overrides["days"] = args.days
    if args.users is not None:
        overrides["n_users"] = args.users
    if args.teams is not None:
        overrides["n_teams"] = args.teams
    if args.workers is not None:
        overrides["workers"] = args.workers
    if args.no_dirt:
        overrides["dirt"] = DirtRates.off()
    try:
        config = config_for_preset(
            args.preset, args.start, seed=args.seed, scenario=args.scenario, scenario_day=args.scenario_day, **overrides
        )
    except ValueError as exc:  # a bad onset or combination: say why, as argparse does for bad flags
        sys.stderr.write(f"python -m maestro_ml.simulation: error: {exc}\n")
        return 2
    summary = simulate(config, args.landing_uri or settings.landing_uri, args.truth_uri or settings.truth_uri)
    sys.stdout.write(json.dumps(summary.to_dict(), sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
