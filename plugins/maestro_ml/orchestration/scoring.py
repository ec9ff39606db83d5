"""The ``@task`` functions of ``score_open_tasks``: resolve the champions, score and write the lake, publish.

No champion yet is a visible skip of the whole run; a champion whose feature service does not provide its
signature's inputs fails at once, without retries (a retry would read the same service).
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from maestro_ml.orchestration.assets import TASK_SCORES

log = logging.getLogger(__name__)


@task(multiple_outputs=False)
def resolve_champions() -> dict:
    """Each model's ``champion`` version, resolved by alias once for the whole run; none yet: the run skips."""
    from maestro_ml.scoring.steps import NoChampion, champions

    try:
        return champions()
    except NoChampion as exc:
        raise AirflowSkipException(str(exc)) from exc


@task(multiple_outputs=False)
def score_tasks(resolved: dict, params: dict | None = None, data_interval_end=None, dag_run=None) -> dict:
    """Every open task as of the newest committed hour: top-k assignees with reasons, the duration forecast;
    the hour's lake file written atomically."""
    from maestro_ml.scoring.champions import SignatureMismatch
    from maestro_ml.scoring.open_tasks import NothingToScore
    from maestro_ml.scoring.steps import score

    run_end = data_interval_end or getattr(dag_run, "run_after", None)
    top_k = int((params or {}).get("top_k", 5))
    try:
        summary = score(resolved, run_end, top_k=top_k)
    except SignatureMismatch as exc:
        raise AirflowFailException(str(exc)) from exc
    except NothingToScore as exc:
        raise AirflowSkipException(str(exc)) from exc
    log.info("scoring summary: %s", summary)
    return summary


@task(multiple_outputs=False, outlets=[TASK_SCORES])
def publish_scores(written: dict, outlet_events: Any = None) -> dict:
    """The hour's scores pushed to the online store (``task_recommendations_v1``) with the run's own timestamp."""
    from maestro_ml.scoring.steps import publish

    pushed = publish(written)
    outlet_events[TASK_SCORES].extra = {"hour": written["hour"], "versions": written["versions"],
                                        "open_tasks": written["open_tasks"], "pushed": pushed["pushed"]}
    return pushed
