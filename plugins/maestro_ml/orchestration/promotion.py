"""The ``@task`` functions of ``promote_models``: one request per model, each step passing its context on.

A failed gate is a decision (the run succeeds, the version is tagged ``promotion=rejected``); a request
no retry can fix fails at once; a holdout that does not exist yet is a visible skip. With
``MAESTRO_PROMOTION_APPROVAL=required`` a passing promotion waits for a person (``approve_promotion``, Airflow's
human-in-the-loop operator); a rejection there is a decision too.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import AssetAlias, Param, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from airflow.utils.types import DagRunType

from maestro_ml.orchestration.assets import CHAMPIONS

CHAMPION_CHANGES = AssetAlias("champion_changes")
# How long a promotion waits for its approval; unanswered, it is rejected (and recorded as such).
APPROVAL_TIMEOUT = timedelta(hours=24)
# Everything but the wait for a person: the holdout, the re-scoring, the gates, the decision.
RUN_TIMEOUT = timedelta(hours=2)


def _model_of(key: Any, events: Any) -> str | None:
    for candidate in (key, *(getattr(e, "asset", None) for e in events or [])):
        name = getattr(candidate, "name", None) or (candidate if isinstance(candidate, str) else None)
        if name and name.endswith("_model"):
            return str(name.removesuffix("_model"))
    return None


@task(multiple_outputs=False)
def check_params(params: dict | None = None, triggering_asset_events=None, dag_run=None) -> list[dict]:
    """One request per model: the Params of a manual run; ``promote`` of each newly trained model's challenger
    (a model Asset); or, in the daily run, ``promote`` of each challenger still undecided (its holdout was not
    there yet when it was trained)."""
    params = params or {}
    scheduled = getattr(dag_run, "run_type", None) == DagRunType.SCHEDULED
    manual = not triggering_asset_events and not scheduled
    if scheduled:
        from maestro_ml.promotion.steps import undecided_challengers

        models = undecided_challengers()
        if not models:
            raise AirflowSkipException("every challenger is decided (or is the champion): nothing to do today")
    elif manual:
        models = [params["model"]]
    else:
        models = sorted({m for key, events in triggering_asset_events.items() if (m := _model_of(key, events))})
    if not models:
        raise AirflowFailException("no model to decide on: trigger with the `model` Param, or from a model Asset")
    action = params.get("action", "promote") if manual else "promote"
    reason = params.get("reason")
    if manual and (action in ("promote", "rollback") or params.get("force")) and not (reason or "").strip():
        raise AirflowFailException(f"a manual {action} needs a `reason` (why this change?): fill it in and trigger again")
    if params.get("force") and action != "promote":
        raise AirflowFailException("`force` only applies to `promote`")
    who = (getattr(dag_run, "triggering_user_name", None) or getattr(dag_run, "run_id", "")) if dag_run else ""
    return [{"model": model, "action": action, "version": params.get("version") if manual else None,
             "reason": reason, "force": bool(params.get("force")) and manual, "manual": manual,
             "margin": float(params.get("margin", 0.0)), "holdout_days": float(params.get("holdout_days", 2)),
             "who": who or "promote_models"} for model in models]


@task(multiple_outputs=False)
def resolve_request(request: dict) -> dict:
    """The candidate version and the alias state the decision is taken on (re-checked when the alias moves)."""
    from maestro_ml.promotion.steps import BadPromotionRequest, resolve

    try:
        resolved = resolve(request["model"], request["action"], request["version"], request["reason"],
                           request["force"], request["manual"])
    except BadPromotionRequest as exc:
        raise AirflowFailException(str(exc)) from exc
    return {**request, "resolved": resolved}


@task(multiple_outputs=False)
def build_holdout(context: dict, run_id=None) -> dict:
    """The newest complete days of decisions after both training windows, built like a training set."""
    from maestro_ml.promotion.steps import NoFairHoldout
    from maestro_ml.promotion.steps import build_holdout as build

    if context["action"] == "rollback":
        return {**context, "holdout": None}
    try:
        holdout = build(context["resolved"], context["holdout_days"], run_key=str(run_id).replace(":", "_"))
    except NoFairHoldout as exc:
        raise AirflowSkipException(f"{context['model']}: {exc}") from exc
    return {**context, "holdout": holdout}


@task(multiple_outputs=False)
def validate_holdout(context: dict) -> dict:
    """The Great Expectations gate of the training sets, on the holdout; a failure stops this model here."""
    from maestro_ml.contracts.models import model_spec
    from maestro_ml.features.steps import validate_sets
    from maestro_ml.orchestration.tasks import fail_without_retry_on_bad_data

    if context["holdout"] is None:
        return context
    floor = model_spec(context["model"]).floor.evaluate
    fail_without_retry_on_bad_data(lambda: validate_sets(context["holdout"], min_groups=floor))
    return context


@task(multiple_outputs=False)
def evaluate_candidate(context: dict) -> dict:
    """Candidate and champion (or the strongest baseline) re-scored on the holdout; every gate, in a table."""
    from maestro_ml.promotion.steps import evaluate

    if context["holdout"] is None:
        return {**context, "evaluation": None}
    return {**context, "evaluation": evaluate(context["resolved"], context["holdout"], context["margin"])}


def run_timeout() -> timedelta:
    """``promote_models``' ``dagrun_timeout``: the work, plus the wait for a person when approval is required."""
    from maestro_ml.settings import get_settings

    return RUN_TIMEOUT + (APPROVAL_TIMEOUT if get_settings().promotion_approval == "required" else timedelta(0))


