"""
# ingest_events

Hourly ingestion of product events from the landing zone into the lake.

A run whose data interval is `[T, T+1h)` ingests the landing folder of hour `T`
(`events/dt=YYYY-MM-DD/hour=HH/`), so a backfill maps 1:1 onto folders. Set the
`partition` Param (`YYYY-MM-DDTHH`) to re-ingest one given hour from the UI or REST API.

1. **resolve_hour**: the run's data interval start, or the `partition` Param.
2. **list_files** of the hour.
3. **parse_events** with an explicit Arrow schema per event type; every bad line goes to
   quarantine with a machine-readable reason, its good neighbours go on.
4. **mask_pii**: keyed hashes for emails and names, emails and phones scrubbed from text.
5. **deduplicate_events** by `event_id`, within the hour and against the last 24 hours.
6. **validate_events** with Great Expectations; a critical failure fails here, before
   anything is committed, and nothing downstream runs.
7. **commit_hour**: typed Parquet partitioned by event date plus the run manifest, made
   visible atomically; re-running an hour replaces exactly that hour.
8. **update_state** folds the hour into the users, teams, projects and tasks tables.
9. **validate_state** with Great Expectations, then the `lake_events` Asset is updated.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from maestro_ml.orchestration.assets import LAKE_EVENTS
from maestro_ml.orchestration.defaults import DEFAULT_ARGS
from maestro_ml.orchestration.params import HOUR_PATTERN
from maestro_ml.orchestration.tasks import fail_without_retry_on_bad_data, fail_without_retry_on_bad_params
from maestro_ml.settings import get_settings


@task(multiple_outputs=False)
def resolve_hour(params: dict | None = None, data_interval_start=None) -> str:
    from maestro_ml.lake import as_hour

    partition = (params or {}).get("partition")
    return fail_without_retry_on_bad_params(as_hour, partition or data_interval_start).isoformat()


@task
def list_files(hour: str) -> list[str]:
    from maestro_ml.ingestion import list_hour_files

    return list_hour_files(get_settings().landing_uri, hour)


@task(multiple_outputs=False)
def parse_events(files: list[str], hour: str) -> dict:
    from maestro_ml.ingestion import parse_hour, staging_uri

    return parse_hour(files, hour, staging_uri(hour))


@task(multiple_outputs=False)
def mask_pii(parsed: dict) -> dict:
    from maestro_ml.ingestion import mask_staged

    return mask_staged(parsed)


@task(multiple_outputs=False)
def deduplicate_events(masked: dict) -> dict:
    from maestro_ml.ingestion import dedupe_staged

    return dedupe_staged(masked)


@task(multiple_outputs=False)
def validate_events(deduped: dict) -> dict:
    from maestro_ml.ingestion.steps import validate_staged_hour

    return fail_without_retry_on_bad_data(validate_staged_hour, deduped)


@task(multiple_outputs=False)
def commit_hour(validated: dict) -> dict:
    from maestro_ml.ingestion import commit_hour as commit

    return commit(validated)


@task(multiple_outputs=False)
def update_state(manifest: dict) -> dict:
    from maestro_ml.ingestion import update_state as fold

    return fold(manifest)


@task(multiple_outputs=False, outlets=[LAKE_EVENTS])
def validate_state(state: dict, outlet_events=None) -> dict:
    from maestro_ml.ingestion.steps import validate_current_state

    result = fail_without_retry_on_bad_data(validate_current_state, state["hour"])
    # Consumers (build_features) read which hour changed from the asset event.
    outlet_events[LAKE_EVENTS].extra = {"hour": state["hour"]}
    return result


@dag(
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=get_settings().start_date,
    catchup=True,
    # Hours fold into shared state tables and dedupe against earlier hours: one run at a time, in order.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args=DEFAULT_ARGS,
    tags=["maestro", "ingestion", "validation"],
    doc_md=__doc__,
    params={
        "partition": Param(
            None,
            type=["null", "string"],
            format="date-time",
            pattern=HOUR_PATTERN,
            title="Hour to re-ingest",
            description="Re-ingest this hour (YYYY-MM-DDTHH, UTC) instead of the run's data interval",
        ),
    },
)
def ingest_events() -> None:
    hour = resolve_hour()
    files = list_files(hour)
    parsed = parse_events(files, hour)
    masked = mask_pii(parsed)
    deduped = deduplicate_events(masked)
    validated = validate_events(deduped)
    manifest = commit_hour(validated)
    state = update_state(manifest)
    validate_state(state)


ingest_events()
