"""One monitoring run of one champion for one day (``monitor_models``): drift, realised performance, the
retraining rules, the report.

* **Reference**: the champion's own training set (the ``train_uri`` its MLflow run logged), a seeded sample of
  whole decisions, and the champion's predictions on it.
* **Current**: the last day's decisions (assignments; for duration, those completed by now), built point in time
  by the training sets' own code from the same feature service, a sample of whole decisions, and the
  champion's predictions on them. Feature drift compares the two per feature of the champion's signature;
  prediction drift compares the scores (the ranker) or the p50 hours (duration). Why not the served rows
  (``scoring.publish.write_served``, kept per hour): they are the *open* tasks' candidates, a population that
  differs from decisions by construction (tasks nobody takes linger and age), so they drift from any
  training set on stationary data. ``make demo`` measured it: 41 of 60 features "drifted" on a day before
  any change. The served rows' count is still reported, and a day nothing was served is a skip.
* **Realised performance**: the outcomes that arrived since scoring (``monitoring.realised``), per day over
  the look-back, against the champion's holdout figure from its promotion.
* **Thresholds** per feature, calibrated on the training days (``monitoring.calibration``): a feature
  drifts when the day lies further from the training data than any training day lay from the others (by a
  margin), never less than Evidently's default.
* **Rules** (``MonitoringRules``; defaults documented there): drift on at least ``drift_min_features``
  features for ``drift_min_days`` consecutive days, or a realised figure worse than the holdout's by more
  than the margin with at least ``min_outcomes`` outcomes behind it. A fired rule requests a retraining,
  unless one was requested for this model within ``cooldown_days`` (the report says it was suppressed).
* **Missing pieces are skips with counts**: no champion or nothing served that day raises ``NothingToMonitor``
  (the task skips); too few outcomes leaves that figure "insufficient", never 0.

The report (``monitoring.report``) goes to ``<reports>/monitoring/<model>/<day>.html`` with its JSON summary
beside it, and to an MLflow run in the ``maestro-monitoring`` experiment.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from maestro_ml import storage
from maestro_ml.contracts.models import model_spec
from maestro_ml.monitoring import drift as d
from maestro_ml.monitoring import report as r
from maestro_ml.monitoring.calibration import calibrated_thresholds
from maestro_ml.registry import model_inputs
from maestro_ml.scoring.champions import Champion, load_champion, resolve_champions
from maestro_ml.scoring.publish import served_row_count
from maestro_ml.settings import Settings, get_settings

log = logging.getLogger(__name__)

MONITORING_EXPERIMENT = "maestro-monitoring"
PREDICTION_NAMES = {"ranking": "score", "duration": "duration_p50"}


class NothingToMonitor(LookupError):
    """No champion, or nothing was served that day: the run is skipped with the counts."""


@dataclass(frozen=True)
class MonitoringRules:
    """When a champion is retrained. The defaults, and why:

    * ``drift_min_features`` = 5 features drifted (each past its group's threshold: Evidently's defaults,
      ``drift.DEFAULT_THRESHOLDS``) on ``drift_min_days`` = 2 consecutive days: one noisy day never retrains,
      and a real shift (a re-organisation) is caught within two days.
    * ``ndcg_margin`` = 0.05: realised NDCG@5 more than 0.05 below the champion's holdout NDCG@5.
    * ``mae_margin`` = 0.15: realised p50 MAE more than 15% above the holdout MAE.
    * ``min_outcomes`` = 30 decisions or completions behind a realised figure; fewer is "insufficient".
    * ``cooldown_days`` = 3: after a request, the model's rules do not request again for 3 days (a retrain,
      its promotion and a day of new scores take about that long).
    * ``realised_days`` = 7: the look-back of the realised figures.
    * ``reference_rows`` = 20,000 rows of the training set (whole decisions).
    """

    drift_min_features: int = 5
    drift_min_days: int = 2
    ndcg_margin: float = 0.05
    mae_margin: float = 0.15
    min_outcomes: int = 30
    cooldown_days: int = 3
    realised_days: int = 7
    reference_rows: int = 20_000


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def reference_sample(champion: Champion, rows: int, settings: Settings) -> pd.DataFrame | None:
    """A seeded sample of whole decisions of the champion's training set, or None if it is gone."""
    from mlflow import MlflowClient

    from maestro_ml.training.data import read_frame

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    version = client.get_model_version(model_spec(champion.model).registered_name, champion.version)
    uri = client.get_run(version.run_id).data.params.get("train_uri") if version.run_id else None
    if not uri or not storage.exists(uri):
        log.warning("%s v%s: its training set (%s) is gone: no drift reference", champion.model, champion.version,
                    uri)
        return None
    return read_frame(uri, max_rows=rows, seed=0)


