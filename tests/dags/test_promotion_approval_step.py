"""``promote_models``' approval step (``approve_promotion``): it waits for a person only when
``MAESTRO_PROMOTION_APPROVAL=required`` and a promotion passed every gate; by default a run never waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from maestro_ml.settings import get_settings

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "promote_models.py"
TABLE = "| gate | value | threshold | passed |\n|---|---|---|---|\n| guard_mrr | 0.5 | >= 0.49 | yes |"


def _promotion(action: str = "promote", passed: bool = True, evaluated: bool = True) -> dict[str, Any]:
    evaluation = {"promote": passed, "gates": [], "table": TABLE, "reasons": "", "against": "champion v1",
                  "holdout": {"start": "2026-11-02T00:00:00+00:00", "end": "2026-11-03T00:00:00+00:00"}}
    return {"model": "task_assignment", "action": action, "who": "dag_test", "reason": None, "force": False,
            "resolved": {"model": "task_assignment", "action": action, "candidate": "2", "reason": None,
                         "force": False, "state": {"champion": "1", "previous_champion": None, "challenger": "2"}},
            "evaluation": evaluation if evaluated else None}


@pytest.fixture
def hitl_requests(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The approval requests the step writes (Airflow's ``upsert_hitl_detail``), recorded instead of sent."""
    import airflow.providers.standard.operators.hitl as hitl

    written: list[dict[str, Any]] = []
    monkeypatch.setattr(hitl, "upsert_hitl_detail", lambda **request: written.append(request))
    return written


def _step(promotion: dict[str, Any]) -> Any:
    from maestro_ml.orchestration.promotion import ApprovePromotion

    return ApprovePromotion(task_id="approve_promotion", promotion=promotion)


def _context() -> dict[str, Any]:
    class TaskInstance:
        id = "0190a1b2-0000-7000-8000-000000000000"

    return {"task_instance": TaskInstance()}


def test_the_step_sits_between_the_gates_and_the_decision_one_per_model() -> None:
    from airflow.dag_processing.dagbag import DagBag

    from maestro_ml.orchestration.promotion import ApprovePromotion

    dag = DagBag(dag_folder=str(DAG_FILE), safe_mode=False).dags["promote_models"]
    step = dag.get_task("approve_promotion")
    assert step.operator_class is ApprovePromotion
    assert step.upstream_task_ids == {"evaluate_candidate"} and step.downstream_task_ids == {"apply_decision"}
    assert "promotion" in step.expand_input.value, "mapped one per model, like every other step"


@pytest.mark.parametrize("promotion", [_promotion(), _promotion(action="evaluate"), _promotion(passed=False)],
                         ids=["passing-promote", "evaluate", "failed-gates"])
def test_by_default_a_run_never_waits(monkeypatch: pytest.MonkeyPatch, hitl_requests: list, promotion: dict) -> None:
    monkeypatch.delenv("MAESTRO_PROMOTION_APPROVAL", raising=False)
    get_settings.cache_clear()
    assert _step(promotion).execute(_context()) == {**promotion, "approval": None}
    assert hitl_requests == [], "nobody is asked"


@pytest.mark.parametrize("promotion", [_promotion(action="evaluate"), _promotion(passed=False),
                                       _promotion(action="rollback", evaluated=False)],
                         ids=["evaluate", "failed-gates", "rollback"])
def test_with_approval_required_only_a_passing_promotion_waits(
    monkeypatch: pytest.MonkeyPatch, hitl_requests: list, promotion: dict
) -> None:
    monkeypatch.setenv("MAESTRO_PROMOTION_APPROVAL", "required")
    get_settings.cache_clear()
    assert _step(promotion).execute(_context()) == {**promotion, "approval": None}
    assert hitl_requests == []


def test_with_approval_required_a_passing_promotion_waits_showing_the_gate_table(
    monkeypatch: pytest.MonkeyPatch, hitl_requests: list
) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    from maestro_ml.orchestration.promotion import APPROVAL_TIMEOUT

    monkeypatch.setenv("MAESTRO_PROMOTION_APPROVAL", "required")
    get_settings.cache_clear()
    with pytest.raises(TaskAwaitingInput) as waiting:
        _step(_promotion()).execute(_context())
    assert waiting.value.method_name == "execute_complete" and waiting.value.timeout == APPROVAL_TIMEOUT
    [request] = hitl_requests
    assert request["subject"] == "Promote task_assignment version 2 to champion?"
    assert TABLE in request["body"] and "champion v1" in request["body"]
    assert request["options"] == ["Approve", "Reject"] and request["defaults"] == ["Reject"]
    assert set(request["params"]) == {"reason"}


@pytest.mark.parametrize(("event", "expected"), [
    ({"chosen_options": ["Approve"], "params_input": {"reason": ""}, "responded_by_user": {"id": "a", "name": "Ann"}},
     {"approved": True, "who": "Ann", "reason": None}),
    ({"chosen_options": ["Reject"], "params_input": {"reason": " too early "},
      "responded_by_user": {"id": "b", "name": "Bo"}}, {"approved": False, "who": "Bo", "reason": "too early"}),
    ({"chosen_options": ["Reject"], "params_input": {}, "responded_by_user": None, "timedout": True},
     {"approved": False, "who": "dag_test", "reason": "no answer within 24 hours"}),
], ids=["approved", "rejected", "unanswered"])
def test_the_answer_goes_on_with_the_promotion(event: dict, expected: dict) -> None:
    at = datetime(2026, 11, 3, 9, tzinfo=UTC)
    result = _step(_promotion()).execute_complete(_context(), {**event, "responded_at": at})
    assert result == {**_promotion(), "approval": {**expected, "at": at.isoformat()}}


@pytest.mark.parametrize(("approval", "who", "approved", "reason"), [
    (None, "dag_test", True, "why"),
    ({"approved": True, "who": "Ann", "reason": "checked"}, "Ann", True, "why; approved: checked"),
    ({"approved": False, "who": "Bo", "reason": "too early"}, "Bo", False, "too early; requested: why"),
    ({"approved": False, "who": "Bo", "reason": None}, "Bo", False, "no reason given; requested: why"),
])
def test_the_decision_is_the_approvers(approval: dict | None, who: str, approved: bool, reason: str) -> None:
    from maestro_ml.orchestration.promotion import decision_of

    promotion = _promotion()
    promotion["resolved"]["reason"] = "why"
    resolved, decided_by, ok = decision_of({**promotion, "approval": approval})
    assert (resolved["reason"], decided_by, ok) == (reason, who, approved)


def test_a_run_waiting_for_approval_is_given_the_time_to_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_ml.orchestration.promotion import APPROVAL_TIMEOUT, run_timeout

    monkeypatch.delenv("MAESTRO_PROMOTION_APPROVAL", raising=False)
    get_settings.cache_clear()
    assert run_timeout() == timedelta(hours=2)
    monkeypatch.setenv("MAESTRO_PROMOTION_APPROVAL", "required")
    get_settings.cache_clear()
    assert run_timeout() == timedelta(hours=2) + APPROVAL_TIMEOUT
