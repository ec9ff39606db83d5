"""The steps of ``score_open_tasks`` as plain functions, each returning a small JSON-able dict (an XCom)."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any

import pandas as pd

from maestro_ml.contracts.scores import DEFAULT_TOP_K
from maestro_ml.scoring.champions import Champion, load_champion, resolve_champions
from maestro_ml.scoring.open_tasks import candidate_pairs, open_tasks, scoring_time
from maestro_ml.scoring.publish import push_scores, write_scores, write_served
from maestro_ml.scoring.score import Served, Timings, score_tasks, serve
from maestro_ml.settings import Settings, get_settings

log = logging.getLogger(__name__)


class NoChampion(LookupError):
    """No model has a ``champion`` yet: nothing serves, so nothing is scored (promote one first)."""


def champions(settings: Settings | None = None) -> dict[str, dict[str, str]]:
    """The champions this run serves, resolved by alias now (``NoChampion`` when there is none)."""
    found = resolve_champions(settings)
    if not found:
        raise NoChampion("no model has a `champion` yet: promote one (promote_models) and scoring starts")
    for model in ("task_assignment", "task_duration"):
        if model not in found:
            log.warning("%s has no champion: its part of the scores stays empty", model)
    return {model: champion.as_dict() for model, champion in found.items()}


def score(resolved: dict[str, dict[str, str]], run_end: datetime | None, top_k: int = DEFAULT_TOP_K,
          settings: Settings | None = None) -> dict[str, Any]:
    """Score every open task as of the newest committed hour with the resolved champions; write the lake file."""
    from maestro_ml.feast_ext.store import get_store

    settings = settings or get_settings()
    timings = Timings()
    started = time.perf_counter()
    at = scoring_time(settings.lake_uri, run_end)
    store = get_store(settings)
    served: dict[str, Served] = {}
    for model, fields in resolved.items():
        champion = Champion(**fields)
        served[model] = serve(champion, load_champion(champion, settings), store)
    timings.add("load_champions", started)
    started = time.perf_counter()
    tasks = open_tasks(settings.lake_uri, at)
    pairs = candidate_pairs(settings.lake_uri, tasks[tasks["assigned"] == 0], at,
                            manager_min_assignments=settings.manager_min_assignments)
    timings.add("open_tasks", started)
    kept: dict[str, list[pd.DataFrame]] = {}
    scores = score_tasks(tasks, pairs, at, store, served.get("task_assignment"), served.get("task_duration"),
                         top_k=top_k, timings=timings, keep=kept)
    started = time.perf_counter()
    written = write_scores(scores, at, settings)
    written["served_rows"] = write_served(kept, written["hour"], settings)
    timings.add("write_lake", started)
    return {**written, "at": at.isoformat(), "tasks": len(tasks), "unassigned": int((tasks["assigned"] == 0).sum()),
            "candidate_rows": len(pairs), "features_missing": int(scores["features_missing"].sum()),
            "versions": {model: s.version for model, s in served.items()},
            "seconds": {k: round(v, 3) for k, v in timings.seconds.items()}}


def publish(written: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Push the hour's scores to the online store (not for a backfilled hour older than the newest)."""
    from maestro_ml.feast_ext.store import get_store

    settings = settings or get_settings()
    started = time.perf_counter()
    pushed = push_scores(written["hour"], get_store(settings), settings)
    return {**pushed, "seconds": round(time.perf_counter() - started, 3)}
