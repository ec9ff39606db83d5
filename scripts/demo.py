"""Run every DAG once, in dependency order, through real Airflow (``dag.test()``), then print a summary.

Exit status 0 only if every DAG run succeeded. Airflow's task logs go to
``$MAESTRO_HOME/logs/demo.log``; the terminal shows progress and the summary.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))

from maestro_ml import storage  # noqa: E402
from maestro_ml.settings import get_settings, join_uri, parse_utc_hour  # noqa: E402

STEPS = 9
# Real trainings of both models on the latest MAX_TRAIN_DAYS of the window (the earliest days are the
# simulation's warm-up anyway). The ranker gets fewer epochs and boosting rounds than the weekly run
# and a row cap for the bigger presets; the duration set is small, and with fewer epochs than the
# weekly default it loses to the slip baseline.
MAX_TRAIN_DAYS = 5
TRAINING_KNOBS: dict[str, dict] = {
    "train_task_assignment": {"epochs": 8, "max_rows": 100_000, "hyperparameters": {"lgb-num-boost-round": 100}},
    "train_task_duration": {"epochs": 30},
}
# A demo of one or two days holds a quarter day of validation and test: tens of completed
# assignments, not the weekly run's floor of 20 decisions per split (the gate still runs).
MIN_GROUPS = 5
MIN_TRAINING_DAYS = 2
# The trainings stop this many days (plus the duration outcomes' maturity) before the data ends:
# promote_models re-scores each challenger on the newest complete days after its training window (its
# holdout; the duration model's ends MAESTRO_DURATION_OUTCOME_MATURITY_HOURS before the data, so its tasks
# had time to finish), and a first champion must beat the strongest baseline there by the paired bootstrap.
HOLDOUT_DAYS = 2
PROMOTION_REASON = "make demo: the first champion, through the gates"
# After the champions serve, the last days arrive one at a time; each is scored and watched by monitor_models
# (its drift rule needs 2 consecutive drifted days). A scenario starts as these days begin.
WATCHED_DAYS = 2
DEMO_DAYS = 14

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default=os.environ.get("MAESTRO_DEMO_PRESET", "demo"))
    parser.add_argument("--days", type=int, default=int(os.environ.get("MAESTRO_DEMO_DAYS", "0")) or None,
                        help="override the preset's number of days")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--scenario", default=os.environ.get("MAESTRO_DEMO_SCENARIO", "none"),
                        choices=("none", "reorg", "workload_surge", "estimate_bias"),
                        help="a drift scenario starting as the watched days begin (default: none, stationary)")
    parser.add_argument("--import-history", choices=("auto", "yes", "no"), default="auto",
                        help="ingest the simulated events as an imported export (import_history, one gated commit "
                             "per day) instead of hour by hour; auto: for the tracker preset, which imitates one")
    return parser.parse_args()


def _import_as_export(bag, settings) -> tuple[int, float]:
    """Move the simulated landing files aside as a tracker export, place them with import_history, and
    ingest the placed hours through ``ingest_events`` range runs (a backfill from the UI would send the same)."""
    import shutil

    from maestro_ml.ingestion.import_history import place

    landing = Path(settings.landing_uri) / "events"
    export = Path(settings.home) / "export"
    shutil.rmtree(export, ignore_errors=True)
    shutil.move(str(landing), str(export))
    files = sorted(str(p) for p in export.rglob("*.jsonl*"))
    placement = place(files, settings, name="tracker-export")
    total = 0.0
    for start, end in placement.ranges(settings.max_range_hours):
        _, seconds = run(bag.dags["ingest_events"], "range", run_conf={"start": start, "end": end})
        total += seconds
    return len(placement.hours), total


def _hours_range(start, end) -> dict:
    return {"start": start.strftime("%Y-%m-%dT%H"), "end": end.strftime("%Y-%m-%dT%H")}


def _features(bag, start, end) -> float:
    """build_features then materialize_features over the days of [start, end) (one manual run each)."""
    window = {"start": start.strftime("%Y-%m-%d"), "end": (end + timedelta(days=1)).strftime("%Y-%m-%d")}
    _, built = run(bag.dags["build_features"], "features", run_conf=window)
    _, materialized = run(bag.dags["materialize_features"], "online store", run_conf=window)
    return built + materialized


def _promote(bag, settings, models, reason: str) -> None:
    from maestro_ml.registry.aliases import alias_state

    for model in models:
        _, seconds = run(bag.dags["promote_models"], "promotion",
                         run_conf={"model": model, "action": "promote", "reason": reason, "holdout_days": HOLDOUT_DAYS})
        state = alias_state(model, settings)
        say(f"    {model}: " + (f"champion v{state.champion}" if state.champion else
                                "rejected by the gates (see the summary)") + f" in {seconds:.0f}s")


def _requests(settings, day) -> list[dict]:
    """What monitor_models decided on ``day``, read back from its JSON summaries."""
    from maestro_ml.contracts.models import MODELS
    from maestro_ml.monitoring.report import report_uris

    found = []
    for model in MODELS:
        uri = report_uris(settings.reports_uri, model, day)["json"]
        if storage.exists(uri):
            summary = storage.read_json(uri)
            found.append({"model": model, "drifted": (summary.get("feature_drift") or {}).get("drifted_count", 0),
                          "requested": bool(summary.get("retraining_requested")), "report": uri[:-5] + ".html"})
    return found


def _send_output_to(log_file: Path):
    """Point this process's stdout/stderr (where Airflow's task logs go) at the log file.

    Returns a stream on the original terminal for progress and the summary.
    """
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout.flush()
    sys.stderr.flush()
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, sys.stdout.fileno())
    os.dup2(log_fd, sys.stderr.fileno())
    logging.basicConfig(level=logging.INFO)
    return terminal


out = sys.stdout


def say(message: str) -> None:
    print(message, file=out, flush=True)


class DemoFailed(RuntimeError):
    pass


def run(dag, label: str, **kwargs):
    started = time.monotonic()
    dag_run = dag.test(**kwargs)
    state = str(dag_run.state)
    if state != "success":
        raise DemoFailed(f"{dag.dag_id} ({label}) ended {state}; see {os.environ['MAESTRO_HOME']}/logs/demo.log")
    return dag_run, time.monotonic() - started


def main() -> int:
    args = parse_args()
    settings = get_settings()
    log_file = Path(settings.home) / "logs" / "demo.log"
    global out
    out = _send_output_to(log_file)

    from airflow.dag_processing.dagbag import DagBag

    from maestro_ml.feast_ext import store as feature_store
    from maestro_ml.platform import bootstrap
    from maestro_ml.platform.demo import pipeline_summary, window_params
    from maestro_ml.registry.aliases import alias_state

    say(f"1/{STEPS} applying the Feast repo and the training pool")
    feature_store.apply_if_changed(settings)
    bootstrap.ensure_airflow_pool()
    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"), safe_mode=False)
    if bag.import_errors:
        say(f"DAG import errors: {bag.import_errors}")
        return 1

    start = settings.start_date
    conf = {"preset": args.preset, "start": start.isoformat().replace("+00:00", "Z"), "seed": args.seed}
    if args.days:
        conf["days"] = args.days
    if args.scenario != "none":
        # The world changes as the watched days begin: the champions were trained and judged before it.
        days = args.days or DEMO_DAYS
        conf.update(scenario=args.scenario, scenario_day=days - WATCHED_DAYS)
    say(f"2/{STEPS} simulate_activity: preset={args.preset} from {conf['start']}")
    _, seconds = run(bag.dags["simulate_activity"], "simulation", run_conf=conf)
    simulated = storage.read_json(join_uri(settings.truth_uri, "summary.json"))
    window_end = parse_utc_hour(simulated["window_end"])
    hours = int((window_end - start).total_seconds() // 3600)
    say(f"    {simulated['events_written']:,} events in {seconds:.1f}s")

    # The last WATCHED_DAYS days arrive after the champions serve, one at a time: each is scored and watched.
    watched = WATCHED_DAYS if hours >= (WATCHED_DAYS + 7) * 24 and args.preset != "tracker" else 0
    served_from = window_end - timedelta(days=watched)
    served_from_hours = hours - watched * 24
    if args.import_history == "yes" or (args.import_history == "auto" and args.preset == "tracker"):
        say(f"3/{STEPS} import_history: the {hours} simulated hours as one export, one commit per day")
        placed, seconds = _import_as_export(bag, settings)
        say(f"    {placed} placed hours ingested, validated and committed in {seconds:.0f}s")
    else:
        # One range run, as a backfill from the UI or the REST API: every hour still committed on its own.
        say(f"3/{STEPS} ingest_events: one range run over {served_from_hours} hours (the last {watched} day(s) "
            "arrive later, one at a time)")
        _, seconds = run(bag.dags["ingest_events"], "range", run_conf=_hours_range(start, served_from))
        say(f"    {served_from_hours} hours ingested, validated and committed in {seconds:.0f}s")

    # One manual run over the whole window: the same tasks the Asset-triggered hourly runs execute.
    say(f"4/{STEPS} build_features and materialize_features up to {served_from:%Y-%m-%d %H:%M}")
    seconds = _features(bag, start, served_from)
    say(f"    built, validated and materialized in {seconds:.0f}s")

    # Train on the simulated window itself: its last days validate and test, whatever --days was.
    # A tracker's history is the point: it trains on all of it (a few thousand decisions).
    max_train_days = None if args.preset == "tracker" else MAX_TRAIN_DAYS
    trained_hours = served_from_hours - HOLDOUT_DAYS * 24 - settings.duration_outcome_maturity_hours
    training = window_params(start, start + timedelta(hours=trained_hours), max_train_days=max_train_days)
    trained = []
    for step, (dag_id, knobs) in enumerate(TRAINING_KNOBS.items(), start=5):
        if trained_hours < MIN_TRAINING_DAYS * 24:
            say(f"{step}/{STEPS} {dag_id}: skipped, {hours / 24:g} simulated day(s) less "
                f"{(hours - trained_hours) / 24:g} held out for promotion and watching: the later splits would "
                f"hold too few outcomes (needs {MIN_TRAINING_DAYS + (hours - trained_hours) / 24:g} days)")
            continue
        say(f"{step}/{STEPS} {dag_id}: train {training['train_days']:g} d, validate {training['valid_days']:g} d, "
            f"test {training['test_days']:g} d up to {training['end']}")
        _, seconds = run(bag.dags[dag_id], "training", run_conf={**training, "min_groups": MIN_GROUPS, **knobs})
        say(f"    trained, evaluated and registered in {seconds:.0f}s")
        trained.append(dag_id.removeprefix("train_"))

    # What the model Assets trigger under `make up`: one promote_models run per new challenger.
    say(f"7/{STEPS} promote_models: each challenger re-scored with the baselines on the last {HOLDOUT_DAYS} days")
    _promote(bag, settings, trained, PROMOTION_REASON)

    # What the champions' Assets and the hourly schedule trigger: the open tasks scored as of the newest
    # hour; then each later day arrives, is scored, and the day is watched by monitor_models.
    champions = [model for model in trained if alias_state(model, settings).champion]
    say(f"8/{STEPS} score_open_tasks and monitor_models: each day from {served_from:%Y-%m-%d} scored, then watched")
    requested: list[dict] = []
    if not champions:
        say("    skipped: no champion")
    day_end = served_from
    while champions:
        _, seconds = run(bag.dags["score_open_tasks"], "scoring", logical_date=day_end)
        watched_day = day_end.date()
        run(bag.dags["monitor_models"], "monitoring", run_conf={"model": "all", "date": watched_day.isoformat()})
        requests = _requests(settings, watched_day)
        say(f"    {watched_day}: scored in {seconds:.0f}s; " + ("; ".join(
            f"{r['model']}: {r['drifted']} features drifted" + (", retraining requested" if r["requested"] else "")
            for r in requests) or "nothing to watch"))
        requested += [{**r, "day": watched_day} for r in requests if r["requested"]]
        if day_end >= window_end:
            break
        next_end = day_end + timedelta(days=1)
        run(bag.dags["ingest_events"], "range", run_conf=_hours_range(day_end, next_end))
        _features(bag, day_end, next_end)
        day_end = next_end

    # What a retraining_requested event sets off: the model's training DAG on the newest data, then its
    # promotion (a dag.test() run is manual: the request's reason is printed here, not tagged on the run).
    say(f"9/{STEPS} retraining: " + (", ".join(f"{r['model']} (requested on {r['day']})" for r in requested)
                                     or "none requested"))
    retrain = sorted({r["model"] for r in requested})
    if retrain:
        # On the newest data, the changed world included; its holdout (the days after this window) does not
        # exist yet, so the daily promote_models run decides on it once it does.
        window = window_params(start, window_end, max_train_days=max_train_days)
        for model in retrain:
            knobs = TRAINING_KNOBS[f"train_{model}"]
            _, seconds = run(bag.dags[f"train_{model}"], "retraining",
                             run_conf={**window, "min_groups": MIN_GROUPS, **knobs})
            version = alias_state(model, settings).challenger
            say(f"    {model} retrained up to {window['end']} in {seconds:.0f}s: challenger v{version}; the daily "
                "promote_models run judges it once a day of data after its window exists")

    say("")
    say(pipeline_summary(settings, start, start + timedelta(hours=hours)))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except DemoFailed as exc:
        say(f"make demo FAILED: {exc}")
        sys.exit(1)
    except Exception as exc:
        traceback.print_exc()
        say(f"make demo FAILED: {type(exc).__name__}: {exc} (traceback in the log)")
        sys.exit(1)
