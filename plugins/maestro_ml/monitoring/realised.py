"""Realised performance: how the champions did on the outcomes that arrived since they scored.

Inputs are plain frames (``RealisedInputs``): the scores lake table's rows (``contracts.scores``), and the
``task_assigned`` / ``task_completed`` events; ``load_inputs`` reads them from the lake for a window, and
``realised_performance`` does both for one model.

**Served.** A scores row was served from its ``event_timestamp`` (the write time: when it reached the online
store) for at most the view's TTL (``TASK_RECOMMENDATIONS.ttl``, 2 days; Feast serves nothing older). A row
counts for an outcome only when it was written *strictly before* the outcome and within that TTL. A backfilled
hour carries the time it was written, so it never counts for outcomes before its write (it was never served).

**Ranker (one figure per decision).** A decision is a task's *first* assignment: the earliest ``task_assigned``
event of the task in the frame, and not a reassignment (``previous_assignee_id`` empty when the column is
there); recommendations are only made for unassigned tasks, so a reassignment has no list of its own. Its list
is the newest row of the task with a non-empty ``recommended_user_ids`` written before the assignment. A task
assigned without any such row (never recommended, or only after it was assigned) is not counted. Against the
actual assignee: ``hit_at_1`` and ``hit_at_5`` (the assignee is in the top 1 / 5) and ``ndcg_at_5``
(``evaluation.ranking.ndcg_per_group`` with the list order as the score and the assignee as the one relevant
item: ``1 / log2(rank + 1)`` for ranks 1..5); an assignee not in the list is a miss and counts 0 (the holdout's
``misses="zero"``). Each decision keeps the ``ranker_version`` that served the list. With one relevant item per
decision these are the figures the promotion and training compute on the holdout (graded relevance gives the
same NDCG when only one item is relevant), so the two can be compared.

**Duration (one figure per completion).** The realised duration is the duration model's target, taken from the
feature code itself (``features.compute.assignment_segments``, the source of ``historical_task_assignments.duration_hours``
that training sets call ``outcome_duration_hours``): hours from the assignment in force to the task's first
completion after it, for an assignment that was not reassigned first. Only forecasts *for the actual assignee*
are evaluated: the newest row written before the completion, within the TTL, with a non-null p50 and
``forecast_user_id`` equal to that assignment's user (a forecast made for someone else, e.g. the top
recommendation of a task that went to another person, forecasts a different duration and is not scored). Per
completion: ``abs_error_hours = |duration - p50|`` and whether ``lower <= duration <= upper`` for the 80% and
90% intervals (``covered_80``, ``covered_90``); per group ``evaluation.duration.duration_report`` gives
``mae_hours``, ``coverage_80`` and ``coverage_90``.

**Aggregation.** Per UTC day of the outcome (the assignment, the completion), every day of the window a row:
``day``, the metrics and the count behind them (``n_decisions`` / ``n_completions``), the shape
``monitoring.report`` reads. A figure with fewer than ``min_outcomes`` outcomes is *insufficient*: NaN in the
frame and ``None`` in the summary, always with its count, never 0.

**Holdout.** ``holdout_figures`` reads the champion's figures: the promotion audit record (``registry.audit``)
of the version's promotion stores each gate's value, and of those only the candidate's own holdout levels are
figures here: ``guard_mrr`` (ranker) and ``guard_coverage80`` / ``guard_coverage90`` (duration). The primary
gate stores the *improvement* over the reference (champion or baseline) with its bootstrap bound, not the
candidate's NDCG@5 or MAE, so those levels are not in the record. They are taken from the version's MLflow
training run instead: its held-out ``test`` split (``test_ensemble_ndcg_at_5``, ``..._hits_at_1``,
``..._hits_at_5``; ``test_model_mae``), else ``valid``. ``champion_holdout`` says where each figure came from.
``compare_with_holdout`` gives the gap (realised - holdout) per metric, and only where enough outcomes are
behind the realised figure.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from maestro_ml import lake, storage
from maestro_ml.contracts.features import LOOKBACK, TIMESTAMP_COLUMN
from maestro_ml.contracts.models import TrainingSetKind, model_spec
from maestro_ml.contracts.scores import DURATION_FIELDS, TASK_RECOMMENDATIONS
from maestro_ml.evaluation.duration import duration_report
from maestro_ml.evaluation.ranking import ndcg_per_group
from maestro_ml.features.compute import TS_DTYPE, FeatureInputs, assignment_segments
from maestro_ml.scoring.publish import hour_key, hour_uri, scored_hours
from maestro_ml.settings import Settings, get_settings, to_utc

log = logging.getLogger(__name__)

# How long a served row stays served (Feast's TTL of the scores view): older rows count for no outcome.
SERVED_FOR: timedelta = TASK_RECOMMENDATIONS.ttl
DEFAULT_MIN_OUTCOMES = 30
TOP_K = 5
RANKER_METRICS = ("hit_at_1", "hit_at_5", "ndcg_at_5")
DURATION_METRICS = ("mae_hours", "coverage_80", "coverage_90")
N_DECISIONS = "n_decisions"
N_COMPLETIONS = "n_completions"
DAY = "day"
P50, LO80, HI80, LO90, HI90 = DURATION_FIELDS
SCORE_COLUMNS = ["task_id", "scoring_hour", TIMESTAMP_COLUMN, "recommended_user_ids", "ranker_version",
                 "forecast_user_id", *DURATION_FIELDS, "duration_version"]
# Which way is better, per metric (coverage: nearer its nominal level).
HIGHER_IS_BETTER = {"hit_at_1": True, "hit_at_5": True, "ndcg_at_5": True, "mrr": True, "mae_hours": False}
NOMINAL = {"coverage_80": 0.80, "coverage_90": 0.90}
# The audit gates whose value is the champion's own holdout level, and the figure each is.
GATE_FIGURES = {"guard_mrr": "mrr", "guard_coverage80": "coverage_80", "guard_coverage90": "coverage_90"}
# The training run's metrics (``<split>_<name>``, ``training.tracking.report_metrics``) per figure.
RUN_FIGURES: dict[str, dict[str, str]] = {
    "ranking": {"hit_at_1": "ensemble_hits_at_1", "hit_at_5": "ensemble_hits_at_5",
                "ndcg_at_5": "ensemble_ndcg_at_5", "mrr": "ensemble_mrr"},
    "duration": {"mae_hours": "model_mae", "coverage_80": "model_coverage80", "coverage_90": "model_coverage90"},
}
RUN_SPLITS = ("test", "valid")


@dataclass(frozen=True)
class RealisedInputs:
    """``scores``: scores lake rows (``SCORE_COLUMNS``); ``assignments``: ``task_assigned`` events (``task_id``,
    ``assignee_id``, ``occurred_at``, optionally ``previous_assignee_id``); ``completions``: ``task_completed``
    events (``task_id``, ``occurred_at``)."""

    scores: pd.DataFrame
    assignments: pd.DataFrame
    completions: pd.DataFrame


# --------------------------------------------------------------------------- small helpers


def _utc(values: Any) -> pd.Series:
    return pd.Series(pd.to_datetime(values, utc=True)).astype(TS_DTYPE)


def _ts(value: datetime | str | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(to_utc(value)).tz_convert("UTC")


def _lists(values: pd.Series) -> pd.Series:
    return values.map(lambda v: [str(x) for x in v] if isinstance(v, list | tuple | np.ndarray) else [])


def figure(values: Iterable[float] | None, n: int, min_outcomes: int, value: float | None = None) -> dict[str, Any]:
    """``{"value", "n", "insufficient"}``: the mean of ``values`` (or ``value``), None below ``min_outcomes``."""
    if n < min_outcomes or n == 0:
        return {"value": None, "n": int(n), "insufficient": True}
    if value is None:
        array = np.asarray(list(values) if values is not None else [], dtype=np.float64)
        value = float(array.mean()) if len(array) else float("nan")
    finite = value is not None and math.isfinite(value)
    return {"value": float(value) if finite else None, "n": int(n), "insufficient": not finite}


def window_days(start: datetime | str | pd.Timestamp, end: datetime | str | pd.Timestamp) -> list[date]:
    """The UTC days that ``[start, end)`` touches, oldest first."""
    lo, hi = _ts(start), _ts(end)
    if hi <= lo:
        return []
    first, last = lo.floor("D"), (hi - pd.Timedelta(1, "ns")).floor("D")
    return [d.date() for d in pd.date_range(first, last, freq="D")]


def _in_window(frame: pd.DataFrame, column: str, start: datetime | str | pd.Timestamp | None,
               end: datetime | str | pd.Timestamp | None) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame[column] >= _ts(start)
    if end is not None:
        keep &= frame[column] < _ts(end)
    return frame[keep]


def _served(scores: pd.DataFrame) -> pd.DataFrame:
    frame = scores.copy()
    frame["served_at"] = _utc(frame[TIMESTAMP_COLUMN])
    return frame


def _last_served_before(outcomes: pd.DataFrame, on: str, rows: pd.DataFrame, by: list[str],
                        max_age: timedelta | None) -> pd.DataFrame:
    """Each outcome with the newest of ``rows`` (same ``by`` keys) served strictly before its ``on`` time."""
    left = outcomes.sort_values(on, kind="mergesort")
    right = rows.sort_values("served_at", kind="mergesort")
    return pd.merge_asof(left, right, left_on=on, right_on="served_at", by=by, direction="backward",
                         allow_exact_matches=False, tolerance=pd.Timedelta(max_age) if max_age else None)


# --------------------------------------------------------------------------- the ranker


def first_assignments(assignments: pd.DataFrame) -> pd.DataFrame:
    """``task_id, assignee_id, assigned_at``: each task's first assignment in ``assignments`` (not a
    reassignment: ``previous_assignee_id`` empty when the column is there)."""
    if assignments.empty:
        return pd.DataFrame({"task_id": pd.Series(dtype=object), "assignee_id": pd.Series(dtype=object),
                             "assigned_at": pd.Series(dtype=TS_DTYPE)})
    frame = pd.DataFrame({"task_id": assignments["task_id"].astype(object).to_numpy(),
                          "assignee_id": assignments["assignee_id"].astype(object).to_numpy(),
                          "assigned_at": _utc(assignments["occurred_at"]).to_numpy()})
    if "previous_assignee_id" in assignments.columns:
        frame["reassignment"] = assignments["previous_assignee_id"].notna().to_numpy()
    else:
        frame["reassignment"] = False
    frame = frame.sort_values(["task_id", "assigned_at"], kind="mergesort")
    first = frame.drop_duplicates("task_id", keep="first")
    first = first[~first["reassignment"]]
    return first.drop(columns="reassignment").reset_index(drop=True)


def ranker_decisions(scores: pd.DataFrame, assignments: pd.DataFrame, *, max_age: timedelta | None = SERVED_FOR
                     ) -> pd.DataFrame:
    """One row per first assignment that had a recommendation list served before it (module docstring):
    the list, its ``ranker_version`` and ``scoring_hour``, the assignee's ``rank`` in it (NaN: not in it),
    ``hit_at_1``, ``hit_at_5``, ``ndcg_at_5`` and the UTC ``day`` of the assignment."""
    decisions = first_assignments(assignments)
    served = _served(scores)
    served["recommended_user_ids"] = _lists(served["recommended_user_ids"])
    served = served[served["recommended_user_ids"].map(len) > 0]
    columns = ["task_id", "served_at", "scoring_hour", "ranker_version", "recommended_user_ids"]
    matched = _last_served_before(decisions, "assigned_at", served[columns], ["task_id"], max_age)
    matched = matched[matched["served_at"].notna()].sort_values(["assigned_at", "task_id"], kind="mergesort")
    matched = matched.reset_index(drop=True)
    rank = [lst.index(who) + 1 if who in lst else np.nan
            for lst, who in zip(matched["recommended_user_ids"], matched["assignee_id"].astype(str), strict=True)]
    matched["rank"] = pd.Series(rank, index=matched.index, dtype="float64")
    matched["hit_at_1"] = (matched["rank"] <= 1).astype("float64")
    matched["hit_at_5"] = (matched["rank"] <= TOP_K).astype("float64")
    matched["ndcg_at_5"] = _ndcg_at_5(matched)
    matched[DAY] = matched["assigned_at"].dt.floor("D").dt.date
    return matched


def _ndcg_at_5(decisions: pd.DataFrame) -> np.ndarray:
    """NDCG@5 of each decision's list against its assignee, by ``evaluation.ranking`` (misses count 0)."""
    if decisions.empty:
        return np.zeros(0)
    long = decisions[["recommended_user_ids", "assignee_id"]].assign(
        decision=np.arange(len(decisions))).explode("recommended_user_ids", ignore_index=True)
    long["position"] = long.groupby("decision").cumcount()
    long["score"] = -long["position"].astype("float64")  # the served order, best first
    long["relevance"] = (long["recommended_user_ids"].astype(str) == long["assignee_id"].astype(str)).astype(float)
    # Groups come back in the order they first appear: the decisions' order.
    return ndcg_per_group(long, "score", "relevance", "decision", k=TOP_K, misses="zero")