def current_sample(model: str, day: date, rows: int, settings: Settings) -> pd.DataFrame | None:
    """The last day of decisions up to the end of ``day`` (or of the lake's data, if earlier), point in time,
    by the training sets' code (a seeded sample of whole decisions; for duration, finished or not)."""
    from maestro_ml.contracts.training_sets import sample_whole_groups
    from maestro_ml.features.training_sets import training_set
    from maestro_ml.lake import committed_hours
    from maestro_ml.validation.outcome import NoDataError

    _, end = _day_bounds(day)
    hours = committed_hours(settings.lake_uri)
    if hours:
        end = min(end, max(hours) + timedelta(hours=1))
    start = end - timedelta(days=1)
    spec = model_spec(model)
    try:
        # Every assignment of the day, finished or not: only the quick ones have finished yet, and a sample of
        # those alone drifts from the training set (completed assignments of earlier weeks) in every stationary
        # world (estimates, due dates, urgency).
        frame = training_set(spec.training_set, start, end, settings=settings, feature_service=spec.feature_service,
                             completed_only=False)
    except NoDataError:
        return None
    if len(frame) > rows:
        frame = frame[sample_whole_groups(frame["decision_id"], rows, 0)].reset_index(drop=True)
    return frame if len(frame) else None


def predictions(pyfunc: Any, frame: pd.DataFrame, kind: str) -> np.ndarray:
    """The model's output on ``frame``: the ranker's score per row, or the duration model's p50 hours."""
    inputs = model_inputs(pyfunc)
    if kind == "ranking":
        return np.asarray(pyfunc.predict(frame.reindex(columns=["decision_id", *inputs])), dtype=np.float64)
    return np.asarray(pd.DataFrame(pyfunc.predict(frame.reindex(columns=inputs))).iloc[:, 0], dtype=np.float64)


def previous_summaries(model: str, day: date, days: int, settings: Settings) -> dict[date, dict[str, Any]]:
    """The JSON summaries of this model's monitoring runs in the ``days`` before ``day``."""
    found = {}
    for back in range(1, days + 1):
        earlier = day - timedelta(days=back)
        uri = r.report_uris(settings.reports_uri, model, earlier)["json"]
        if storage.exists(uri):
            found[earlier] = storage.read_json(uri)
    return found


def _drifted_history(today: int | None, day: date, earlier: dict[date, dict[str, Any]]) -> dict[date, int]:
    history = {when: int((s.get("feature_drift") or {}).get("drifted_count", 0) or 0)
               for when, s in earlier.items()}
    if today is not None:
        history[day] = today
    return history


def realised_figures(model: str, version: str, day: date, rules: MonitoringRules, settings: Settings
                     ) -> tuple[pd.DataFrame | None, dict[str, Any], list[str]]:
    """The champion's realised performance per day over the look-back, overall, and what was insufficient."""
    from maestro_ml.monitoring import realised

    start, end = _day_bounds(day)
    start -= timedelta(days=rules.realised_days - 1)
    per_day, overall = realised.realised_performance(model, start, end, settings=settings,
                                                     min_outcomes=rules.min_outcomes, version=version)
    skips = [f"realised {name}: too few outcomes ({fig.get('n', 0)} < {rules.min_outcomes})"
             for name, fig in overall.items() if isinstance(fig, dict) and fig.get("value") is None]
    return per_day, overall, skips


