"""Demo-only code: the training windows of ``make demo`` and its closing summary.

The summary is computed from what the pipeline committed (never from its own counters).
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from datetime import datetime
from typing import Any

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from maestro_ml import storage
from maestro_ml.contracts.features import VIEWS
from maestro_ml.contracts.models import MODELS
from maestro_ml.feast_ext.store import get_store
from maestro_ml.features.offline import read_view
from maestro_ml.lake import list_manifests, read_state
from maestro_ml.registry import CHALLENGER
from maestro_ml.registry.audit import history
from maestro_ml.scoring.publish import read_hour, scored_hours
from maestro_ml.settings import Settings, join_uri, to_utc

STATE_TABLES = ("users", "teams", "projects", "tasks")


def window_params(start: datetime | str, end: datetime | str, *, holdout_fraction: float = 0.15,
                  step_days: float = 0.25, max_train_days: float | None = None) -> dict[str, Any]:
    """The window Params (``end``, ``train_days``, ``valid_days``, ``test_days``) of a run over the data in ``[start, end)``.

    Validation and test each get ``holdout_fraction`` of the days, in whole ``step_days`` (a quarter
    day: the DAG's smallest split) and at least one step, so any simulated window from one day up
    splits the same way; training gets the rest, or only its latest ``max_train_days``.
    """
    lo, hi = to_utc(start), to_utc(end)
    days = (hi - lo).total_seconds() / 86400
    holdout = max(step_days, round(days * holdout_fraction / step_days) * step_days)
    train = days - 2 * holdout
    if train < step_days:
        raise ValueError(f"[{lo}, {hi}) is {days:g} days: too short to train, validate and test on")
    if max_train_days is not None:
        train = min(train, max_train_days)
    return {"end": hi.strftime("%Y-%m-%dT%H:%M:%SZ"), "train_days": round(train, 6), "valid_days": holdout,
            "test_days": holdout}


def ingestion_totals(settings: Settings, start: datetime, end: datetime) -> dict:
    manifests = list_manifests(settings.lake_uri, start, end)
    reasons: Counter[str] = Counter()
    for manifest in manifests:
        reasons.update({k: v for k, v in manifest["rows_quarantined_by_reason"].items() if v})
    return {
        "hours": len(manifests),
        "lines_in": sum(m["lines_in"] for m in manifests),
        "rows_valid": sum(m["rows_valid"] for m in manifests),
        "rows_duplicate": sum(m["rows_duplicate"] for m in manifests),
        "rows_quarantined": sum(reasons.values()),
        "quarantined_by_reason": dict(reasons.most_common()),
        "warnings": sum(len(m.get("warnings", [])) for m in manifests),
    }


def _feature_rows(settings: Settings) -> str:
    counts = {name: len(read_view(settings.features_uri, name)) for name in VIEWS}
    return ", ".join(f"{name} {n:,}" for name, n in counts.items()) if any(counts.values()) else "none built"


def _online_rows(settings: Settings) -> str:
    """Entities the online store holds per view, read back through Feast (not from the run's own counters)."""
    store = get_store(settings)
    found = {}
    for name, view in VIEWS.items():
        if name == "historical_task_assignments":
            continue
        keys = list(view.join_keys)
        rows = read_view(settings.features_uri, name)[keys].drop_duplicates().to_dict("records")
        if not rows:
            continue
        feature = f"{name}:{view.features[0].name}"
        result = store.get_online_features(features=[feature], entity_rows=rows).to_dict()
        found[name] = sum(v is not None for v in result[view.features[0].name])
    return ", ".join(f"{name} {n:,} entities" for name, n in found.items()) or "empty"


def _metric(metrics: dict[str, float], name: str, spec: str = ".3f") -> str:
    return format(metrics[name], spec) if name in metrics else "n/a"


def _best_baseline(metrics: dict[str, float], split: str, suffix: str, spec: str = ".3f", lowest: bool = False) -> str:
    """The strongest baseline's score, e.g. ``valid_baseline_<name>_ndcg_at_5`` (``_truth`` when against the truth);
    ``lowest`` for errors (MAE)."""
    prefix = f"{split}_baseline_"
    found = {
        name[len(prefix):-len(suffix)]: value
        for name, value in metrics.items()
        if name.startswith(prefix) and name.endswith(suffix) and ("_truth_" in suffix) == ("_truth_" in name)
    }
    if not found:
        return "n/a"
    best = (min if lowest else max)(found, key=found.__getitem__)
    return f"{best} {found[best]:{spec}}"


def _quality(model: str, metrics: dict[str, float]) -> list[str]:
    if model == "task_assignment":
        return [
            f"valid NDCG@5 {_metric(metrics, 'valid_ensemble_ndcg_at_5')} (best baseline: "
            f"{_best_baseline(metrics, 'valid', '_ndcg_at_5')}), hits@5 {_metric(metrics, 'valid_ensemble_hits_at_5')}, "
            f"MRR {_metric(metrics, 'valid_ensemble_mrr')}, candidate coverage "
            f"{_metric(metrics, 'valid_ensemble_coverage')} (misses count 0), "
            f"test NDCG@5 {_metric(metrics, 'test_ensemble_ndcg_at_5')}",
            f"NDCG@5 minus the best baseline's {_metric(metrics, 'valid_ensemble_vs_best_baseline_ndcg_at_5_diff', '+.3f')}"
            f" (paired bootstrap 95%: {_metric(metrics, 'valid_ensemble_vs_best_baseline_ndcg_at_5_diff_lo95', '+.3f')}"
            f" .. {_metric(metrics, 'valid_ensemble_vs_best_baseline_ndcg_at_5_diff_hi95', '+.3f')})",
            f"ground-truth NDCG@5 {_metric(metrics, 'valid_ensemble_truth_ndcg_at_5')} of 1.0 (best baseline: "
            f"{_best_baseline(metrics, 'valid', '_truth_ndcg_at_5')}), LightGBM weight "
            f"{_metric(metrics, 'ensemble_weight_lightgbm', '.2f')}",
        ]
    return [
        f"valid MAE {_metric(metrics, 'valid_model_mae', '.2f')} h (best baseline: "
        f"{_best_baseline(metrics, 'valid', '_mae', '.2f', lowest=True)} h, truth "
        f"{_metric(metrics, 'valid_truth_mae', '.2f')} h), test MAE {_metric(metrics, 'test_model_mae', '.2f')} h",
        f"interval coverage {_metric(metrics, 'valid_model_coverage80')} of 80%, "
        f"{_metric(metrics, 'valid_model_coverage90')} of 90% (validation), 90% width "
        f"{_metric(metrics, 'valid_model_width90', '.1f')} h, interval score "
        f"{_metric(metrics, 'valid_model_interval_score90', '.1f')} h",
    ]


def _model_files(client: Any, source: str) -> list[str]:
    """Top-level files of a registered version's model: MLflow 3 keeps them with the logged model, not the run."""
    if not source.startswith("models:/"):
        return []
    try:
        return sorted(a.path for a in client.list_logged_model_artifacts(source.removeprefix("models:/")))
    except MlflowException:
        return []


def _models(settings: Settings) -> list[str]:
    """Each model's ``challenger`` version and its metrics, read back from the MLflow registry and run."""
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    lines, trained, champions = [], 0, []
    for model, spec in MODELS.items():
        name = spec.registered_name
        try:
            version = client.get_model_version_by_alias(name, CHALLENGER)
        except MlflowException:
            lines.append(f"    {name:<25} no {CHALLENGER} version")
            continue
        trained += 1
        with contextlib.suppress(MlflowException):
            champions.append(f"{name} v{client.get_model_version_by_alias(name, 'champion').version}")
        run_id, source = version.run_id, version.source or ""
        if not run_id:
            lines.append(f"    {name:<25} v{version.version} ({CHALLENGER}) has no MLflow run: no metrics to show")
            continue
        run = client.get_run(run_id)
        artifacts = sorted(a.path for a in client.list_artifacts(run_id))
        seconds = run.data.metrics.get("training_seconds")
        lines.append(f"    {name:<25} v{version.version} ({CHALLENGER}), run {run_id[:12]}"
                     + (f", trained in {seconds:.0f}s" if seconds is not None else ""))
        lines += [f"      {line}" for line in _quality(model, run.data.metrics)]
        lines.append("      artifacts " + (", ".join(artifacts) or "none"))
        files = _model_files(client, source)
        lines.append(f"      model     {source}: {len(files)} files"
                     + (", MLmodel present" if "MLmodel" in files else ", no MLmodel"))
    head = [f"  models trained        {trained} of {len(MODELS)} with a {CHALLENGER} version (MLflow registry)"]
    champion = ", ".join(champions) or "none (no version passed the promotion gates)"
    return [*head, *lines, f"  champion              {champion}"]


def _promotions(settings: Settings) -> list[str]:
    """Each model's last promotion decision, read back from the audit trail: the verdict and the primary gate."""
    lines = ["  promotion decisions   (python -m maestro_ml.registry history <model>)"]
    for model in MODELS:
        records = history(model, settings)
        decided = records[records["action"].isin(["promote", "reject"])]
        if decided.empty:
            lines.append(f"    {model:<25} no decision")
            continue
        last = decided.iloc[-1]
        gates = json.loads(last["gates"] or "[]")
        failed = [g["name"] for g in gates if not g["passed"]]
        verdict = (f"v{last['version']} promoted to champion" if last["action"] == "promote"
                   else f"v{last['version']} rejected ({', '.join(failed) or last['reason']})")
        lines.append(f"    {model:<25} {verdict}; {sum(g['passed'] for g in gates)}/{len(gates)} gates passed")
        for gate in (g for g in gates if g["name"].startswith("primary")):
            value = gate["value"]
            shown = f"{value:+.4f}" if isinstance(value, float) else str(value)
            lines.append(f"      {gate['name']:<40} {shown}  (needs {gate['threshold']})")
    return lines


def monitoring_reports(settings: Settings) -> list[str]:
    """Each model's monitoring reports (monitor_models), newest last: drift, the rules, retraining."""
    lines = []
    for model in MODELS:
        uris = sorted(storage.glob(join_uri(settings.reports_uri, "monitoring", model, "*.json")))
        for uri in uris:
            summary = storage.read_json(uri)
            drift = summary.get("feature_drift") or {}
            fired = [rule["rule"] for rule in summary.get("rules", []) if rule.get("fired")]
            verdict = ("retraining requested" if summary.get("retraining_requested") else
                       f"held back: {summary['retraining_suppressed']}" if summary.get("retraining_suppressed")
                       else "no retraining")
            lines.append(f"    {model:<17} {summary['date']}: {drift.get('drifted_count', 0)} of "
                         f"{drift.get('features', 0)} features drifted; rules fired: {', '.join(fired) or 'none'}; "
                         f"{verdict}")
        if uris:
            lines.append(f"      report: {uris[-1][:-5]}.html")
    return ["  monitoring            " + ("(monitor_models, one report per model and day)" if lines else "none"),
            *lines]


def _hours(value: float) -> str:
    return "-" if value is None or value != value else f"{value:.1f}"


def scored_tasks(settings: Settings, examples: int = 2, top: int = 3) -> list[str]:
    """The newest scoring hour, and ``examples`` unassigned tasks with their top assignees, why, and the forecast."""
    hours = scored_hours(settings)
    if not hours:
        return ["  scored open tasks     none (no champion, so nothing was scored)"]
    scores = read_hour(hours[-1], settings)
    open_now = scores[scores["open_task"] == 1]
    recommended = open_now[open_now["recommended_user_ids"].map(len) > 0]
    versions = {column: ", ".join(sorted(open_now[column].dropna().unique())) or "-"
                for column in ("ranker_version", "duration_version")}
    lines = [f"  scored open tasks     {len(open_now):,} at {hours[-1]}:00 UTC ({len(recommended):,} unassigned with "
             f"recommendations, {int(open_now['features_missing'].sum()):,} flagged without online features); "
             f"ranker v{versions['ranker_version']}, duration v{versions['duration_version']}"]
    with_forecast = recommended[recommended["duration_p50_hours"].notna()]
    for _, row in (with_forecast if len(with_forecast) else recommended).head(examples).iterrows():
        lines.append(f"    task {row['task_id']}: duration p50 "
                     f"{_hours(row['duration_p50_hours'])} h, 80% [{_hours(row['duration_p80_lower_hours'])}, "
                     f"{_hours(row['duration_p80_upper_hours'])}] h, 90% [{_hours(row['duration_p90_lower_hours'])}, "
                     f"{_hours(row['duration_p90_upper_hours'])}] h if {row['forecast_user_id']} takes it")
        for rank, (user, score, why) in enumerate(zip(row["recommended_user_ids"][:top], row["recommended_scores"][:top],
                                                      row["recommendation_reasons"][:top], strict=True), start=1):
            lines.append(f"      {rank}. {user}  score {score:+.3f}  because {why}")
    return lines


def pipeline_summary(settings: Settings, start: datetime, end: datetime) -> str:
    totals = ingestion_totals(settings, start, end)
    state = {name: read_state(settings.lake_uri, name).num_rows for name in STATE_TABLES}
    reasons = ", ".join(f"{k} {v:,}" for k, v in totals["quarantined_by_reason"].items()) or "none"
    lines = [
        "make demo summary",
        f"  window                {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC ({totals['hours']} hours committed)",
        f"  lines in              {totals['lines_in']:,}",
        f"  rows ingested         {totals['rows_valid']:,}",
        f"  duplicates dropped    {totals['rows_duplicate']:,}",
        f"  quarantined           {totals['rows_quarantined']:,} ({reasons})",
        f"  validation warnings   {totals['warnings']:,} (in the hour manifests; Data Docs under {settings.reports_uri})",
        "  state tables          " + ", ".join(f"{k} {v:,}" for k, v in state.items()),
        "  offline features      " + _feature_rows(settings),
        "  online store          " + _online_rows(settings),
        *_models(settings),
        *_promotions(settings),
        *scored_tasks(settings),
        *monitoring_reports(settings),
    ]
    return "\n".join(lines)
