"""
# simulate_activity

Writes a seeded, realistic stream of work-management product events (teams, users,
projects, tasks, assignments, status changes, comments, time logs) into the landing
zone, exactly where the product would drop them: gzip JSONL under
`events/dt=YYYY-MM-DD/hour=HH/`. The ground truth (true durations, on-time
probabilities and assignment utilities) goes to the truth store, never to landing.

The `tracker` preset imitates an open-source bug tracker export instead: most tasks
without estimates or due dates, no skills, components as projects, self-assignment and
tasks open for months.

Dirt is on by default (malformed lines, truncated gzip, wrong types, duplicates, late
and future events, PII in free text), so ingestion has something real to quarantine.

1. **simulate_events**: the organisation, its work and its events, written to the landing zone;
   updates the `landing_events` Asset.

Trigger it from the UI or the REST API; the Params pick the preset, window and seed.
Re-running with the same Params rewrites identical files.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from maestro_ml.orchestration.assets import LANDING_EVENTS
from maestro_ml.orchestration.defaults import DEFAULT_ARGS
from maestro_ml.orchestration.params import instant_param
from maestro_ml.orchestration.tasks import fail_without_retry_on_bad_params
from maestro_ml.settings import get_settings


@task(multiple_outputs=False, outlets=[LANDING_EVENTS])
def simulate_events(params: dict | None = None) -> dict:
    from maestro_ml.settings import parse_utc_hour
    from maestro_ml.simulation import DirtRates, config_for_preset, simulate

    params = params or {}
    settings = get_settings()
    start = fail_without_retry_on_bad_params(parse_utc_hour, params["start"]) if params.get("start") else settings.start_date
    overrides: dict = {"days": params["days"]} if params.get("days") else {}
    if not params.get("dirt", True):
        overrides["dirt"] = DirtRates.off()
    config = config_for_preset(params["preset"], start=start, seed=params["seed"], **overrides)
    return simulate(config, landing_uri=settings.landing_uri, truth_uri=settings.truth_uri).to_dict()


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["maestro", "demo"],
    doc_md=__doc__,
    params={
        "preset": Param("demo", type="string", enum=["tiny", "demo", "bench", "tracker"], title="Preset",
                        description="Size of the simulated organisation; tracker: a bug tracker export "
                                    "(few fields, components, months-long tasks, 150 days)"),
        "start": instant_param("First hour", "First simulated hour, ISO-8601 UTC (default: MAESTRO_START_DATE)"),
        "days": Param(None, type=["null", "integer"], minimum=1, maximum=1830, title="Days",
                      description="Override the preset's days"),
        "seed": Param(7, type="integer", title="Seed", description="Random seed; same seed, same events"),
        "dirt": Param(True, type="boolean", title="Dirt", description="Inject malformed and duplicate events"),
    },
)
def simulate_activity() -> None:
    simulate_events()


simulate_activity()