# --------------------------------------------------------------------------- duration


def completed_assignments(assignments: pd.DataFrame, completions: pd.DataFrame) -> pd.DataFrame:
    """``task_id, user_id, assigned_at, completed_at, duration_hours``: the assignments that ran to completion,
    with the duration model's target, computed by the feature code (``features.compute.assignment_segments``)."""
    events = {
        "task_assigned": pd.DataFrame({"task_id": assignments["task_id"].astype(object).to_numpy(),
                                       "assignee_id": assignments["assignee_id"].astype(object).to_numpy(),
                                       "occurred_at": _utc(assignments["occurred_at"]).to_numpy()}),
        "task_completed": pd.DataFrame({"task_id": completions["task_id"].astype(object).to_numpy(),
                                        "occurred_at": _utc(completions["occurred_at"]).to_numpy()}),
    }
    for name in events:
        events[name]["occurred_at"] = events[name]["occurred_at"].astype(TS_DTYPE)
    empty = pd.DataFrame()
    epoch = pd.Timestamp(0, tz="UTC")  # the window is not read by the segments
    inputs = FeatureInputs(epoch, epoch, events, empty, empty, empty)
    static = pd.DataFrame({"estimated_hours": pd.Series(dtype="float64"), "due_at": pd.Series(dtype=TS_DTYPE)})
    seg = assignment_segments(inputs, static)
    done = seg[seg["completed"] == 1].rename(columns={"t": "assigned_at"})
    return done[["task_id", "user_id", "assigned_at", "completed_at", "duration_hours"]].reset_index(drop=True)


