"""The closing summary of ``make demo``, computed from what the pipeline committed (never from its own counters)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from maestro_ml.lake import list_manifests, read_state
from maestro_ml.settings import Settings

STATE_TABLES = ("users", "teams", "projects", "tasks")


def ingestion_totals(settings: Settings, start: datetime, end: datetime) -> dict:
    manifests = list_manifests(settings.lake_uri, start, end)
    reasons: Counter[str] = Counter()
    for manifest in manifests:
        reasons.update({k: v for k, v in manifest["rows_quarantined_by_reason"].items() if v})
    return {
        "hours": len(manifests),
        "lines_in": sum(m["lines_in"] for m in manifests),
        "rows_valid": sum(m["rows_valid"] for m in manifests),
        "rows_duplicate": sum(m["rows_duplicate"] for m in manifests),
        "rows_quarantined": sum(reasons.values()),
        "quarantined_by_reason": dict(reasons.most_common()),
        "warnings": sum(len(m.get("warnings", [])) for m in manifests),
    }


def _feature_rows(settings: Settings) -> str:
    from maestro_ml.features.offline import read_view
    from maestro_ml.features.schema import VIEWS

    counts = {name: len(read_view(settings.features_uri, name)) for name in VIEWS}
    return ", ".join(f"{name} {n:,}" for name, n in counts.items()) if any(counts.values()) else "none built"


def _online_rows(settings: Settings) -> str:
    """Entities the online store holds per view, read back through Feast (not from the run's own counters)."""
    from maestro_ml.feature_store import get_store
    from maestro_ml.features.offline import read_view
    from maestro_ml.features.schema import VIEWS

    store = get_store(settings)
    found = {}
    for name, view in VIEWS.items():
        if name == "historical_task_assignments":
            continue
        key = view.join_keys[0]
        ids = read_view(settings.features_uri, name)[key].drop_duplicates().tolist()
        if not ids:
            continue
        feature = f"{name}:{view.features[0].name}"
        result = store.get_online_features(features=[feature], entity_rows=[{key: i} for i in ids]).to_dict()
        found[name] = sum(v is not None for v in result[view.features[0].name])
    return ", ".join(f"{name} {n:,} entities" for name, n in found.items()) or "empty"


def pipeline_summary(settings: Settings, start: datetime, end: datetime) -> str:
    totals = ingestion_totals(settings, start, end)
    state = {name: read_state(settings.lake_uri, name).num_rows for name in STATE_TABLES}
    reasons = ", ".join(f"{k} {v:,}" for k, v in totals["quarantined_by_reason"].items()) or "none"
    lines = [
        "make demo summary",
        f"  window                {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC ({totals['hours']} hours committed)",
        f"  lines in              {totals['lines_in']:,}",
        f"  rows ingested         {totals['rows_valid']:,}",
        f"  duplicates dropped    {totals['rows_duplicate']:,}",
        f"  quarantined           {totals['rows_quarantined']:,} ({reasons})",
        f"  validation warnings   {totals['warnings']:,} (in the hour manifests; Data Docs under {settings.reports_uri})",
        "  state tables          " + ", ".join(f"{k} {v:,}" for k, v in state.items()),
        "  offline features      " + _feature_rows(settings),
        "  online store          " + _online_rows(settings),
        "  models trained        none yet: training lands with issue 5",
        "  champion              none yet",
    ]
    return "\n".join(lines)
