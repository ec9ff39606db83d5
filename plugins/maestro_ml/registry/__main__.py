"""``python -m maestro_ml.registry history <model>``: who made which version champion, when and why."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from maestro_ml.contracts.models import MODELS
from maestro_ml.registry.aliases import alias_state
from maestro_ml.registry.audit import history


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m maestro_ml.registry", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("history", help="the model's audit records, oldest first, and its aliases now")
    show.add_argument("model", choices=sorted(MODELS), help="the model")
    show.add_argument("--json", action="store_true", default=False, help="one JSON object per record")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    records = history(args.model)
    state = alias_state(args.model)
    if args.json:
        for row in records.to_dict("records"):
            print(json.dumps(row, default=str))
        return 0
    print(f"{args.model}: champion {state.champion or '-'}, previous_champion {state.previous_champion or '-'}, "
          f"challenger {state.challenger or '-'}")
    if records.empty:
        print("no promotion records yet")
        return 0
    for row in records.itertuples():
        change = (f"{row.champion_before or '-'} -> {row.champion_after or '-'}"
                  if row.champion_before != row.champion_after else f"stays {row.champion_after or '-'}")
        print(f"{row.at:%Y-%m-%d %H:%M:%S} UTC  {row.action:<8} v{row.version or '-':<4} champion {change:<12} "
              f"by {row.who}" + (f": {row.reason}" if row.reason else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
