"""
# ingest_events

Product events from the landing zone (`events/dt=YYYY-MM-DD/hour=HH/`) into the lake, hour by
hour, in order: one run at a time, so a range and the hourly schedule never interleave (the
state fold and the dedupe lookback need the hours in order).

What a run takes:
- **scheduled** (hourly): its own hour, and every hour after the newest committed one. A platform
  that is behind (a first `make up`, a scheduler that was down) catches up in **one run** at batch
  speed, instead of one run per hour, so the schedule has `catchup=False`; an hour whose files
  landed late is taken by the next run.
- **`partition`** (`YYYY-MM-DDTHH`): re-ingest that one hour.
- **`start`/`end`**: a backfill of every hour in `[start, end)`, e.g. after a parser fix. At most
  `MAESTRO_MAX_RANGE_HOURS` (92 days) per run; an inverted, future or longer range fails at once.

Hours without landing files are late data or a gap: they are listed in the log, not committed,
and a run with no hour to take is skipped, so nothing downstream runs on nothing.

1. **plan_hours**: the hours this run takes (see above); bad Params fail without retries.
2. **ingest_hours**: for each hour, oldest first, in one process: parse with an explicit Arrow
   schema per event type (bad lines to quarantine with a reason), mask PII, drop duplicates
   within the hour and against the last 24 hours, validate with Great Expectations, and commit
   typed Parquet plus the hour's manifest atomically, then fold the hour into the users, teams,
   projects and tasks tables. An hour failing a critical expectation is not committed; the other
   hours are, and the task then fails naming it, without retries (bad data stays bad). Then the
   state tables go through their own Great Expectations gate. Last, it updates the `lake_events`
   Asset with the committed hours when a day is complete (its 23:00 hour committed) or an
   earlier day changed (a catch-up, a backfill, a re-ingest), and not otherwise:
   `build_features` rebuilds those days once, about one build per day of hours instead of one
   per hour. (The event goes out through an asset alias, so an hour that closes no day emits
   none; as a task of its own the announcement cost a process start and a scheduler hand-over,
   a third of an hourly run under load.)
"""

from __future__ import annotations

import logging
from datetime import timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, task

from maestro_ml.orchestration.assets import LAKE_EVENTS, LAKE_EVENTS_UPDATES
from maestro_ml.orchestration.defaults import INGEST_DEFAULT_ARGS
from maestro_ml.orchestration.params import hour_param
from maestro_ml.orchestration.tasks import fail_without_retry_on_bad_data, fail_without_retry_on_bad_params
from maestro_ml.settings import get_settings


@task(multiple_outputs=False)
def plan_hours(params: dict | None = None, data_interval_start=None) -> list[str]:
    from airflow.sdk.exceptions import AirflowSkipException

    from maestro_ml.ingestion.plan import plan_hours as plan

    params = params or {}
    planned = fail_without_retry_on_bad_params(
        plan, partition=params.get("partition"), start=params.get("start"), end=params.get("end"),
        interval_start=data_interval_start,
    )
    if planned["without_files"]:
        logging.getLogger(__name__).warning(
            "%d hour(s) without landing files, not committed (late data or a gap): %s",
            len(planned["without_files"]), ", ".join(planned["without_files"]),
        )
    if not planned["hours"]:
        raise AirflowSkipException("no landing files for any hour of this run: nothing to ingest")
    return planned["hours"]


@task(multiple_outputs=False, outlets=[LAKE_EVENTS_UPDATES])
def ingest_hours(hours: list[str], outlet_events=None) -> dict:
    from maestro_ml.ingestion.plan import closed_days
    from maestro_ml.ingestion.steps import ingest_range, validate_current_state
    from maestro_ml.lake import committed_hours

    ingested = fail_without_retry_on_bad_data(ingest_range, hours)
    # The state gate runs in this process: as a task of its own it cost a process start, a third of
    # an hourly run's wall time, and bought nothing (it only reads what this task just committed).
    ingested["state_validation"] = fail_without_retry_on_bad_data(validate_current_state, ingested["hours"][-1])
    days = closed_days(ingested["hours"], committed_hours(get_settings().lake_uri)[-1])
    ingested["announced_days"] = days
    if days:
        # Consumers (build_features) read which hours changed from the asset event.
        outlet_events[LAKE_EVENTS_UPDATES].add(LAKE_EVENTS, extra={"hours": ingested["hours"]})
    else:
        logging.getLogger(__name__).info("no day closed and no earlier day changed: no lake_events update "
                                         "(features are built once a day)")
    return ingested


@dag(
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=get_settings().start_date,
    # A run takes every hour after the newest commit: one run catches up, not one run per missed hour.
    catchup=False,
    # Hours fold into shared state tables and dedupe against earlier hours: one run at a time, in order.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args=INGEST_DEFAULT_ARGS,
    tags=["maestro", "ingestion", "validation"],
    doc_md=__doc__,
    params={
        "partition": hour_param(
            "Hour to re-ingest", "Re-ingest this one hour (YYYY-MM-DDTHH, UTC) instead of the run's own hours"
        ),
        "start": hour_param(
            "Backfill from (hour)", "First hour of a range to (re)ingest, YYYY-MM-DDTHH UTC; give the end too",
            section="Backfill a range",
        ),
        "end": hour_param(
            "Backfill until (hour, exclusive)",
            "The hour after the range's last one, YYYY-MM-DDTHH UTC; at most 92 days after the start",
            section="Backfill a range",
        ),
    },
)
def ingest_events() -> None:
    hours = plan_hours()
    ingest_hours(hours)


ingest_events()