def needs_approval(context: dict) -> bool:
    """Only a promotion that passed every gate waits for a person, and only with MAESTRO_PROMOTION_APPROVAL=required."""
    from maestro_ml.settings import get_settings

    evaluation = context.get("evaluation")
    return (get_settings().promotion_approval == "required" and context["action"] == "promote"
            and evaluation is not None and bool(evaluation["promote"]))


def approval_body(context: dict) -> str:
    """What the approver reads (Markdown): the candidate, what it was judged against, on which holdout, the gates."""
    resolved, evaluation = context["resolved"], context["evaluation"]
    holdout = evaluation["holdout"]
    lines = [
        f"**{context['model']}** version **{resolved['candidate']}** passed every gate"
        f"{' (forced: the statistical gate was skipped)' if resolved['force'] else ''}; approving moves `champion` "
        f"to it (now: {resolved['state']['champion'] or 'none'}).",
        "",
        f"Judged against {evaluation['against']} on the holdout {holdout['start']} .. {holdout['end']}; "
        f"requested by {context['who']}{': ' + resolved['reason'] if resolved['reason'] else ''}.",
        "",
        evaluation["table"],
        "",
        "To reject, say why in **Reason**: it goes into the audit trail and on the version's tags.",
    ]
    return "\n".join(lines)


# What the approver fills in beside Approve / Reject.
APPROVAL_FORM = {
    "reason": Param("", type="string", title="Reason",
                    description="Why you approve or reject: kept in the audit trail (say why when you reject)"),
}


