"""The ``@task`` functions of ``monitor_models``: one monitoring run per champion, and the retraining request.

A model without a champion, or without scores served that day, is a visible skip with the counts; a fired
rule (not held back by the cool-down) emits a ``retraining_requested`` event whose extra names the model,
the rule and its figures.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from maestro_ml.orchestration.assets import RETRAINING_REQUESTED

log = logging.getLogger(__name__)


@task(multiple_outputs=False)
def check_params(params: dict | None = None, data_interval_end=None, dag_run=None) -> list[dict]:
    """The models and the day to monitor: a scheduled run watches yesterday (the last complete day)."""
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from maestro_ml.contracts.models import MODELS
    from maestro_ml.monitoring.steps import MonitoringRules

    params = params or {}
    model = params.get("model") or "all"
    if model != "all" and model not in MODELS:
        raise AirflowFailException(f"model {model!r}: use one of all, {', '.join(MODELS)}")
    if params.get("date"):
        day = pd.Timestamp(params["date"]).date()
    else:
        day = (pd.Timestamp(data_interval_end or datetime.now(UTC)).floor("D") - timedelta(days=1)).date()
    rules = {name: params[name] for name in MonitoringRules.__dataclass_fields__ if params.get(name) is not None}
    try:
        MonitoringRules(**rules)
    except TypeError as exc:
        raise AirflowFailException(f"bad rule Params: {exc}") from exc
    models = list(MODELS) if model == "all" else [model]
    return [{"model": m, "day": day.isoformat(), "rules": rules} for m in models]


@task(multiple_outputs=False)
def monitor_model(request: dict) -> dict:
    """Drift, realised performance, the rules and the report of one champion for one day."""
    from datetime import date

    from maestro_ml.monitoring.steps import MonitoringRules, NothingToMonitor, monitor

    try:
        result = monitor(request["model"], date.fromisoformat(request["day"]), MonitoringRules(**request["rules"]))
    except NothingToMonitor as exc:
        raise AirflowSkipException(str(exc)) from exc
    log.info("monitoring report: %s", result["uris"]["html"])
    return result


@task(multiple_outputs=False, outlets=[RETRAINING_REQUESTED])
def request_retraining(result: dict, outlet_events: Any = None) -> dict:
    """A ``retraining_requested`` event for this model if its rules fired (its training DAG then runs)."""
    request = result.get("retraining")
    if not request:
        held = f" ({result['suppressed']})" if result.get("suppressed") else ""
        raise AirflowSkipException(f"{result['model']}: no rule fired{held}: no retraining requested")
    log.info("retraining requested for %s: %s", request["model"], request["reason"])
    outlet_events[RETRAINING_REQUESTED].extra = request
    return dict(request)
