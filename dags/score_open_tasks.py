"""
# score_open_tasks

The serving champions put to work. Every hour, and whenever a champion changes (a promotion or a rollback),
every open task gets what the product shows: for an unassigned task, its top-k recommended assignees among
the candidates a training set would offer, each with the three features that raised its score most; for
every open task, the duration champion's median and 80% / 90% intervals in hours. The product reads a task's
row with one `get_online_features` call of the `task_recommendations_v1` feature service.

1. **resolve_champions**: each model's `champion`, resolved by alias once for the run (a promotion takes
   effect at the next run, never halfway through one). No champion yet: the run is skipped with a message.
2. **score_tasks**: the open tasks as of the newest committed hour, features from the Feast online store in
   batches (the champion's own feature service; one whose features do not cover the champion's signature
   fails at once), ranked and forecast; the hour's file in the lake written atomically (a re-run replaces it).
3. **publish_scores**: the hour pushed to the online store with the run's own, newer event timestamp, and
   the `task_scores` Asset updated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, Param, dag
from airflow.timetables.trigger import CronTriggerTimetable

from maestro_ml.orchestration.assets import TASK_ASSIGNMENT_CHAMPION, TASK_DURATION_CHAMPION
from maestro_ml.orchestration.defaults import BATCH_DEFAULT_ARGS
from maestro_ml.orchestration.scoring import publish_scores, resolve_champions, score_tasks


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("15 * * * *", timezone="UTC"),
                                 assets=(TASK_ASSIGNMENT_CHAMPION | TASK_DURATION_CHAMPION)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=50),
    default_args=BATCH_DEFAULT_ARGS,
    tags=["maestro", "scoring"],
    doc_md=__doc__,
    params={
        "top_k": Param(5, type="integer", minimum=1, maximum=50, title="Top k",
                       description="How many assignees to recommend for each unassigned open task"),
    },
)
def score_open_tasks() -> None:
    champions = resolve_champions()
    written = score_tasks(champions)
    publish_scores(written)


score_open_tasks()
