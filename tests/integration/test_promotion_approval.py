"""Human approval of a promotion (``MAESTRO_PROMOTION_APPROVAL=required``): ``promote_models`` run through Airflow with
``dag.test()``, a real model trained on the tiny lake, and a person answering the approval step the way the UI's
Required Actions page does: the Core API's HITL endpoints, called with that person's token while the run waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from maestro_ml.settings import get_settings

DAG_ID = "promote_models"
ANSWER_WITHIN_SECONDS = 600


@pytest.fixture(scope="module")
def candidates(tiny_features_home: Path, tmp_path_factory: pytest.TempPathFactory,
               train_and_register: Any) -> Iterator[dict[str, Any]]:
    """One ranker, trained once and registered twice: two identical versions, so either test may find the other's
    version as champion (an equal candidate, forced, passes every other gate)."""
    from maestro_ml.registry import register_challenger

    out = tmp_path_factory.mktemp("approval")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAESTRO_FEAST_REGISTRY_PATH", str(tiny_features_home / "approval-registry.db"))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
        get_settings.cache_clear()
        trained = train_and_register(out, [("task_assignment", ["--epochs", "3", "--lgb-num-boost-round", "30"])])
        again = register_challenger("task_assignment", trained["runs"]["task_assignment"][0], trained["settings"])
        yield {"settings": trained["settings"], "versions": [trained["versions"]["task_assignment"][0],
                                                             again["version"]]}
    get_settings.cache_clear()


@pytest.fixture
def approval_required(candidates: dict[str, Any], tiny_features_home: Path,
                      monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("MAESTRO_PROMOTION_APPROVAL", "required")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", candidates["settings"].mlflow_tracking_uri)
    monkeypatch.setenv("MAESTRO_FEAST_REGISTRY_PATH", str(tiny_features_home / "approval-registry.db"))
    get_settings.cache_clear()
    return candidates


def _fail_waiting_tasks() -> None:
    """A broken answer must not leave dag.test() waiting forever: fail whatever still awaits input."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        for ti in session.scalars(select(TaskInstance).where(TaskInstance.dag_id == DAG_ID,
                                                             TaskInstance.state == TaskInstanceState.AWAITING_INPUT)):
            ti.state = TaskInstanceState.FAILED


def _answer(option: str, reason: str, user: str, seen: list[Any], done: threading.Event) -> None:
    """What a click on Approve or Reject does: the pending request, then the PATCH of its HITL detail, as ``user``."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    try:
        client = TestClient(create_app(apps="core"))
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=user, role="admin"))
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + ANSWER_WITHIN_SECONDS
        while time.monotonic() < deadline and not done.is_set():
            listed = client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/~/hitlDetails", headers=headers,
                                params={"response_received": False, "state": "awaiting_input"})
            assert listed.status_code == 200, listed.text
            pending = [d for d in listed.json()["hitl_details"] if d["task_instance"]["state"] == "awaiting_input"]
            for detail in pending:
                ti = detail["task_instance"]
                answered = client.patch(
                    f"/api/v2/dags/{DAG_ID}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/"
                    f"{ti['map_index']}/hitlDetails",
                    json={"chosen_options": [option], "params_input": {"reason": reason}}, headers=headers)
                assert answered.status_code == 200, answered.text
                seen.append(detail)
            if pending:
                return
            time.sleep(0.5)
        if done.is_set():
            return  # the run ended without asking: the test says why (its gates)
        raise TimeoutError(f"no approval request of {DAG_ID} within {ANSWER_WITHIN_SECONDS}s")
    except BaseException as exc:
        seen.append(exc)
        _fail_waiting_tasks()


@contextmanager
def a_person_answers(option: str, reason: str, *, user: str) -> Iterator[list[dict[str, Any]]]:
    """While the block runs the DAG, ``user`` answers its approval request: the requests they answered."""
    seen: list[Any] = []
    done = threading.Event()
    person = threading.Thread(target=_answer, args=(option, reason, user, seen, done), daemon=True)
    person.start()
    try:
        yield seen
    finally:
        done.set()
        person.join(timeout=60)
    errors = [item for item in seen if isinstance(item, BaseException)]
    if errors:
        raise AssertionError(f"answering the approval failed: {errors[0]!r}") from errors[0]


def _promote(run_dag: Any, version: str) -> Any:
    # force: the tiny holdout is too small for the statistical gate; every other gate still applies.
    return run_dag(DAG_ID, conf={"model": "task_assignment", "action": "promote", "version": version,
                                 "force": True, "reason": "tiny data, forced", "holdout_days": 1})


def _assert_the_request_showed_the_gate_table(seen: list[dict[str, Any]], version: str) -> None:
    from mlflow import MlflowClient

    from maestro_ml.contracts.models import model_spec

    if not seen:
        tags = MlflowClient(get_settings().mlflow_tracking_uri).get_model_version(
            model_spec("task_assignment").registered_name, version).tags
        raise AssertionError(f"no approval was asked for: the gates decided first ({tags.get('promotion_reason')})")
    [request] = seen
    assert request["subject"] == f"Promote task_assignment version {version} to champion?"
    assert "| gate | value | threshold | passed |" in request["body"]
    assert "| loads_in_clean_process |" in request["body"]
    assert set(request["params"]) == {"reason"}, "the form asks for a reason only, not the DAG's Params"
    assert request["options"] == ["Approve", "Reject"]


def test_with_approval_required_an_approved_promotion_moves_the_champion_and_records_the_approver(
    approval_required: dict[str, Any], run_dag: Any, task_states: Any
) -> None:
    from maestro_ml.registry.aliases import alias_state
    from maestro_ml.registry.audit import history

    settings = get_settings()
    version = approval_required["versions"][0]

    with a_person_answers("Approve", "holdout checked", user="alice") as seen:
        run = _promote(run_dag, version)

    states = task_states(run)
    assert states["approve_promotion"] == "success" and states["apply_decision"] == "success", states
    assert str(run.state) == "success"
    _assert_the_request_showed_the_gate_table(seen, version)
    assert alias_state("task_assignment", settings).champion == version
    record = history("task_assignment", settings).iloc[-1]
    assert (record["action"], record["who"], record["version"]) == ("promote", "alice", version)
    assert record["reason"] == "tiny data, forced; approved: holdout checked"


def test_with_approval_required_a_rejected_promotion_keeps_the_champion_and_records_the_reason(
    approval_required: dict[str, Any], run_dag: Any, task_states: Any
) -> None:
    from mlflow import MlflowClient

    from maestro_ml.contracts.models import model_spec
    from maestro_ml.registry.aliases import alias_state
    from maestro_ml.registry.audit import history

    settings = get_settings()
    version = approval_required["versions"][1]
    before = alias_state("task_assignment", settings).champion

    with a_person_answers("Reject", "wait for a week of real traffic", user="bob") as seen:
        run = _promote(run_dag, version)

    states = task_states(run)
    assert states["approve_promotion"] == "success" and states["apply_decision"] == "success", states
    assert str(run.state) == "success", "a rejection is a decision, not a failure"
    _assert_the_request_showed_the_gate_table(seen, version)
    assert alias_state("task_assignment", settings).champion == before
    record = history("task_assignment", settings).iloc[-1]
    assert (record["action"], record["who"], record["version"]) == ("reject", "bob", version)
    assert record["reason"].startswith("rejected at approval: wait for a week of real traffic")
    tags = MlflowClient(settings.mlflow_tracking_uri).get_model_version(
        model_spec("task_assignment").registered_name, version).tags
    assert tags["promotion"] == "rejected"
    assert "wait for a week of real traffic" in tags["promotion_reason"]
