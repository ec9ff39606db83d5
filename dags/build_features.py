"""
# build_features

Computes the Feast feature tables from the lake whenever ingestion updates the `lake_events`
Asset, validates them with Great Expectations and publishes them to the offline store.

1. **resolve_window**: the UTC days to rebuild. An Asset-triggered run rebuilds the days of the
   ingested hours, reaching back by the allowed lateness (late events change earlier days). A
   manual run takes the `start` / `end` Params (UTC dates, end exclusive).
2. **compute_features**: `user_profile_features`, `user_activity_features`, `task_features`,
   `project_features` and `historical_task_assignments`, point-in-time correct (a row at time
   t only uses events up to t), staged privately for this run.
3. **validate_features**: keys set, one row per key and time, ranges, rates in [0, 1], known
   statuses. A critical failure fails here and nothing is published.
4. **publish_features**: one Parquet file per (view, day), each replaced atomically; re-running
   a window rewrites identical files. Then the `offline_features` Asset is updated.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from maestro_ml.orchestration.assets import LAKE_EVENTS, OFFLINE_FEATURES
from maestro_ml.orchestration.defaults import BATCH_DEFAULT_ARGS
from maestro_ml.orchestration.params import day_param
from maestro_ml.orchestration.tasks import (
    asset_event_extras,
    fail_without_retry_on_bad_data,
    fail_without_retry_on_bad_params,
)


@task(multiple_outputs=False)
def resolve_window(params: dict | None = None, triggering_asset_events=None) -> dict:
    from maestro_ml.features.steps import rebuild_window

    params = params or {}
    return fail_without_retry_on_bad_params(
        rebuild_window,
        start=params.get("start"),
        end=params.get("end"),
        # Each ingest run's event lists its committed hours (older events carried one "hour").
        hours=[*asset_event_extras(triggering_asset_events, "hour"),
               *(h for hours in asset_event_extras(triggering_asset_events, "hours") for h in hours)],
    )


@task(multiple_outputs=False)
def compute_features(window: dict) -> dict:
    from maestro_ml.features.steps import compute_staged

    return compute_staged(window)


@task(multiple_outputs=False)
def validate_features(staged: dict) -> dict:
    from maestro_ml.features.steps import validate_staged

    return fail_without_retry_on_bad_data(validate_staged, staged)


@task(multiple_outputs=False, outlets=[OFFLINE_FEATURES])
def publish_features(validated: dict, outlet_events=None) -> dict:
    from maestro_ml.features.steps import publish_staged

    published = publish_staged(validated)
    # materialize_features reads the window from the asset event: Asset-triggered runs have no interval.
    outlet_events[OFFLINE_FEATURES].extra = {"start": published["start"], "end": published["end"]}
    return published


@dag(
    schedule=[LAKE_EVENTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # Runs rewrite shared day partitions: one at a time.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=BATCH_DEFAULT_ARGS,
    tags=["maestro", "features", "validation"],
    doc_md=__doc__,
    params={
        "start": day_param("First day", "First UTC day to rebuild (YYYY-MM-DD); leave empty for Asset-triggered runs"),
        "end": day_param("End day", "Day after the last one to rebuild (YYYY-MM-DD, exclusive)"),
    },
)
def build_features() -> None:
    window = resolve_window()
    staged = compute_features(window)
    validated = validate_features(staged)
    publish_features(validated)


build_features()
