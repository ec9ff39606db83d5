"""The serving aliases move only by check-and-set, never leave the registry without a champion or with two,
and every decision leaves one audit record (``maestro_ml.registry.aliases``, ``registry.audit``)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from maestro_ml.contracts.models import model_spec
from maestro_ml.registry import __main__ as registry_cli
from maestro_ml.registry.aliases import AliasChanged, NothingToRollBack, alias_state, promote, rollback
from maestro_ml.registry.audit import Record, append, history
from maestro_ml.settings import Settings, load_settings

MODEL = "task_duration"
NAME = model_spec(MODEL).registered_name


@pytest.fixture(scope="module")
def registry_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registry")


@pytest.fixture
def settings(registry_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("MAESTRO_HOME", str(registry_home / "home"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{registry_home / 'mlflow.db'}")
    settings = load_settings()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    if client.search_registered_models(filter_string=f"name = '{NAME}'"):
        client.delete_registered_model(NAME)
    client.create_registered_model(NAME)
    for _ in range(3):
        client.create_model_version(NAME, source=str(registry_home / "artifact"))
    yield settings


def test_promotions_keep_the_replaced_version_and_a_repeat_changes_nothing(settings: Settings) -> None:
    empty = alias_state(MODEL, settings)
    assert (empty.champion, empty.previous_champion) == (None, None)
    first = promote(MODEL, "1", empty, settings)
    assert (first.champion, first.previous_champion) == ("1", None)
    second = promote(MODEL, "2", first, settings)
    assert (second.champion, second.previous_champion) == ("2", "1")
    assert promote(MODEL, "2", first, settings) == second, "promoting the champion again is a no-op"


def test_a_rollback_returns_to_the_previous_champion_and_can_itself_be_rolled_back(settings: Settings) -> None:
    with pytest.raises(NothingToRollBack):
        rollback(MODEL, alias_state(MODEL, settings), settings)
    state = promote(MODEL, "2", promote(MODEL, "1", alias_state(MODEL, settings), settings), settings)
    back = rollback(MODEL, state, settings)
    assert (back.champion, back.previous_champion) == ("1", "2")
    again = promote(MODEL, "3", back, settings)
    assert (again.champion, again.previous_champion) == ("3", "1")


def test_a_decision_taken_on_a_stale_champion_changes_nothing(settings: Settings) -> None:
    read_at_start = alias_state(MODEL, settings)
    promote(MODEL, "1", read_at_start, settings)  # someone else promotes meanwhile
    with pytest.raises(AliasChanged, match="moved from version None to 1"):
        promote(MODEL, "2", read_at_start, settings)
    with pytest.raises(AliasChanged):
        rollback(MODEL, read_at_start, settings)
    assert alias_state(MODEL, settings).champion == "1"


def _race(version: str, home: str, tracking: str, barrier: object, results: object) -> None:
    os.environ["MAESTRO_HOME"], os.environ["MLFLOW_TRACKING_URI"] = home, tracking
    settings = load_settings()
    expected = alias_state(MODEL, settings)
    barrier.wait()  # type: ignore[attr-defined]
    try:
        promote(MODEL, version, expected, settings)
        results.put((version, "promoted"))  # type: ignore[attr-defined]
    except AliasChanged:
        results.put((version, "refused"))  # type: ignore[attr-defined]


def test_two_promotions_racing_in_two_processes_leave_exactly_one_champion(settings: Settings) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [context.Process(target=_race, args=(v, settings.home, settings.mlflow_tracking_uri, barrier, results))
               for v in ("1", "2")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    outcomes = dict(results.get(timeout=5) for _ in workers)
    assert sorted(outcomes.values()) == ["promoted", "refused"], outcomes
    winner = next(v for v, outcome in outcomes.items() if outcome == "promoted")
    state = alias_state(MODEL, settings)
    assert (state.champion, state.previous_champion) == (winner, None), "the loser overwrote nothing"


def test_audit_records_are_appended_once_per_deciding_run_and_tag_the_version(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    gates = [{"name": "ndcg@5_diff_lo95", "value": 0.012, "threshold": 0.0, "passed": True}]
    record = Record(MODEL, "promote", "manual__2026-12-02 by alice", "promote_models/run-1", "1", None, "1",
                    reason="first champion", holdout={"start": "2026-11-20", "end": "2026-11-27"}, gates=gates)
    append(record, settings)
    append(record, settings)  # a retry of the same run
    append(Record(MODEL, "reject", "promote_models/run-2", "promote_models/run-2", "2", "1", "1",
                  gates=[{"name": "ndcg@5_diff_lo95", "value": -0.01, "threshold": 0.0, "passed": False}]), settings)
    records = history(MODEL, settings)
    assert records["action"].tolist() == ["promote", "reject"]
    assert records.loc[0, "reason"] == "first champion" and "2026-11-20" in records.loc[0, "holdout"]
    tags = MlflowClient(tracking_uri=settings.mlflow_tracking_uri).get_model_version(NAME, "2").tags
    assert tags["promotion"] == "rejected" and "ndcg@5_diff_lo95" in tags["promotion_gates"]

    promote(MODEL, "1", alias_state(MODEL, settings), settings)
    assert registry_cli.main(["history", MODEL]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{MODEL}: champion 1, previous_champion -")
    assert "promote  v1" in printed and "first champion" in printed and "reject   v2" in printed
