"""
# monitor_models

Watches the serving champions, daily (for the day before) and by hand with Params. For each model with a
champion it compares what the champion was trained on with the decisions of the day, checks the outcomes that
arrived since scoring against the champion's holdout figures, writes one report, and asks for a retraining
when a rule fires.

1. **check_params**: the models (`all` or one) and the day (default: yesterday, UTC), and any rule
   overrides; a bad value fails here, without retries.
2. **monitor_model**: one per model. Feature drift per feature of the champion's signature (its training
   set against the last day's decisions, built point in time: normed Wasserstein, Jensen-Shannon, KS for
   small samples, PSI
   alongside; thresholds per feature group), prediction drift (scores, p50 hours), realised performance per
   day with the counts (hit@1, hit@5, NDCG@5 of the recommendations against the actual assignee; p50
   error and 80% / 90% coverage of completed tasks) against the champion's holdout figures, the rules, and
   the report: `reports/monitoring/<model>/<date>.html` with a JSON summary beside it, and an MLflow run in
   `maestro-monitoring` (the path is in the log). No champion, or nothing served that day: skipped with the
   counts.
3. **request_retraining**: one per model. When a rule fired (drift on at least N features for K
   consecutive days, or realised performance below the holdout figure by more than the margin with enough
   outcomes) and no retraining was requested within the cool-down, a `retraining_requested` event whose extra
   names the model, the rule and the figures; the model's training DAG runs on it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag
from airflow.timetables.trigger import CronTriggerTimetable

from maestro_ml.orchestration.defaults import BATCH_DEFAULT_ARGS
from maestro_ml.orchestration.monitoring import check_params, monitor_model, request_retraining


@dag(
    schedule=CronTriggerTimetable("45 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=BATCH_DEFAULT_ARGS,
    tags=["maestro", "monitoring"],
    doc_md=__doc__,
    params={
        "model": Param("all", type="string", enum=["all", "task_assignment", "task_duration"], title="Model",
                       description="The champion to watch, or all of them"),
        "date": Param(None, type=["null", "string"], format="date", title="Day",
                      description="The day to watch (UTC); empty: yesterday"),
        "drift_min_features": Param(None, type=["null", "integer"], minimum=1, title="Drifted features",
                                    description="Drift fires when at least this many features drift (default 5)"),
        "drift_min_days": Param(None, type=["null", "integer"], minimum=1, title="Drifted days",
                                description="... on this many consecutive days (default 2)"),
        "cooldown_days": Param(None, type=["null", "integer"], minimum=0, title="Cool-down days",
                               description="No new retraining request this many days after one (default 3)"),
        "min_outcomes": Param(None, type=["null", "integer"], minimum=1, title="Minimum outcomes",
                              description="Outcomes a realised figure needs to be judged (default 30)"),
    },
)
def monitor_models() -> None:
    requests = check_params()
    monitored = monitor_model.expand(request=requests)
    request_retraining.expand(result=monitored)


monitor_models()
