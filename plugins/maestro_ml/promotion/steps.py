"""The steps of ``promote_models``, as plain functions: which versions, which holdout, which decision, and its record.

Each returns a small JSON-able dict (an XCom). A failed gate is a decision: ``apply_decision`` tags the
version ``promotion=rejected`` with the gate values and records it; nothing raises. A gate that cannot
be computed, a stale champion (``AliasChanged``) or a bad request raise.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.contracts.models import model_spec
from maestro_ml.feast_ext.store import get_store, service_features
from maestro_ml.features.training_sets import training_set
from maestro_ml.lake import committed_hours
from maestro_ml.promotion.evaluate import decide
from maestro_ml.registry import CHALLENGER, declared_feature_service
from maestro_ml.registry.aliases import AliasState, alias_state, promote, rollback
from maestro_ml.registry.audit import Record, append
from maestro_ml.settings import Settings, get_settings, join_uri, to_utc

log = logging.getLogger(__name__)
ACTIONS = ("evaluate", "promote", "rollback")


class NoFairHoldout(LookupError):
    """No complete day of decisions lies after both models' training windows yet: the decision must wait."""


class BadPromotionRequest(ValueError):
    """A request no retry can fix (an unknown version, a manual action without a reason, nothing to roll back)."""


def _version_window_end(model: str, version: str, settings: Settings) -> datetime | None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    mv = client.get_model_version(model_spec(model).registered_name, version)
    if not mv.run_id:
        return None
    end = client.get_run(mv.run_id).data.tags.get("window_end")
    return to_utc(end) if end else None


def undecided_challengers(settings: Settings | None = None) -> list[str]:
    """The models whose ``challenger`` is not the champion and has no promote or reject record yet: a
    decision that waited for a fair holdout (``NoFairHoldout``), which the daily run takes up again."""
    from maestro_ml.contracts.models import MODELS
    from maestro_ml.registry.audit import history

    settings = settings or get_settings()
    pending = []
    for model in MODELS:
        state = alias_state(model, settings)
        if state.challenger is None or state.challenger == state.champion:
            continue
        records = history(model, settings)
        decided = records[records["action"].isin(["promote", "reject"]) & (records["version"] == state.challenger)]
        if decided.empty:
            pending.append(model)
    return pending


def resolve(model: str, action: str, version: str | None, reason: str | None, force: bool, manual: bool,
            settings: Settings | None = None) -> dict[str, Any]:
    """The request checked against the registry: the candidate version and the alias state it is decided on."""
    settings = settings or get_settings()
    if action not in ACTIONS:
        raise BadPromotionRequest(f"action {action!r}: use one of {', '.join(ACTIONS)}")
    if (manual and action in ("promote", "rollback") or force) and not (reason or "").strip():
        raise BadPromotionRequest(f"a manual {action}{' with force' if force else ''} needs a `reason`: say why")
    state = alias_state(model, settings)
    candidate = None
    if action != "rollback":
        candidate = str(version) if version else state.challenger
        if candidate is None:
            raise BadPromotionRequest(f"{model} has no `challenger` version to evaluate: train the model first")
        try:
            ends = [_version_window_end(model, candidate, settings)]
        except Exception as exc:  # an unknown version: MlflowException
            raise BadPromotionRequest(f"{model} has no version {candidate!r}: {exc}") from exc
        if state.champion is not None:
            ends.append(_version_window_end(model, state.champion, settings))
        after = max((e for e in ends if e is not None), default=None)
    elif state.previous_champion is None:
        raise BadPromotionRequest(f"{model} has no previous_champion to roll back to (champion: {state.champion})")
    else:
        after = None
    return {"model": model, "action": action, "candidate": candidate, "state": state.as_dict(),
            "after": after.isoformat() if after else None, "reason": reason, "force": bool(force)}


def holdout_window(after: datetime | None, days: float, settings: Settings | None = None,
                   maturity: timedelta = timedelta(0)) -> dict[str, str]:
    """The newest ``days`` complete days of committed data, starting no earlier than ``after``; with a
    ``maturity``, the newest days whose decisions all had at least that long to show their outcome."""
    settings = settings or get_settings()
    hours = committed_hours(settings.lake_uri)
    if not hours:
        raise NoFairHoldout("the lake has no committed hour")
    newest = max(hours)
    end = (pd.Timestamp(newest) + pd.Timedelta(hours=1) - pd.Timedelta(maturity)).floor("D").to_pydatetime()
    start = end - timedelta(days=days)
    if after is not None:
        start = max(start, after)
    if start >= end:
        matured = f", {maturity.total_seconds() / 3600:g} hours before the newest data so outcomes are known" \
            if maturity else ""
        raise NoFairHoldout(f"no complete day of data after the training windows (they end at {after}; the "
                            f"holdout's newest complete day ends at {end}{matured}): the decision waits for new data")
    return {"start": start.isoformat(), "end": end.isoformat()}