def duration_outcomes(scores: pd.DataFrame, assignments: pd.DataFrame, completions: pd.DataFrame, *,
                      max_age: timedelta | None = SERVED_FOR) -> pd.DataFrame:
    """One row per completed assignment that had a forecast for its assignee served before the completion
    (module docstring): the forecast, ``duration_version``, ``abs_error_hours``, ``covered_80``, ``covered_90``
    and the UTC ``day`` of the completion."""
    done = completed_assignments(assignments, completions)
    served = _served(scores)
    served = served[served[P50].notna() & served["forecast_user_id"].notna()]
    served = served.rename(columns={"forecast_user_id": "user_id"})
    served["user_id"] = served["user_id"].astype(object)
    done["user_id"] = done["user_id"].astype(object)
    columns = ["task_id", "user_id", "served_at", "scoring_hour", "duration_version", *DURATION_FIELDS]
    matched = _last_served_before(done, "completed_at", served[columns], ["task_id", "user_id"], max_age)
    matched = matched[matched["served_at"].notna()].sort_values(["completed_at", "task_id"], kind="mergesort")
    matched = matched.reset_index(drop=True)
    y = matched["duration_hours"].to_numpy(dtype=np.float64)
    matched["abs_error_hours"] = np.abs(y - matched[P50].to_numpy(dtype=np.float64))
    for level, lo, hi in ((80, LO80, HI80), (90, LO90, HI90)):
        lower, upper = matched[lo].to_numpy(dtype=np.float64), matched[hi].to_numpy(dtype=np.float64)
        matched[f"covered_{level}"] = ((lower <= y) & (y <= upper)).astype("float64")
    matched[DAY] = matched["completed_at"].dt.floor("D").dt.date
    return matched


