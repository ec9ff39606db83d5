"""The feature catalog: Markdown generated from the Feast definitions in ``include/feature_repo``.

``python -m maestro_ml.features.catalog`` rewrites ``docs/feature_catalog.md``; a test fails when
the committed file differs from what the definitions generate.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from maestro_ml.settings import FEATURE_REPO_DIR, REPO_ROOT

CATALOG_PATH = REPO_ROOT / "docs" / "feature_catalog.md"
_MODULES = ("entities", "data_sources", "feature_views", "on_demand_features", "feature_services")


def _load_repo() -> dict[str, Any]:
    """Import the repo's definition modules (as ``feast apply`` does) and return them by name."""
    if str(FEATURE_REPO_DIR) not in sys.path:
        sys.path.insert(0, str(FEATURE_REPO_DIR))
    return {name: importlib.import_module(name) for name in _MODULES}


def _ttl(ttl: timedelta | None) -> str:
    if not ttl:
        return "none"
    hours = ttl.total_seconds() / 3600
    return f"{hours / 24:g} d" if hours % 24 == 0 else f"{hours:g} h"


def _type(dtype: Any) -> str:
    return str(dtype).replace("PrimitiveFeastType.", "").replace("<", "").split(":")[0].strip(">")


def render() -> str:
    from feast import Entity, FeatureService, FeatureView, OnDemandFeatureView

    modules = _load_repo()
    objects = [obj for module in modules.values() for obj in vars(module).values()]
    entities = sorted({o.name: o for o in objects if isinstance(o, Entity)}.values(), key=lambda o: o.name)
    views = sorted({o.name: o for o in objects if isinstance(o, FeatureView)}.values(), key=lambda o: o.name)
    odfvs = sorted({o.name: o for o in objects if isinstance(o, OnDemandFeatureView)}.values(), key=lambda o: o.name)
    services = sorted({o.name: o for o in objects if isinstance(o, FeatureService)}.values(), key=lambda o: o.name)
    join_keys = {e.name: e.join_key for e in entities}
    odfv_docs = getattr(modules["on_demand_features"], "OUTPUT_DESCRIPTIONS", {})

    lines = [
        "# Feature catalog",
        "",
        "Generated from `include/feature_repo` by `python -m maestro_ml.features.catalog`; do not edit by hand",
        "(`tests/unit/test_feature_catalog.py` fails when this file is stale).",
        "",
        "## Entities",
        "",
        "| entity | join keys | description |",
        "|---|---|---|",
    ]
    lines += [f"| `{e.name}` | `{e.join_key}` | {e.description} |" for e in entities]
    lines += ["", "## Feature views", ""]
    for view in views:
        keys = ", ".join(f"`{join_keys.get(e, e)}`" for e in view.entities)
        lines += [
            f"### `{view.name}`",
            "",
            view.description,
            "",
            f"Owner: {view.owner} · TTL: {_ttl(view.ttl)} · keys: {keys} · cadence: {view.tags.get('cadence', '-')}",
            "",
            "| feature | type | description |",
            "|---|---|---|",
        ]
        lines += [f"| `{f.name}` | {_type(f.dtype)} | {f.description} |" for f in view.features]
        lines.append("")
    lines += ["## On-demand feature views", ""]
    for odfv in odfvs:
        sources = sorted([*odfv.source_feature_view_projections, *odfv.source_request_sources])
        lines += [
            f"### `{odfv.name}`",
            "",
            odfv.description,
            "",
            f"Owner: {odfv.owner} · computed at request time from: {', '.join(f'`{s}`' for s in sources)}",
            "",
            "| feature | type | description |",
            "|---|---|---|",
        ]
        lines += [f"| `{f.name}` | {_type(f.dtype)} | {odfv_docs.get(f.name, '')} |" for f in odfv.features]
        lines.append("")
    lines += ["## Feature services", ""]
    for service in services:
        lines += [f"### `{service.name}`", "", service.description, "", f"Owner: {service.owner}", ""]
        for projection in service.feature_view_projections:
            names = ", ".join(f"`{f.name}`" for f in projection.features)
            lines.append(f"- `{projection.name}`: {names}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=CATALOG_PATH, help="where to write the catalog")
    parser.add_argument("--check", action="store_true", help="exit 1 when the file differs instead of writing it")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    text = render()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run python -m maestro_ml.features.catalog", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
