"""The scores' contract: what ``score_open_tasks`` writes for each open task, to the lake and the online store.

One row per task per scoring hour, keyed by ``task_id`` and timestamped with the run's own write time
(``event_timestamp``): the product reads a task's recommendations and duration forecast with one
``get_online_features`` call of the ``task_recommendations_v1`` feature service. The Feast view is built
from ``TASK_RECOMMENDATIONS`` (``include/feature_repo/feature_views.py``); it is pushed, never
materialized, so it is not one of ``features.VIEWS``.

A task that was scored in the previous hour and is no longer open and unassigned keeps a row with empty
recommendations (``open_task`` / ``assigned`` say why), so the online store never serves a recommendation
for a task that has been assigned or closed since.
"""

from __future__ import annotations

from datetime import timedelta

from maestro_ml.contracts.features import Feature, View

SCORES_TABLE = "task_recommendations"
# What each champion was served per scoring hour (inputs and prediction, sampled): monitoring's "current" sample.
SERVED_TABLE = "served_inputs"
SCORES_SERVICE = "task_recommendations_v1"
# How many assignees are recommended by default, and how many feature contributions explain each one.
DEFAULT_TOP_K = 5
REASONS_PER_ASSIGNEE = 3
DURATION_FIELDS = ("duration_p50_hours", "duration_p80_lower_hours", "duration_p80_upper_hours",
                   "duration_p90_lower_hours", "duration_p90_upper_hours")

TASK_RECOMMENDATIONS = View(
    name=SCORES_TABLE,
    join_keys=("task_id",),
    description="The serving champions' view of each open task: ranked assignees with reasons, and a duration "
                "forecast with 80% and 90% intervals (score_open_tasks, hourly).",
    # Scores are refreshed every hour; two days covers a scheduler outage without serving nothing.
    ttl=timedelta(days=2),
    cadence="hourly",
    features=(
        Feature("scoring_hour", "String", "The scoring hour (UTC, YYYY-MM-DDTHH) the row was computed for."),
        Feature("open_task", "Int64", "1 while the task is open (not done).", 0, 1),
        Feature("assigned", "Int64", "1 when the task has an assignee (no recommendations are made for it).", 0, 1),
        Feature("recommended_user_ids", "Array(String)", "Up to top-k candidates, best first (empty when assigned, "
              "closed, or no ranker champion)."),
        Feature("recommended_scores", "Array(Float64)", "The ranker's score of each recommended user."),
        Feature("recommendation_reasons", "Array(String)", "Per recommended user: the features that raised its "
              "LightGBM score most, with their contributions (pred_contrib), e.g. 'project_share (+0.41)'."),
        Feature("forecast_user_id", "String", "Whose duration is forecast: the assignee, or the top recommendation of "
              "an unassigned task.", nullable=True),
        *(Feature(name, "Float64", f"{name.removeprefix('duration_').replace('_', ' ')} of the task's duration from "
                "assignment to completion, by the duration champion.", 0.0, None, nullable=True)
          for name in DURATION_FIELDS),
        Feature("ranker_version", "String", "The task-assignment champion version that ranked (empty: none).",
              nullable=True),
        Feature("duration_version", "String", "The task-duration champion version that forecast (empty: none).",
              nullable=True),
        Feature("features_missing", "Int64", "1 when the online store had no task features for the task: it was "
              "scored on the models' defaults (missing values imputed) and should be read with care.", 0, 1),
    ),
)