def build_holdout(resolved: dict[str, Any], days: float, run_key: str, settings: Settings | None = None) -> dict:
    """The holdout set, built by the training-set code (point in time, the model's feature service), in the lake."""
    settings = settings or get_settings()
    model = resolved["model"]
    spec = model_spec(model)
    after = to_utc(resolved["after"]) if resolved["after"] else None
    maturity = (timedelta(hours=settings.duration_outcome_maturity_hours) if spec.training_set == "duration"
                else timedelta(0))
    window = holdout_window(after, days, settings, maturity)
    frame = training_set(spec.training_set, window["start"], window["end"], settings=settings,
                         feature_service=spec.feature_service)
    uri = join_uri(settings.lake_uri, "_promotion", model, run_key, "holdout.parquet")
    with storage.atomic_open(uri) as handle:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), handle)
    return {"model": model, "kind": spec.training_set, "window": window, "uris": {"holdout": uri},
            "rows": {"holdout": len(frame)}}


def evaluate(resolved: dict[str, Any], holdout: dict[str, Any], margin: float,
             settings: Settings | None = None) -> dict[str, Any]:
    """Every gate of the candidate on the holdout; the table goes to the log and into the result."""
    settings = settings or get_settings()
    fs, path = storage.filesystem(holdout["uris"]["holdout"])
    with fs.open(path, "rb") as handle:
        frame = pq.read_table(handle).to_pandas()
    champion = resolved["state"]["champion"]
    if champion == resolved["candidate"]:
        champion = None  # re-evaluating the champion itself: judged against the baselines
    # The signature gate: the candidate is served on the service it declares (scoring refuses it otherwise).
    service = declared_feature_service(resolved["model"], resolved["candidate"], settings)
    served = service_features(get_store(settings), service)
    result = decide(resolved["model"], frame, resolved["candidate"], champion, holdout=holdout["window"],
                    settings=settings, margin=margin, force=resolved["force"], service_features=served)
    log.info("gates of %s v%s:\n%s", resolved["model"], resolved["candidate"], result.decision.table())
    return {"promote": result.decision.promote, "gates": [gate.as_dict() for gate in result.decision.gates],
            "table": result.decision.table(), "reasons": result.decision.reasons(),
            "against": result.reference.label, "holdout": holdout["window"]}


def apply_decision(resolved: dict[str, Any], evaluation: dict[str, Any] | None, who: str, dag_run: str,
                   approved: bool = True, settings: Settings | None = None) -> dict[str, Any]:
    """Move the alias (or not) and append the audit record. A rejection is recorded, never raised."""
    settings = settings or get_settings()
    model, action = resolved["model"], resolved["action"]
    expected = AliasState(resolved["state"]["champion"], resolved["state"]["previous_champion"],
                          resolved["state"][CHALLENGER])
    before = expected.champion
    if action == "rollback":
        after = rollback(model, expected, settings)
        record = Record(model, "rollback", who, dag_run, after.champion, before, after.champion,
                        reason=resolved["reason"])
    elif evaluation is None:
        raise ValueError("a promotion needs its evaluation")
    elif action == "evaluate" or not evaluation["promote"] or not approved:
        rejected = not evaluation["promote"] or not approved
        reason = resolved["reason"] or ""
        if not approved:
            reason = f"rejected at approval: {reason}".strip(": ")
        elif rejected:
            reason = f"{reason}; gates failed: {evaluation['reasons']}".strip("; ")
        record = Record(model, "reject" if rejected else "evaluate", who, dag_run, resolved["candidate"], before,
                        before, reason=reason or None, holdout=evaluation["holdout"], gates=evaluation["gates"])
    else:
        state = promote(model, resolved["candidate"], expected, settings)
        record = Record(model, "promote", who, dag_run, resolved["candidate"], before, state.champion,
                        reason=resolved["reason"], holdout=evaluation["holdout"], gates=evaluation["gates"])
    append(record, settings)
    log.info("%s: %s v%s, champion %s -> %s", model, record.action, record.version, before, record.champion_after)
    return {"model": model, "action": record.action, "version": record.version, "champion_before": before,
            "champion_after": record.champion_after, "changed": before != record.champion_after}
