"""
# materialize_features

Loads the newest feature values into the Feast online store whenever `build_features` updates
the `offline_features` Asset, so scoring reads what training saw.

1. **apply_definitions**: `feast apply`, only when the repo's definitions changed.
2. **resolve_window**: an explicit UTC window. Asset-triggered runs (which have no data
   interval) take it from the triggering `offline_features` events; manual runs from the
   `start` / `end` Params.
3. **list_views**: the feature views of the contract, one mapped task each below.
4. **materialize_view**: one task per feature view, so each view has exactly one writer, run one
   after the other (`max_active_tis_per_dagrun=1`) because SQLite allows one writer at a time.
   Large windows are materialized in chunks so memory stays bounded.
5. **publish_online**: rows written per view; updates the `online_features` Asset.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from maestro_ml.orchestration.assets import OFFLINE_FEATURES, ONLINE_FEATURES
from maestro_ml.orchestration.defaults import BATCH_DEFAULT_ARGS
from maestro_ml.orchestration.params import instant_param
from maestro_ml.orchestration.tasks import asset_event_extras, fail_without_retry_on_bad_params


@task
def apply_definitions() -> bool:
    from maestro_ml.feast_ext.store import apply_if_changed

    return apply_if_changed()


@task(multiple_outputs=False)
def resolve_window(params: dict | None = None, triggering_asset_events=None) -> dict:
    from maestro_ml.feast_ext.steps import online_window

    params = params or {}
    return fail_without_retry_on_bad_params(
        online_window,
        start=params.get("start"),
        end=params.get("end"),
        starts=asset_event_extras(triggering_asset_events, "start"),
        ends=asset_event_extras(triggering_asset_events, "end"),
    )


@task
def list_views() -> list[str]:
    from maestro_ml.feast_ext.steps import view_names

    return view_names()


@task(multiple_outputs=False, max_active_tis_per_dagrun=1)
def materialize_view(view: str, window: dict) -> dict:
    from maestro_ml.feast_ext.steps import materialize_view as materialize

    return materialize(view, window)


@task(multiple_outputs=False, outlets=[ONLINE_FEATURES])
def publish_online(results: list[dict]) -> dict:
    return {"views": {r["view"]: r["rows"] for r in results}}


@dag(
    schedule=[OFFLINE_FEATURES],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # One writer per feature view: never two runs at once.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=BATCH_DEFAULT_ARGS,
    tags=["maestro", "features"],
    doc_md=__doc__,
    params={
        "start": instant_param("Window start", "Start of the UTC window to materialize (ISO-8601); empty for Asset runs"),
        "end": instant_param("Window end", "End of the UTC window (exclusive, ISO-8601)"),
    },
)
def materialize_features() -> None:
    window = resolve_window()
    applied = apply_definitions()
    views = list_views()
    results = materialize_view.partial(window=window).expand(view=views)
    applied >> results
    publish_online(results)


materialize_features()