# --------------------------------------------------------------------------- aggregation


def _figures(outcomes: pd.DataFrame, kind: TrainingSetKind, min_outcomes: int) -> dict[str, dict[str, Any]]:
    n = len(outcomes)
    if kind == "ranking":
        return {m: figure(outcomes[m], n, min_outcomes) for m in RANKER_METRICS}
    if n == 0:
        return {m: figure(None, 0, min_outcomes) for m in DURATION_METRICS}
    report = duration_report(outcomes["duration_hours"], outcomes[P50], outcomes[LO80], outcomes[HI80],
                             outcomes[LO90], outcomes[HI90])
    scored = int(report["n"])
    return {"mae_hours": figure(None, scored, min_outcomes, report["mae"]),
            "coverage_80": figure(None, scored, min_outcomes, report.get("coverage80")),
            "coverage_90": figure(None, scored, min_outcomes, report.get("coverage90"))}


def _count_column(kind: TrainingSetKind) -> str:
    return N_DECISIONS if kind == "ranking" else N_COMPLETIONS


def per_day(outcomes: pd.DataFrame, kind: TrainingSetKind, min_outcomes: int = DEFAULT_MIN_OUTCOMES,
            days: Sequence[date] | None = None) -> pd.DataFrame:
    """``day``, the metrics and ``n_decisions`` / ``n_completions`` per UTC day of the outcome; every day of
    ``days`` gets a row (0 outcomes: insufficient). A metric below ``min_outcomes`` is NaN, never 0."""
    metrics = RANKER_METRICS if kind == "ranking" else DURATION_METRICS
    count = _count_column(kind)
    known = sorted(set(days or ()) | set(outcomes[DAY] if DAY in outcomes.columns else ()))
    rows = []
    for day in known:
        part = outcomes[outcomes[DAY] == day] if DAY in outcomes.columns else outcomes.iloc[0:0]
        figures = _figures(part, kind, min_outcomes)
        rows.append({DAY: day, **{m: figures[m]["value"] for m in metrics}, count: len(part)})
    frame = pd.DataFrame(rows, columns=[DAY, *metrics, count])
    for m in metrics:
        frame[m] = pd.to_numeric(frame[m], errors="coerce").astype("float64")
    frame[count] = frame[count].astype("int64")
    return frame