class ApprovePromotion(HITLOperator):
    """A person approves or rejects one model's passing promotion (Airflow's human-in-the-loop operator).

    Mapped one per model like the other steps. It waits (in the ``awaiting_input`` state, answered from the UI's
    Required Actions or the REST API) only when :func:`needs_approval`; otherwise it passes its context on at once.
    It returns the context with an ``approval`` entry (``None``: nobody was asked) that ``apply_decision`` acts on.
    A rejection does not skip or fail anything: it is a decision, recorded by ``apply_decision``. Unanswered
    within ``APPROVAL_TIMEOUT``, the promotion is rejected.
    """

    APPROVE = "Approve"
    REJECT = "Reject"
    # The subject and the body are set from the context at execution time; the gate table is data, not a template.
    template_fields = ()

    def __init__(self, *, promotion: dict, **kwargs: Any) -> None:
        kwargs.setdefault("params", APPROVAL_FORM)
        super().__init__(subject="Promote this model version?", options=[self.APPROVE, self.REJECT],
                         defaults=[self.REJECT], multiple=False, response_timeout=APPROVAL_TIMEOUT, **kwargs)
        self.promotion = promotion

    def execute(self, context: Any) -> Any:
        if not needs_approval(self.promotion):
            self.log.info("%s: no approval needed (MAESTRO_PROMOTION_APPROVAL=auto, or nothing to promote)",
                          self.promotion["model"])
            return {**self.promotion, "approval": None}
        resolved = self.promotion["resolved"]
        self.subject = f"Promote {self.promotion['model']} version {resolved['candidate']} to champion?"
        self.body = approval_body(self.promotion)
        self.log.info("waiting for a person to approve or reject:\n%s", self.body)
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        response = super().execute_complete(context, event)
        user = response.get("responded_by_user") or {}
        reason = str((response.get("params_input") or {}).get("reason") or "").strip()
        if event.get("timedout"):
            who, reason = self.promotion["who"], f"no answer within {APPROVAL_TIMEOUT.total_seconds() / 3600:g} hours"
        else:
            who = user.get("name") or user.get("id") or "unknown"
        approved = list(response["chosen_options"]) == [self.APPROVE]
        self.log.info("%s by %s%s", "approved" if approved else "rejected", who, f": {reason}" if reason else "")
        return {**self.promotion, "approval": {"approved": approved, "who": who, "reason": reason or None,
                                             "at": response["responded_at"].isoformat()}}


def approve_promotion(contexts: Any) -> Any:
    """The approval step, one per model (see :class:`ApprovePromotion`)."""
    return ApprovePromotion.partial(task_id="approve_promotion", params=APPROVAL_FORM).expand(promotion=contexts).output


def decision_of(context: dict) -> tuple[dict, str, bool]:
    """The request as decided: who decided, and whether a person approved (``approval``: the approval step's answer)."""
    resolved, approval = context["resolved"], context.get("approval")
    if approval is None:
        return resolved, context["who"], True
    request_reason, reason = resolved["reason"], approval["reason"]
    if approval["approved"]:
        why = "; ".join(r for r in (request_reason, f"approved: {reason}" if reason else None) if r) or None
    else:  # apply_decision records it as "rejected at approval: <why>"
        why = "; ".join(r for r in (reason or "no reason given", f"requested: {request_reason}"
                                    if request_reason else None) if r)
    return {**resolved, "reason": why}, approval["who"], bool(approval["approved"])


@task(multiple_outputs=False, outlets=[CHAMPION_CHANGES])
def apply_decision(context: dict, outlet_events=None, dag=None, run_id=None) -> dict:
    """Promote, reject (recorded, not raised) or roll back; append the audit record; announce a moved champion."""
    import logging

    from maestro_ml.promotion.steps import apply_decision as apply

    resolved, who, approved = decision_of(context)
    result = apply(resolved, context["evaluation"], who, f"{dag.dag_id}/{run_id}", approved=approved)
    evaluation = context["evaluation"]
    if evaluation is not None:
        logging.getLogger(__name__).info("gates:\n%s", evaluation["table"])
    if result["changed"]:
        outlet_events[CHAMPION_CHANGES].add(CHAMPIONS[context["model"]], extra={
            "model": context["model"], "champion": result["champion_after"], "previous": result["champion_before"],
            "action": result["action"]})
    elif result["action"] == "reject":
        why = f"rejected at approval by {who}: {resolved['reason']}" if not approved else (
            evaluation["reasons"] if evaluation else "")
        logging.getLogger(__name__).warning("%s v%s not promoted: %s", context["model"], result["version"], why)
    return result
