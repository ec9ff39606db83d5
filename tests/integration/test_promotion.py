"""Promotion on one fair holdout (``maestro_ml.promotion.evaluate``), with real MLflow and real models trained on
the tiny lake: the candidate and the reference are re-scored on the same rows in this process, then gated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from maestro_ml.promotion.evaluate import decide
from maestro_ml.settings import get_settings

START = datetime(2026, 11, 1, tzinfo=UTC)
SPLIT = START + timedelta(hours=30)
END = START + timedelta(days=2)


@pytest.fixture(scope="module")
def trained(tiny_features_home: Path, tmp_path_factory: pytest.TempPathFactory,
            train_and_register: Any) -> dict[str, Any]:
    """Two ranker versions (3 and 1 epochs, few trees) and one duration version, registered in a fresh registry."""
    out = tmp_path_factory.mktemp("promotion")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MAESTRO_FEAST_REGISTRY_PATH", str(tiny_features_home / "promotion-registry.db"))
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
        get_settings.cache_clear()
        yield train_and_register(out, [
            ("task_assignment", ["--epochs", "3", "--lgb-num-boost-round", "30"]),
            ("task_assignment", ["--epochs", "1", "--lgb-num-boost-round", "2", "--lgb-learning-rate", "0.01"]),
            ("task_duration", ["--epochs", "3"]),
        ])
    get_settings.cache_clear()


HOLDOUT = {"start": SPLIT.isoformat(), "end": END.isoformat()}


def test_a_first_ranker_is_judged_against_the_strongest_baseline_on_the_holdout(trained: dict[str, Any]) -> None:
    good = trained["versions"]["task_assignment"][0]
    evaluation = decide("task_assignment", trained["frames"]["ranking"], good, None, holdout=HOLDOUT,
                        settings=trained["settings"])
    names = [gate.name for gate in evaluation.decision.gates]
    assert names[:2] == ["primary_ndcg@5_improvement", "primary_ndcg@5_improvement_lo95"]
    assert {"guard_mrr", "guard_p99_ms_single_task", "guard_size_bytes", "loads_in_clean_process"} <= set(names)
    assert "no champion yet" in evaluation.decision.gates[0].threshold
    assert evaluation.reference.label.startswith("baseline ")
    assert next(g for g in evaluation.decision.gates if g.name == "loads_in_clean_process").passed
    assert evaluation.candidate.size_bytes > 0 and evaluation.candidate.p99_ms > 0


def test_a_candidate_equal_to_the_champion_is_not_promoted_and_a_weaker_one_neither(trained: dict[str, Any]) -> None:
    good, weak = trained["versions"]["task_assignment"]
    frame = trained["frames"]["ranking"]
    same = decide("task_assignment", frame, good, good, holdout=HOLDOUT, settings=trained["settings"])
    assert not same.decision.promote
    assert same.decision.gates[0].value == 0.0, "the same model on the same rows: no difference at all"
    worse = decide("task_assignment", frame, weak, good, holdout=HOLDOUT, settings=trained["settings"])
    assert not worse.decision.promote
    assert "primary_ndcg@5_improvement_lo95" in worse.decision.reasons()
    forced = decide("task_assignment", frame, good, good, holdout=HOLDOUT, settings=trained["settings"], force=True)
    assert forced.decision.promote, "force skips the statistical gate when every guard holds"


def test_the_duration_candidate_is_gated_on_error_and_interval_coverage(trained: dict[str, Any]) -> None:
    version = trained["versions"]["task_duration"][0]
    evaluation = decide("task_duration", trained["frames"]["duration"], version, None, holdout=HOLDOUT,
                        settings=trained["settings"])
    names = {gate.name for gate in evaluation.decision.gates}
    assert {"primary_abs_error_hours_improvement_lo95", "guard_coverage80", "guard_coverage90"} <= names
    assert evaluation.candidate.report["n"] == len(evaluation.candidate.per_unit) > 0


def test_the_duration_baselines_learn_only_from_outcomes_known_before_the_holdout(trained: dict[str, Any]) -> None:
    from maestro_ml.contracts.features import ASSIGNMENTS
    from maestro_ml.features.offline import read_view
    from maestro_ml.promotion.evaluate import TARGET, duration_history

    settings = trained["settings"]
    history = duration_history(settings, SPLIT)
    known = read_view(settings.features_uri, ASSIGNMENTS.name, end=SPLIT)
    assert len(history) == int(((known["completed"] == 1) & (known["duration_hours"] > 0)).sum()) > 0
    later = read_view(settings.features_uri, ASSIGNMENTS.name, start=SPLIT)
    assert (later["completed"] == 1).any(), "the tiny lake completes assignments during the holdout too"
    assert len(duration_history(settings, END)) > len(history), "those are left out of the earlier history"
    assert history[TARGET].gt(0).all() and history["project_id"].notna().all()
    with pytest.raises(ValueError, match="nothing to learn from"):
        duration_history(settings, START)


def test_the_dag_refuses_a_manual_promotion_without_reason_then_promotes_forced_and_audits_it(
    trained: dict[str, Any], run_dag: Any, task_states: Any, tiny_features_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maestro_ml.registry.aliases import alias_state
    from maestro_ml.registry.audit import history

    settings = trained["settings"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    monkeypatch.setenv("MAESTRO_FEAST_REGISTRY_PATH", str(tiny_features_home / "promotion-registry.db"))
    get_settings.cache_clear()
    good = trained["versions"]["task_assignment"][0]

    refused = run_dag("promote_models", conf={"model": "task_assignment", "action": "promote", "version": good})
    assert task_states(refused)["check_params"] == "failed", "a manual promotion needs a reason"

    looked = run_dag("promote_models", conf={"model": "task_assignment", "action": "evaluate", "version": good,
                                             "holdout_days": 1})
    assert task_states(looked)["apply_decision"] == "success"
    assert alias_state("task_assignment", settings).champion is None, "evaluate never moves the champion"

    forced = run_dag("promote_models", conf={"model": "task_assignment", "action": "promote", "version": good,
                                             "force": True, "reason": "first champion, tiny data", "holdout_days": 1})
    assert task_states(forced)["apply_decision"] == "success", task_states(forced)
    assert alias_state("task_assignment", settings).champion == good
    records = history("task_assignment", settings)
    assert records["action"].tolist()[-1] == "promote"
    assert records["reason"].tolist()[-1] == "first champion, tiny data"
    assert records["action"].tolist()[-2] in ("evaluate", "reject")

    nothing = run_dag("promote_models", conf={"model": "task_assignment", "action": "rollback", "reason": "test"})
    assert task_states(nothing)["resolve_request"] == "failed", "no previous champion to roll back to"


def test_the_daily_run_takes_up_only_challengers_without_a_decision(
        trained: dict[str, Any], tiny_features_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from maestro_ml.promotion.steps import undecided_challengers
    from maestro_ml.registry.aliases import alias_state
    from maestro_ml.registry.audit import Record, append

    settings = trained["settings"]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", settings.mlflow_tracking_uri)
    get_settings.cache_clear()
    duration = alias_state("task_duration", settings)
    assert duration.challenger is not None and duration.champion is None
    assert "task_duration" in undecided_challengers(settings)
    append(Record("task_duration", "reject", "test", "promote_models/test_daily", duration.challenger, None, None,
                  reason="gates failed"), settings)
    assert "task_duration" not in undecided_challengers(settings), "a rejected challenger waits for a new one"
