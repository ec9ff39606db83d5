"""
# promote_models

Which model version serves. Runs when a training registers a new `challenger` (the model Assets); daily at
05:30 UTC for any challenger still undecided (its holdout, the days after its training window, did not exist
yet when it was trained); and by hand from the UI or the REST API with Params (`model`, `action`, `version`,
`reason`, `force`). With
`MAESTRO_PROMOTION_APPROVAL=required` a passing promotion also waits for a person's approval; the default
(`auto`) never waits.

1. **check_params**: one request per model. A manual `promote` or `rollback`, and any `force`, needs a
   `reason`; a bad request fails here, without retries.
2. **resolve_request**: the candidate version (`@challenger` unless `version` is given) and the aliases
   the decision is taken on.
3. **build_holdout**: the newest complete days of decisions after both models' training windows, built
   point in time by the training-set code from the model's feature service. None yet: a visible skip.
4. **validate_holdout**: the training sets' Great Expectations gate, on the holdout.
5. **evaluate_candidate**: candidate and champion (for a first model: the strongest baseline) re-scored in
   this process on the same holdout; gates: the paired-bootstrap 95% lower bound of the primary metric's
   improvement above the margin, MRR or interval coverage, single-task p99 latency, size on disk, a load in
   a clean process. The gate table is in the log.
6. **approve_promotion**: Airflow's human-in-the-loop step, only with `MAESTRO_PROMOTION_APPROVAL=required`
   and only for a `promote` that passed every gate: it shows the gate table and waits (the task is *awaiting
   input*) until someone approves or rejects it, with a reason, from the UI's Required Actions or the REST API.
   Unanswered within 24 hours, the promotion is rejected. Otherwise it passes on at once, without waiting.
7. **apply_decision**: moves `champion` (keeping `previous_champion`) only when every gate passed (`force`
   skips the statistical gate only) and, when asked, a person approved; otherwise tags the version
   `promotion=rejected` with the gate values (a rejection at approval: with the approver and their reason).
   A `rollback` points `champion` back at `previous_champion`. Every decision appends an audit record
   (`python -m maestro_ml.registry history <model>`); a moved champion updates its model's champion Asset.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import AssetOrTimeSchedule, Param, dag
from airflow.timetables.trigger import CronTriggerTimetable

from maestro_ml.orchestration.assets import TASK_ASSIGNMENT_MODEL, TASK_DURATION_MODEL
from maestro_ml.orchestration.defaults import BATCH_DEFAULT_ARGS
from maestro_ml.orchestration.promotion import (
    apply_decision,
    approve_promotion,
    build_holdout,
    check_params,
    evaluate_candidate,
    resolve_request,
    run_timeout,
    validate_holdout,
)


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("30 5 * * *", timezone="UTC"),
                                 assets=(TASK_ASSIGNMENT_MODEL | TASK_DURATION_MODEL)),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=run_timeout(),
    default_args=BATCH_DEFAULT_ARGS,
    tags=["maestro", "registry"],
    doc_md=__doc__,
    params={
        "model": Param("task_assignment", type="string", enum=["task_assignment", "task_duration"], title="Model",
                       description="The model to decide on (asset-triggered runs take the model that was trained)"),
        "action": Param("evaluate", type="string", enum=["evaluate", "promote", "rollback"], title="Action",
                        description="evaluate: the gate table only; promote: move `champion` if every gate passes; "
                                    "rollback: point `champion` back at `previous_champion`"),
        "version": Param(None, type=["null", "string"], pattern=r"^\d+$", title="Version",
                         description="The version to evaluate or promote; empty: the `challenger`"),
        "reason": Param(None, type=["null", "string"], title="Reason (required for promote, rollback and force)",
                        description="Why: kept in the audit trail and on the version's tags"),
        "force": Param(False, type="boolean", title="Force",
                       description="Skip the statistical gate only (every other gate still applies); needs a reason"),
        "margin": Param(0.0, type="number", minimum=0, title="Margin",
                        description="The paired bootstrap 95% lower bound of the improvement must exceed this"),
        "holdout_days": Param(2, type="number", minimum=0.25, maximum=30, title="Holdout days",
                              description="Newest complete days of decisions to re-score both models on"),
    },
)
def promote_models() -> None:
    requests = check_params()
    resolved = resolve_request.expand(request=requests)
    holdouts = build_holdout.expand(context=resolved)
    validated = validate_holdout.expand(context=holdouts)
    evaluated = evaluate_candidate.expand(context=validated)
    approved = approve_promotion(evaluated)
    apply_decision.expand(context=approved)


promote_models()
