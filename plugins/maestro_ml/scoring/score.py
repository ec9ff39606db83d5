"""Score the open tasks: online features in batches, the ranker's top-k with reasons, the duration forecast.

* **Features** come from the Feast online store through ``feast_ext.online.get_service_features`` (the frame
  ``get_online_features(...).to_df()`` returns, read in bulk), for the champion's own feature service, at the
  scoring time (the on-demand views' request time), in batches of whole tasks.
* **Ranking.** Every open, unassigned task's candidates are scored in one ``predict`` call per batch, grouped
  by task (the ensemble blends within a group, as in training). The top ``top_k`` are kept with their scores,
  and each recommended user gets the ``REASONS_PER_ASSIGNEE`` features with the largest LightGBM contributions
  to its score (``pred_contrib``: the LightGBM half of the ensemble; the PyTorch scorer has no exact attribution).
* **Duration.** Every open task gets the champion's median and 80% / 90% intervals for one (task, user) pair:
  its assignee, or, for an unassigned task, the ranker's top recommendation (no forecast without either).
* **A task without online task features** is scored on the models' defaults (missing values are imputed as in
  training) and flagged ``features_missing = 1``, never dropped: a new task whose features are not
  materialized yet still gets recommendations, and the flag tells the reader to take them with care.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from maestro_ml.contracts.scores import DURATION_FIELDS, REASONS_PER_ASSIGNEE, TASK_RECOMMENDATIONS
from maestro_ml.feast_ext.store import service_features
from maestro_ml.features.training_sets import DECISION_LEAD
from maestro_ml.scoring.champions import Champion, check_signature

log = logging.getLogger(__name__)

GROUP_COLUMN = "decision_id"
# The served rows' model output: the ranker's score, the duration model's p50 in hours.
PREDICTION_COLUMN = "prediction"
ENTITY_KEYS = ("task_id", "user_id", "project_id", "reporter_id")
# About 1,000 tasks of 50 candidates per online read: bounded memory, few round trips.
BATCH_ROWS = 50_000
# A feature of task_features every task row carries (never null in the contract): null means no online row.
TASK_PRESENCE_FEATURE = "age_hours"
# The duration pyfunc's output columns, in order (training.serving.DURATION_COLUMNS), and where they go.
DURATION_OUTPUTS = dict(zip(("p50_hours", "p80_lower_hours", "p80_upper_hours", "p90_lower_hours",
                             "p90_upper_hours"), DURATION_FIELDS, strict=True))


@dataclass
class Served:
    """A loaded champion and what it reads."""

    champion: Champion
    pyfunc: Any
    inputs: list[str]

    @property
    def version(self) -> str:
        return self.champion.version


@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, started: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


def serve(champion: Champion, pyfunc: Any, store: Any) -> Served:
    """The champion ready to score: its inputs checked against its feature service (``SignatureMismatch``)."""
    return Served(champion, pyfunc, check_signature(champion, pyfunc, service_features(store, champion.feature_service)))


def _batches(pairs: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    """Slices of about ``rows`` rows that never split a task."""
    if pairs.empty:
        return
    sizes = pairs.groupby("task_id", sort=False).size()
    bucket = (sizes.cumsum() - 1) // max(rows, 1)
    labels = pairs["task_id"].map(bucket)
    for _, part in pairs.groupby(labels, sort=True):
        yield part.reset_index(drop=True)


def online_features(store: Any, service: str, pairs: pd.DataFrame, at: datetime) -> pd.DataFrame:
    """The online features of ``service`` for each (task, user) row of ``pairs``, looked up just before ``at``.

    Just before, as a training set looks a decision up (``DECISION_LEAD``): the online store holds the rows
    materialized over ``[.., at)`` and the on-demand views see the same request time, so the vector is the
    point-in-time offline vector of a decision taken at ``at``.
    """
    rows = {key: pairs[key].fillna("").astype(str).tolist() for key in ENTITY_KEYS}
    from maestro_ml.feast_ext.online import get_service_features

    frame = get_service_features(store, service, rows, request_time=at - DECISION_LEAD)
    return frame.reset_index(drop=True)


def contributions(served: Served, frame: pd.DataFrame) -> np.ndarray | None:
    """LightGBM's per-feature contributions to each row's score (n x features), or None without a booster."""
    model = served.pyfunc.unwrap_python_model()
    ensemble = getattr(model, "ensemble", None)
    if ensemble is None:
        return None
    from maestro_ml.training.serving import feature_matrix

    x = feature_matrix(frame, ensemble.features).to_numpy(dtype=np.float64)
    return np.asarray(ensemble.booster.predict(x, pred_contrib=True))[:, :-1]  # the last column is the bias


def explain(values: np.ndarray, names: list[str], k: int = REASONS_PER_ASSIGNEE) -> str:
    """The ``k`` features that raised the score most, largest first: 'feature (+0.41), ...'."""
    order = np.argsort(-values, kind="stable")[:k]
    return ", ".join(f"{names[i]} ({values[i]:+.2f})" for i in order)


def rank(served: Served, features: pd.DataFrame, pairs: pd.DataFrame, top_k: int,
         keep: list[pd.DataFrame] | None = None) -> pd.DataFrame:
    """Each task's top ``top_k`` candidates: ``task_id, rank, user_id, score, reasons``. With ``keep``, every
    row's inputs and score are appended to it (what was served, for monitoring)."""
    frame = features.assign(**{GROUP_COLUMN: pairs["task_id"].to_numpy()})
    columns = [GROUP_COLUMN, *served.inputs]
    scores = np.asarray(served.pyfunc.predict(frame.reindex(columns=columns)), dtype=np.float64)
    if keep is not None:
        keep.append(served_rows(features, served, pairs, scores))
    ranked = pd.DataFrame({"task_id": pairs["task_id"].to_numpy(), "user_id": pairs["user_id"].to_numpy(),
                           "score": scores, "_row": np.arange(len(pairs))})
    # Ties broken by user id, so a re-run ranks exactly alike.
    ranked = ranked.sort_values(["task_id", "score", "user_id"], ascending=[True, False, True], kind="mergesort")
    ranked["rank"] = ranked.groupby("task_id", sort=False).cumcount() + 1
    top = ranked[ranked["rank"] <= top_k].reset_index(drop=True)
    contrib = contributions(served, frame.iloc[top["_row"].to_numpy()])
    if contrib is None:
        top["reasons"] = ""
    else:
        names = served.pyfunc.unwrap_python_model().ensemble.features
        top["reasons"] = [explain(row, names) for row in contrib]
    return top.drop(columns="_row")


