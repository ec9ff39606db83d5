"""``materialize_window``: the typed entry point the Airflow DAG calls to refresh the online store.

Why a wrapper: DAG tasks need an explicit UTC window (never "now"), per-view row counts and timings for
logs and XCom, and one writer per feature view. It goes through ``FeatureStore.materialize`` (one view at a
time), so the registry's materialization intervals are recorded as usual and whatever ``batch_engine`` the
repo configures does the work; with ``MaestroComputeEngine`` the row counts come from the engine.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TypedDict

from feast import FeatureStore

from maestro_ml.feast_ext.engine import pop_view_run, utc


class ViewMaterialization(TypedDict):
    """Result for one feature view (JSON-serializable, for XCom)."""

    rows: int | None
    """Rows written to the online store (latest per entity and chunk); None when the stock engine ran."""
    seconds: float
    chunks: int
    path: str
    """"bulk" (Maestro online store), "proto" (other online store) or "stock" (stock engine)."""


def online_view_names(store: FeatureStore) -> list[str]:
    """Feature views ``feast materialize`` would pick with no names given: online and enabled."""
    views = list(store.list_feature_views()) + list(store.list_stream_feature_views())
    names = {v.name for v in views if v.online and getattr(v, "enabled", True)}
    return sorted(names)


def materialize_window(
    store: FeatureStore, start: datetime, end: datetime, views: list[str] | None = None
) -> dict[str, ViewMaterialization]:
    """Materialize ``[start, end]`` (timezone-aware, converted to UTC) for ``views`` (default: all online views).

    Views run one after another, each through ``store.materialize`` on its own, so there is exactly one
    writer per feature view and a failure names the view it happened in.
    """
    start_utc, end_utc = utc(start), utc(end)
    if start_utc > end_utc:
        raise ValueError(f"start {start_utc.isoformat()} is after end {end_utc.isoformat()}")
    names = list(views) if views is not None else online_view_names(store)
    results: dict[str, ViewMaterialization] = {}
    for name in names:
        pop_view_run(store.project, name)
        started = time.perf_counter()
        store.materialize(start_date=start_utc, end_date=end_utc, feature_views=[name])
        seconds = time.perf_counter() - started
        run = pop_view_run(store.project, name)
        results[name] = ViewMaterialization(
            rows=run.rows if run else None,
            seconds=round(seconds, 3),
            chunks=run.chunks if run else 1,
            path=run.path if run else "stock",
        )
    return results
