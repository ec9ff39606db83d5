"""Offline evaluation of the assignment ranker and the duration model: pure functions on pandas/numpy, no Airflow.

* ``maestro_ml.evaluation.ranking``: NDCG@k and MRR per assignment decision, the observed and the
  truth relevance labels (their definitions live in that module's docstring), and the baselines
  (random, least loaded, best skill match);
* ``maestro_ml.evaluation.duration``: MAE, MAPE and interval coverage, the slip-ratio baseline and
  the truth floor;
* ``maestro_ml.evaluation.splits``: time-ordered train / validation / test splits on whole decisions.
"""

from __future__ import annotations

from maestro_ml.evaluation.duration import duration_report, global_median_slip, slip_baseline, truth_mae
from maestro_ml.evaluation.ranking import (
    baseline_reports,
    join_truth,
    least_loaded_scores,
    mrr,
    ndcg_at_k,
    observed_relevance,
    random_scores,
    ranking_report,
    skill_overlap_scores,
    truth_relevance,
)
from maestro_ml.evaluation.splits import SplitBounds, split_bounds, split_by_bounds, time_split

__all__ = [
    "SplitBounds",
    "baseline_reports",
    "duration_report",
    "global_median_slip",
    "join_truth",
    "least_loaded_scores",
    "mrr",
    "ndcg_at_k",
    "observed_relevance",
    "random_scores",
    "ranking_report",
    "skill_overlap_scores",
    "slip_baseline",
    "split_bounds",
    "split_by_bounds",
    "time_split",
    "truth_mae",
    "truth_relevance",
]
