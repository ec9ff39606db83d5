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

A drift scenario (Param `scenario`) changes the world from day `scenario_day` of the
window (default: its middle) so drift detection has something to find: `reorg` (30 % of
the users move teams, their skills shift and assignment follows), `workload_surge` (one
team's task arrivals double) or `estimate_bias` (estimates shrink to 60 % while true
durations do not). `none` (the default) is stationary and writes the same bytes as before
scenarios existed. The truth store's `scenario.json` records the scenario, its onset (UTC)
and its parameters, to measure detection delay and false alarms against.

1. **simulate_events**: the organisation, its work (and its drift, if any) and its events,
   written to the landing zone, the truth (with `scenario.json`) to the truth store;
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

# maestro_ml.simulation.SCENARIOS, spelled out: importing the simulator would load numpy and pyarrow at
# parse time (tests/unit/test_simulation_scenarios.py checks the two lists agree).
SCENARIOS = ("none", "reorg", "workload_surge", "estimate_bias")


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
    config = fail_without_retry_on_bad_params(
        config_for_preset, params["preset"], start=start, seed=params["seed"],
        scenario=params.get("scenario") or "none", scenario_day=params.get("scenario_day"), **overrides,
    )  # fmt: skip
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
        "scenario": Param("none", type="string", enum=list(SCENARIOS), title="Drift scenario",
                          description="What changes from the onset day: none (stationary); reorg (30% of users "
                                      "move teams, skills shift); workload_surge (one team's task arrivals x2); "
                                      "estimate_bias (estimates x0.6, true durations unchanged). Not for tracker"),
        "scenario_day": Param(None, type=["null", "integer"], minimum=1, maximum=1829, title="Scenario onset day",
                              description="Onset: days after the first hour (1 .. days-1; default: the middle "
                                          "of the window, day 7 of 14)"),
    },
)
def simulate_activity() -> None:
    simulate_events()


simulate_activity()