def realised_rule(kind: str, overall: dict[str, Any], holdout: dict[str, float], rules: MonitoringRules
                  ) -> dict[str, Any]:
    """Realised performance worse than the champion's holdout figure by more than the margin."""
    name, margin = ("ndcg_at_5", rules.ndcg_margin) if kind == "ranking" else ("mae_hours", rules.mae_margin)
    figure = overall.get(name) or {}
    value, n, reference = figure.get("value"), int(figure.get("n") or 0), holdout.get(name)
    if value is None or reference is None or n < rules.min_outcomes:
        return {"rule": f"realised_{name}", "fired": False,
                "detail": f"not judged: realised {value}, holdout {reference}, {n} outcomes (needs "
                          f"{rules.min_outcomes})"}
    if kind == "ranking":
        fired, limit = value < reference - margin, f"< holdout {reference:.3f} - {margin:g}"
    else:
        fired, limit = value > reference * (1 + margin), f"> holdout {reference:.2f} h x {1 + margin:g}"
    return {"rule": f"realised_{name}", "fired": bool(fired),
            "detail": f"realised {value:.3f} over {n} outcomes ({'fires' if fired else 'holds'}: {limit})"}


def monitor(model: str, day: date, rules: MonitoringRules | None = None, settings: Settings | None = None,
            ) -> dict[str, Any]:
    """Monitor ``model``'s champion on ``day``; the summary, the report's URIs and the retraining request."""
    rules = rules or MonitoringRules()
    settings = settings or get_settings()
    started, seconds = time.perf_counter(), {}
    kind = model_spec(model).training_set
    champion = resolve_champions(settings).get(model)
    if champion is None:
        raise NothingToMonitor(f"{model} has no champion yet: nothing serves, nothing to watch")
    start, end = _day_bounds(day)
    served = served_row_count(model, start, end, settings)
    if not served:
        raise NothingToMonitor(f"{model} champion v{champion.version}: no scores served on {day} (0 rows kept by "
                               "score_open_tasks): nothing to compare")
    current = current_sample(model, day, rules.reference_rows, settings)
    if current is None:
        raise NothingToMonitor(f"{model} champion v{champion.version}: no decisions on {day} (0 rows): nothing to "
                               "compare")
    pyfunc = load_champion(champion, settings)
    inputs = model_inputs(pyfunc)
    reference = reference_sample(champion, rules.reference_rows, settings)
    seconds["load"] = time.perf_counter() - started
    skips: list[str] = []

    lap = time.perf_counter()
    feature_report = prediction_report = None
    reference_predictions = None
    current_predictions = predictions(pyfunc, current, kind)
    if reference is None:
        skips.append("drift: the champion's training set is gone (no reference)")
    else:
        # Each feature judged against how far one training day already lies from the others (calibration).
        thresholds, group_of = calibrated_thresholds(reference, inputs)
        feature_report = d.feature_drift(reference.reindex(columns=inputs), current.reindex(columns=inputs),
                                         thresholds, features=inputs, group_of=group_of)
        reference_predictions = predictions(pyfunc, reference, kind)
        prediction_report = d.prediction_drift(reference_predictions, current_predictions,
                                               name=PREDICTION_NAMES[kind])
    seconds["drift"] = time.perf_counter() - lap

    lap = time.perf_counter()
    per_day, overall, realised_skips = realised_figures(model, champion.version, day, rules, settings)
    skips += realised_skips
    from maestro_ml.monitoring.realised import holdout_figures

    holdout = holdout_figures(model, champion.version, settings)
    seconds["realised"] = time.perf_counter() - lap

    earlier = previous_summaries(model, day, max(rules.drift_min_days, rules.cooldown_days) + 1, settings)
    drifted = d.drifted_count(feature_report) if feature_report is not None else None
    state = d.drift_rule_state(_drifted_history(drifted, day, earlier), min_features=rules.drift_min_features,
                               min_days=rules.drift_min_days)
    outcomes = [
        {"rule": "feature_drift", "fired": bool(state.fires),
         "detail": f"{drifted if drifted is not None else 'no'} features drifted today; {state.streak_days} "
                   f"consecutive day(s) with >= {rules.drift_min_features} (fires at {rules.drift_min_days})"},
        realised_rule(kind, overall, holdout, rules),
    ]
    fired = [o for o in outcomes if o["fired"]]
    recent = sorted(when for when, s in earlier.items()
                    if s.get("retraining_requested") and (day - when).days < rules.cooldown_days)
    suppressed = (f"a retraining was requested on {recent[-1]}: cool-down of {rules.cooldown_days} days"
                  if fired and recent else None)
    requested = bool(fired) and suppressed is None

    inputs_for_report = r.MonitoringInputs(
        model=model, version=champion.version, run_date=day, generated_at=datetime.now(UTC),
        feature_drift=feature_report, prediction_drift=prediction_report,
        reference_predictions=({PREDICTION_NAMES[kind]: reference_predictions}
                               if reference_predictions is not None else None),
        current_predictions={PREDICTION_NAMES[kind]: current_predictions},
        realised=per_day, holdout=holdout, rules=outcomes, retraining_requested=requested,
        retraining_suppressed=suppressed, skips=skips)
    summary = r.summary_json(inputs_for_report)
    summary["served_rows"] = served
    summary["current_rows"] = len(current)
    summary["reference_rows"] = 0 if reference is None else len(reference)
    summary["rules_config"] = asdict(rules)
    uris = r.write_report(r.render_report(inputs_for_report), summary, settings.reports_uri, model, day)
    seconds["total"] = time.perf_counter() - started
    log.info("%s v%s on %s: report %s; rules %s; retraining %s", model, champion.version, day, uris["html"],
             [(o["rule"], o["fired"]) for o in outcomes], "requested" if requested else suppressed or "not needed")
    _log_to_mlflow(model, champion, day, summary, uris, settings)
    request = None
    if requested:
        request = {"model": model, "rule": ", ".join(o["rule"] for o in fired),
                   "reason": "; ".join(f"{o['rule']}: {o['detail']}" for o in fired),
                   "day": day.isoformat(), "champion": champion.version,
                   "drifted_features": (summary.get("feature_drift") or {}).get("drifted", [])[:20]}
    return {"model": model, "day": day.isoformat(), "version": champion.version, "uris": uris,
            "retraining": request, "suppressed": suppressed, "skips": skips,
            "seconds": {k: round(v, 2) for k, v in seconds.items()}}


def _log_to_mlflow(model: str, champion: Champion, day: date, summary: dict[str, Any], uris: dict[str, str],
                   settings: Settings) -> None:
    """One MLflow run per monitoring run: the headline figures as metrics, the report as an artifact."""
    import tempfile

    import mlflow

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment(MONITORING_EXPERIMENT)
    tags = {"model": model, "champion_version": champion.version, "day": day.isoformat(),
            "report_uri": uris["html"]}
    with mlflow.start_run(run_name=f"{model}-{day.isoformat()}", tags=tags):
        metrics = {"drifted_features": float((summary.get("feature_drift") or {}).get("drifted_count", 0) or 0),
                   "retraining_requested": float(bool(summary.get("retraining_requested")))}
        mlflow.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            for name, uri in uris.items():
                local = f"{tmp}/{model}-{day.isoformat()}.{name}"
                with open(local, "wb") as out:
                    out.write(storage.read_bytes(uri))
                mlflow.log_artifact(local, artifact_path="monitoring")
