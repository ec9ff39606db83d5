"""The steps of ``materialize_features``: an explicit UTC window, then one view at a time into the online store.

Materialization goes through ``FeatureStore.materialize`` with the batch engine and online store
the repo's ``feature_store.yaml`` configures (``maestro_ml.feast_ext``: chunked, vectorized, bulk
writes), so Feast's registry records the materialized intervals as usual.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from maestro_ml.contracts.features import VIEWS
from maestro_ml.feast_ext.materialize import materialize_window
from maestro_ml.feast_ext.store import get_store
from maestro_ml.settings import Settings, day_start, get_settings, to_utc

log = logging.getLogger(__name__)

# A run with no window of its own (manual, no Params) refreshes this much: enough for every TTL.
DEFAULT_WINDOW = timedelta(days=3)


def online_window(
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    starts: list[str] | None = None,
    ends: list[str] | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """The UTC window ``{"start", "end"}`` to materialize.

    Explicit ``start``/``end`` win (manual runs). Otherwise the union of the windows the triggering
    ``offline_features`` events carry. Otherwise the ``DEFAULT_WINDOW`` of whole days up to now.
    """
    if start is not None or end is not None:
        if start is None or end is None:
            raise ValueError("give both start and end, or neither")
        lo, hi = to_utc(start), to_utc(end)
    elif starts and ends:
        lo, hi = min(to_utc(s) for s in starts), max(to_utc(e) for e in ends)
    else:
        hi = day_start(now or datetime.now().astimezone()) + timedelta(days=1)
        lo = hi - DEFAULT_WINDOW
    if hi <= lo:
        raise ValueError(f"empty window: start {lo.isoformat()} is not before end {hi.isoformat()}")
    return {"start": lo.isoformat(), "end": hi.isoformat()}


def view_names() -> list[str]:
    return sorted(VIEWS)


def materialize_view(view: str, window: dict[str, str], settings: Settings | None = None) -> dict[str, Any]:
    """Materialize one feature view over the window; returns rows written, seconds and chunks."""
    if view not in VIEWS:
        raise KeyError(f"unknown feature view {view!r}; known: {sorted(VIEWS)}")
    settings = settings or get_settings()
    store = get_store(settings)
    # Feast's window is inclusive at both ends; ours is [start, end).
    end = to_utc(window["end"]) - timedelta(microseconds=1)
    result = materialize_window(store, to_utc(window["start"]), end, [view])[view]
    log.info("materialized %s over [%s, %s): %s", view, window["start"], window["end"], result)
    return {"view": view, **window, **result}


def materialize_all(window: dict[str, str], settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Every view, one after the other (one writer per view), in this process."""
    return {view: materialize_view(view, window, settings) for view in view_names()}
