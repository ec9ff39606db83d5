"""The ``@task`` functions of ``promote_models``: one request per model, each step passing its context on.

A failed gate is a decision (the run succeeds, the version is tagged ``promotion=rejected``); a request
no retry can fix fails at once; a holdout that does not exist yet is a visible skip.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import AssetAlias, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from maestro_ml.orchestration.assets import CHAMPIONS

CHAMPION_CHANGES = AssetAlias("champion_changes")


def _model_of(key: Any, events: Any) -> str | None:
    for candidate in (key, *(getattr(e, "asset", None) for e in events or [])):
        name = getattr(candidate, "name", None) or (candidate if isinstance(candidate, str) else None)
        if name and name.endswith("_model"):
            return str(name.removesuffix("_model"))
    return None


@task(multiple_outputs=False)
def check_params(params: dict | None = None, triggering_asset_events=None, dag_run=None) -> list[dict]:
    """One request per model: the Params of a manual run, or ``promote`` of each newly trained model's challenger."""
    params = params or {}
    manual = not triggering_asset_events
    if manual:
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


@task(multiple_outputs=False, outlets=[CHAMPION_CHANGES])
def apply_decision(context: dict, outlet_events=None, dag=None, run_id=None) -> dict:
    """Promote, reject (recorded, not raised) or roll back; append the audit record; announce a moved champion."""
    import logging

    from maestro_ml.promotion.steps import apply_decision as apply

    result = apply(context["resolved"], context["evaluation"], context["who"], f"{dag.dag_id}/{run_id}")
    evaluation = context["evaluation"]
    if evaluation is not None:
        logging.getLogger(__name__).info("gates:\n%s", evaluation["table"])
    if result["changed"]:
        outlet_events[CHAMPION_CHANGES].add(CHAMPIONS[context["model"]], extra={
            "model": context["model"], "champion": result["champion_after"], "previous": result["champion_before"],
            "action": result["action"]})
    elif result["action"] == "reject":
        logging.getLogger(__name__).warning("%s v%s not promoted: %s", context["model"], result["version"],
                                            evaluation["reasons"] if evaluation else "")
    return result