def summary(outcomes: pd.DataFrame, kind: TrainingSetKind, min_outcomes: int = DEFAULT_MIN_OUTCOMES
            ) -> dict[str, Any]:
    """The window's figures (``{metric: {"value", "n", "insufficient"}}``), the outcome count, and the same
    figures per served model version (``versions``, a list)."""
    version_column = "ranker_version" if kind == "ranking" else "duration_version"
    count = _count_column(kind)
    out: dict[str, Any] = dict(_figures(outcomes, kind, min_outcomes))
    out[count] = len(outcomes)
    versions = []
    if len(outcomes):
        keys = outcomes[version_column].fillna("").astype(str)
        for version in sorted(keys.unique()):
            part = outcomes[keys == version]
            versions.append({"version": version or None, "n": len(part), **_figures(part, kind, min_outcomes)})
    out["versions"] = versions
    out["min_outcomes"] = int(min_outcomes)
    return out


def realised_from_frames(kind: TrainingSetKind, inputs: RealisedInputs, start: datetime | str | pd.Timestamp,
                         end: datetime | str | pd.Timestamp, *, min_outcomes: int = DEFAULT_MIN_OUTCOMES,
                         version: str | None = None, max_age: timedelta | None = SERVED_FOR,
                         ) -> tuple[pd.DataFrame, dict[str, Any], pd.DataFrame]:
    """Per-day figures, the summary and the evaluated outcomes of ``kind`` for the outcomes in ``[start, end)``
    (``version``: only those served by that model version)."""
    if kind == "ranking":
        outcomes = ranker_decisions(inputs.scores, inputs.assignments, max_age=max_age)
        outcomes = _in_window(outcomes, "assigned_at", start, end)
        version_column = "ranker_version"
    else:
        outcomes = duration_outcomes(inputs.scores, inputs.assignments, inputs.completions, max_age=max_age)
        outcomes = _in_window(outcomes, "completed_at", start, end)
        version_column = "duration_version"
    if version is not None:
        outcomes = outcomes[outcomes[version_column].astype(str) == str(version)]
    outcomes = outcomes.reset_index(drop=True)
    return (per_day(outcomes, kind, min_outcomes, window_days(start, end)), summary(outcomes, kind, min_outcomes),
            outcomes)


# --------------------------------------------------------------------------- the lake


def read_scores(start: datetime | str | pd.Timestamp, end: datetime | str | pd.Timestamp,
                settings: Settings | None = None) -> pd.DataFrame:
    """The scores rows (``SCORE_COLUMNS``) written in ``[start, end)``, from the hour files that can hold them."""
    settings = settings or get_settings()
    lo, hi = _ts(start), _ts(end)
    first, last = hour_key(lo - pd.Timedelta(hours=1)), hour_key(hi)
    frames = []
    for hour in scored_hours(settings):
        if not first <= hour <= last:
            continue
        fs, path = storage.filesystem(hour_uri(settings, hour))
        with fs.open(path, "rb") as handle:
            frames.append(pq.read_table(handle, columns=SCORE_COLUMNS).to_pandas())
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=TS_DTYPE if c == TIMESTAMP_COLUMN else object)
                             for c in SCORE_COLUMNS})
    frame = pd.concat(frames, ignore_index=True)
    frame[TIMESTAMP_COLUMN] = _utc(frame[TIMESTAMP_COLUMN])
    return _in_window(frame, TIMESTAMP_COLUMN, lo, hi).reset_index(drop=True)