def served_rows(features: pd.DataFrame, served: Served, pairs: pd.DataFrame, prediction: np.ndarray) -> pd.DataFrame:
    """The inputs a model was served for each (task, user) row, with its prediction (``PREDICTION_COLUMN``)."""
    rows = features.reindex(columns=served.inputs).reset_index(drop=True)
    rows.insert(0, "user_id", pairs["user_id"].to_numpy())
    rows.insert(0, "task_id", pairs["task_id"].to_numpy())
    rows[PREDICTION_COLUMN] = prediction
    return rows


def forecast(served: Served, features: pd.DataFrame) -> pd.DataFrame:
    """The duration champion's median and interval bounds (hours) for each feature row, in ``DURATION_FIELDS``."""
    output = served.pyfunc.predict(features.reindex(columns=served.inputs))
    output = pd.DataFrame(output).reset_index(drop=True)
    return output.rename(columns=DURATION_OUTPUTS)[list(DURATION_FIELDS)].astype("float64")


def _missing_task_features(features: pd.DataFrame) -> np.ndarray:
    if TASK_PRESENCE_FEATURE not in features:
        return np.zeros(len(features), dtype=bool)
    return features[TASK_PRESENCE_FEATURE].isna().to_numpy()


def score_tasks(
    tasks: pd.DataFrame,
    pairs: pd.DataFrame,
    at: datetime,
    store: Any,
    ranker: Served | None,
    duration: Served | None,
    *,
    top_k: int,
    batch_rows: int = BATCH_ROWS,
    timings: Timings | None = None,
    keep: dict[str, list[pd.DataFrame]] | None = None,
) -> pd.DataFrame:
    """One row per open task (``tasks``, from ``open_tasks``) with the ``TASK_RECOMMENDATIONS`` columns
    (timestamps and the scoring hour are the caller's). With ``keep``, each model's served inputs and
    predictions are appended to ``keep[model]`` (``served_rows``)."""
    if ranker is None and duration is None:
        raise ValueError("scoring needs at least one champion")
    timings = timings or Timings()
    unassigned = tasks[tasks["assigned"] == 0]
    missing: set[str] = set()

    def read(served: Served, rows: pd.DataFrame) -> Iterator[tuple[pd.DataFrame, pd.DataFrame]]:
        """Each batch of ``rows`` with its online features; tasks without online task features noted."""
        for batch in _batches(rows, batch_rows):
            started = time.perf_counter()
            features = online_features(store, served.champion.feature_service, batch, at)
            timings.add("online_read", started)
            missing.update(batch.loc[_missing_task_features(features), "task_id"])
            yield batch, features

    ranked_parts = []
    if ranker is not None and not pairs.empty:
        for batch, features in read(ranker, pairs):
            started = time.perf_counter()
            ranked_parts.append(rank(ranker, features, batch, top_k,
                                     keep.setdefault(ranker.champion.model, []) if keep is not None else None))
            timings.add("predict", started)
    ranked = (pd.concat(ranked_parts, ignore_index=True) if ranked_parts
              else pd.DataFrame(columns=["task_id", "rank", "user_id", "score", "reasons"]))

    started = time.perf_counter()
    lists = ranked.groupby("task_id", sort=False).agg(
        recommended_user_ids=("user_id", list), recommended_scores=("score", list),
        recommendation_reasons=("reasons", list))
    out = tasks[["task_id", "project_id", "reporter_id", "assignee_id", "assigned"]].copy()
    out["open_task"] = 1
    out = out.join(lists, on="task_id")
    for column in ("recommended_user_ids", "recommended_scores", "recommendation_reasons"):
        out[column] = [v if isinstance(v, list) else [] for v in out[column]]
    top1 = ranked[ranked["rank"] == 1].set_index("task_id")["user_id"] if len(ranked) else pd.Series(dtype=object)
    out["forecast_user_id"] = out["assignee_id"].where(out["assigned"] == 1, out["task_id"].map(top1))
    timings.add("assemble", started)

    for name in DURATION_FIELDS:
        out[name] = np.nan
    if duration is not None:
        todo = out[out["forecast_user_id"].notna()]
        pairs_d = todo.rename(columns={"forecast_user_id": "user_id"})[["task_id", "user_id", "project_id",
                                                                      "reporter_id"]].reset_index()
        for batch, features in read(duration, pairs_d):
            started = time.perf_counter()
            predicted = forecast(duration, features)
            if keep is not None:
                keep.setdefault(duration.champion.model, []).append(
                    served_rows(features, duration, batch, predicted[DURATION_FIELDS[0]].to_numpy()))
            out.loc[batch["index"].to_numpy(), list(DURATION_FIELDS)] = predicted.to_numpy()
            timings.add("predict", started)
    # An unassigned task with no eligible candidate reads no features: counted in the log, never flagged.
    unread = unassigned.loc[~unassigned["task_id"].isin(pairs["task_id"]) if len(pairs) else unassigned.index,
                            "task_id"]
    out["features_missing"] = out["task_id"].isin(missing).astype("int64")
    out["ranker_version"] = ranker.version if ranker is not None else None
    out["duration_version"] = duration.version if duration is not None else None
    log.info("scored %d open tasks (%d unassigned, %d without candidates, %d without online task features)",
             len(out), len(unassigned), len(unread), int(out["features_missing"].sum()))
    columns = ["task_id", *(f.name for f in TASK_RECOMMENDATIONS.features if f.name != "scoring_hour")]
    return out[columns].reset_index(drop=True)