def _events(lake_uri: str, event_type: str, start: pd.Timestamp | None, end: pd.Timestamp,
            columns: list[str], task_ids: Iterable[str] | None = None) -> pd.DataFrame:
    where = None
    if task_ids is not None:
        import pyarrow as pa

        where = pc.field("task_id").isin(pa.array(sorted(set(task_ids)), pa.string()))
    table = lake.read_events(lake_uri, event_type, None if start is None else start.to_pydatetime(),
                             end.to_pydatetime(), columns=columns, where=where)
    frame = table.to_pandas()
    frame["occurred_at"] = _utc(frame["occurred_at"])
    return frame


def load_inputs(kind: TrainingSetKind, start: datetime | str | pd.Timestamp, end: datetime | str | pd.Timestamp,
                settings: Settings | None = None, *, served_for: timedelta = SERVED_FOR,
                lookback: timedelta = LOOKBACK) -> RealisedInputs:
    """What ``realised_from_frames`` needs for the outcomes in ``[start, end)``, from the lake.

    Scores written in ``[start - served_for, end)``. Ranking: assignments in ``[start - served_for, end)`` (an
    assignment just before the window makes a task's assignment in it a later one). Duration: the completions
    in the window, and the assignments and completions of those tasks over ``lookback`` before it (the
    assignment in force and the first completion after it, as the features compute them).
    """
    settings = settings or get_settings()
    lo, hi = _ts(start), _ts(end)
    scores = read_scores(lo - pd.Timedelta(served_for), hi, settings)
    assigned_columns = ["task_id", "assignee_id", "previous_assignee_id", "occurred_at"]
    completed_columns = ["task_id", "occurred_at"]
    if kind == "ranking":
        assignments = _events(settings.lake_uri, "task_assigned", lo - pd.Timedelta(served_for), hi,
                              assigned_columns)
        completions = pd.DataFrame({"task_id": pd.Series(dtype=object), "occurred_at": pd.Series(dtype=TS_DTYPE)})
        return RealisedInputs(scores, assignments, completions)
    recent = _events(settings.lake_uri, "task_completed", lo, hi, completed_columns)
    ids = set(recent["task_id"].dropna().astype(str))
    since = lo - pd.Timedelta(lookback)
    assignments = _events(settings.lake_uri, "task_assigned", since, hi, assigned_columns, ids)
    completions = _events(settings.lake_uri, "task_completed", since, hi, completed_columns, ids)
    return RealisedInputs(scores, assignments, completions)


def realised_performance(model: str, start: datetime | str | pd.Timestamp, end: datetime | str | pd.Timestamp, *,
                         settings: Settings | None = None, min_outcomes: int = DEFAULT_MIN_OUTCOMES,
                         version: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``model``'s realised performance on the outcomes in ``[start, end)``: per day and overall."""
    kind = model_spec(model).training_set
    inputs = load_inputs(kind, start, end, settings)
    daily, overall, outcomes = realised_from_frames(kind, inputs, start, end, min_outcomes=min_outcomes,
                                                    version=version)
    log.info("%s: %d %s in [%s, %s) from %d scores rows", model, len(outcomes),
             "decisions" if kind == "ranking" else "completions", start, end, len(inputs.scores))
    return daily, overall


# --------------------------------------------------------------------------- the holdout


@dataclass(frozen=True)
class HoldoutFigures:
    """The champion's holdout figures, where each came from, and the figures no source had."""

    figures: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def holdout_from_gates(gates: str | Sequence[Mapping[str, Any]] | None) -> dict[str, float]:
    """The champion's own holdout levels among its promotion gates (``GATE_FIGURES``); the rest of the gates
    are improvements, ratios or checks, not levels."""
    if isinstance(gates, str):
        gates = json.loads(gates) if gates.strip() else []
    out = {}
    for gate in gates or []:
        name = GATE_FIGURES.get(str(gate.get("name")))
        value = _finite(gate.get("value"))
        if name is not None and value is not None:
            out[name] = value
    return out


def holdout_from_run_metrics(metrics: Mapping[str, float], kind: TrainingSetKind) -> dict[str, tuple[float, str]]:
    """Each figure from a training run's metrics: the ``test`` split's, else ``valid``'s, with the metric name."""
    out = {}
    for name, metric in RUN_FIGURES[kind].items():
        for split in RUN_SPLITS:
            value = _finite(metrics.get(f"{split}_{metric}"))
            if value is not None:
                out[name] = (value, f"{split}_{metric}")
                break
    return out


def promotion_record(model: str, version: str, settings: Settings | None = None) -> dict[str, Any] | None:
    """The newest ``promote`` audit record of ``model`` ``version`` (a rollback's record has no gates: the
    version's own promotion holds them), or None."""
    from maestro_ml.registry import audit

    records = audit.history(model, settings)
    promoted = records[(records["action"] == "promote") & (records["version"].astype(str) == str(version))]
    return None if promoted.empty else dict(promoted.iloc[-1].to_dict())


def _run_metrics(model: str, version: str, settings: Settings) -> tuple[str | None, dict[str, float]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    run_id = client.get_model_version(model_spec(model).registered_name, version).run_id
    if not run_id:
        return None, {}
    return run_id, dict(client.get_run(run_id).data.metrics)


def champion_holdout(model: str, version: str, settings: Settings | None = None) -> HoldoutFigures:
    """``model`` ``version``'s holdout figures: its promotion record's levels first, the training run's held-out
    split for the rest (module docstring); ``missing`` lists the realised metrics neither had."""
    settings = settings or get_settings()
    kind = model_spec(model).training_set
    figures: dict[str, float] = {}
    sources: dict[str, str] = {}
    record = promotion_record(model, version, settings)
    if record is not None:
        for name, value in holdout_from_gates(record.get("gates")).items():
            figures[name] = value
            sources[name] = f"promotion audit record {record.get('record_id')} (gate on its holdout)"
    try:
        run_id, metrics = _run_metrics(model, version, settings)
    except Exception as error:  # MLflow down or the version gone: the audit's figures still stand
        log.warning("%s v%s: no training-run metrics (%s)", model, version, error)
        run_id, metrics = None, {}
    for name, (value, metric) in holdout_from_run_metrics(metrics, kind).items():
        if name not in figures:
            figures[name] = value
            sources[name] = f"training run {run_id} metric {metric}"
    realised = RANKER_METRICS if kind == "ranking" else DURATION_METRICS
    return HoldoutFigures(figures, sources, [m for m in realised if m not in figures])


def holdout_figures(model: str, version: str, settings: Settings | None = None) -> dict[str, float]:
    """``champion_holdout(...).figures``: metric -> the champion's holdout value."""
    return champion_holdout(model, version, settings).figures


def compare_with_holdout(overall: Mapping[str, Any], holdout: Mapping[str, float],
                         min_outcomes: int = DEFAULT_MIN_OUTCOMES) -> dict[str, dict[str, Any]]:
    """Per realised metric: ``realised``, ``n``, ``holdout``, ``gap`` (realised - holdout), ``enough``
    (``n >= min_outcomes``), ``worse`` (by the metric's direction; coverage: further from its nominal level)
    and ``status`` ("ok", "insufficient" or "no holdout figure"). Gap and verdict are None unless both figures
    exist and enough outcomes are behind the realised one: too few outcomes is never a gap of 0."""
    out = {}
    for name, fig in overall.items():
        if not isinstance(fig, Mapping) or "value" not in fig:
            continue
        n = int(fig.get("n") or 0)
        value = _finite(fig.get("value"))
        enough = n >= min_outcomes
        reference = _finite(holdout.get(name))
        gap = worse = None
        if not enough or value is None:
            status = "insufficient"
            value = None
        elif reference is None:
            status = "no holdout figure"
        else:
            status, gap = "ok", value - reference
            if name in NOMINAL:
                worse = abs(value - NOMINAL[name]) > abs(reference - NOMINAL[name])
            elif name in HIGHER_IS_BETTER:
                worse = gap < 0 if HIGHER_IS_BETTER[name] else gap > 0
        out[name] = {"realised": value, "n": n, "holdout": reference, "gap": gap, "enough": enough,
                     "worse": worse, "status": status}
    return out
