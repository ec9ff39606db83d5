"""Scoring open tasks (``maestro_ml.scoring``, ``score_open_tasks``) with real champions trained on the tiny lake,
real Feast online stores (embedded SQLite, and Redis with the SQL registry) and real Airflow runs.

Champions are set with ``registry.aliases.promote`` directly: the gates are ``test_promotion``'s subject.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.feast_support import FEAST_SWITCHES, throwaway_feast_env

from maestro_ml.contracts.scores import DURATION_FIELDS
from maestro_ml.features.training_sets import DECISION_LEAD
from maestro_ml.registry.aliases import alias_state, promote
from maestro_ml.settings import get_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 1, tzinfo=UTC)
SPLIT = START + timedelta(hours=30)
END = START + timedelta(days=2)  # the tiny lake's last committed hour ends here


@pytest.fixture(scope="module")
def trained(tiny_features_home: Path, tmp_path_factory: pytest.TempPathFactory,
            train_and_register: Any) -> Iterator[dict[str, Any]]:
    """Two ranker versions and one duration version in a fresh registry; the online store materialized to END."""
    from maestro_ml.feast_ext.steps import materialize_all

    out = tmp_path_factory.mktemp("scoring")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{out / 'mlflow.db'}")
        get_settings.cache_clear()
        done = train_and_register(out, [
            ("task_assignment", ["--epochs", "2", "--lgb-num-boost-round", "30"]),
            ("task_assignment", ["--epochs", "1", "--lgb-num-boost-round", "3", "--lgb-learning-rate", "0.01"]),
            ("task_duration", ["--epochs", "3"]),
        ])
        materialize_all({"start": START.isoformat(), "end": END.isoformat()})
        versions = {"ranker": done["versions"]["task_assignment"], "duration": done["versions"]["task_duration"][0]}
        yield {"settings": done["settings"], "versions": versions, "home": tiny_features_home}
    get_settings.cache_clear()


@pytest.fixture
def env(trained: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained["settings"].mlflow_tracking_uri)
    get_settings.cache_clear()
    yield trained
    get_settings.cache_clear()


def _champion(model: str, version: str) -> None:
    settings = get_settings()
    state = alias_state(model, settings)
    if state.champion != version:
        promote(model, version, state, settings)


def _clear_scores() -> None:
    import shutil

    from maestro_ml.scoring.publish import table_uri

    shutil.rmtree(table_uri(get_settings()), ignore_errors=True)


def test_without_a_champion_the_run_is_skipped_with_a_message(env: dict[str, Any], run_dag: Any,
                                                              task_states: Any) -> None:
    assert alias_state("task_assignment").champion is None
    run = run_dag("score_open_tasks", logical_date=END)
    states = task_states(run)
    assert states["resolve_champions"] == "skipped"
    assert states["score_tasks"] == states["publish_scores"] == "skipped"


def test_the_scores_equal_a_direct_call_of_the_champion_pyfunc_on_the_same_features(env: dict[str, Any]) -> None:
    from maestro_ml.feast_ext.store import get_store
    from maestro_ml.scoring import champions as c
    from maestro_ml.scoring import score as s
    from maestro_ml.scoring.open_tasks import candidate_pairs, open_tasks
    from maestro_ml.scoring.steps import champions, score

    _clear_scores()
    good = env["versions"]["ranker"][0]
    _champion("task_assignment", good)
    _champion("task_duration", env["versions"]["duration"])
    summary = score(champions(), None, top_k=3)
    assert summary["versions"] == {"task_assignment": good, "task_duration": env["versions"]["duration"]}
    assert summary["unassigned"] > 0 and summary["tasks"] > summary["unassigned"]
    from maestro_ml.scoring.publish import read_hour

    scores = read_hour(summary["hour"]).set_index("task_id")

    settings = get_settings()
    at = datetime.fromisoformat(summary["at"])
    tasks = open_tasks(settings.lake_uri, at)
    pairs = candidate_pairs(settings.lake_uri, tasks[tasks["assigned"] == 0], at)
    store = get_store(settings)
    resolved = c.resolve_champions(settings)
    ranker = c.load_champion(resolved["task_assignment"], settings)
    features = s.online_features(store, resolved["task_assignment"].feature_service, pairs, at)
    direct = np.asarray(ranker.predict(features.assign(decision_id=pairs["task_id"].to_numpy())[
        ["decision_id", *c.model_inputs(ranker)]]), dtype=np.float64)
    expected = pairs.assign(score=direct).sort_values(["task_id", "score", "user_id"], ascending=[True, False, True])
    checked = 0
    for task_id, group in expected.groupby("task_id"):
        row = scores.loc[task_id]
        assert list(row["recommended_user_ids"]) == group["user_id"].head(3).tolist()
        np.testing.assert_allclose(row["recommended_scores"], group["score"].head(3).to_numpy(), rtol=1e-9)
        assert len(row["recommendation_reasons"]) == len(row["recommended_user_ids"])
        assert all(reason.count("(") == 3 for reason in row["recommendation_reasons"])
        checked += 1
    assert checked == summary["unassigned"] - (tasks["assigned"].eq(0) & ~tasks["task_id"].isin(pairs["task_id"])).sum()

    # What was served is kept for monitoring: every candidate row's inputs and score (the tiny lake is under
    # the sample size), the scores equal to the direct call's.
    from maestro_ml.scoring.publish import read_served

    kept = read_served("task_assignment", at - timedelta(hours=1), at + timedelta(hours=1)).sort_values(
        ["task_id", "user_id"]).reset_index(drop=True)
    assert len(kept) == len(pairs) and set(c.model_inputs(ranker)) <= set(kept.columns)
    np.testing.assert_allclose(kept["prediction"].to_numpy(),
                               pairs.assign(score=direct).sort_values(["task_id", "user_id"])["score"].to_numpy(),
                               rtol=1e-9)
    assert len(read_served("task_duration", at - timedelta(hours=1), at + timedelta(hours=1))) > 0

    duration = c.load_champion(resolved["task_duration"], settings)
    assigned = tasks[tasks["assigned"] == 1].head(20)
    d_pairs = assigned.rename(columns={"assignee_id": "user_id"})[["task_id", "user_id", "project_id", "reporter_id"]]
    d_features = s.online_features(store, resolved["task_duration"].feature_service, d_pairs.reset_index(drop=True), at)
    d_direct = duration.predict(d_features[c.model_inputs(duration)])
    got = scores.loc[assigned["task_id"], list(DURATION_FIELDS)].to_numpy()
    np.testing.assert_allclose(got, np.asarray(d_direct, dtype=np.float64), rtol=1e-6)
    assert (got[:, 0] > 0).all() and (got[:, 3] <= got[:, 0]).all() and (got[:, 0] <= got[:, 4]).all()

    # Open tasks are scored hours or days after the decision time the model learned from (ages, overdue flags
    # no training row had): their forecasts must stay on the scale of the durations it learned, not extrapolate.
    from maestro_ml.contracts.features import ASSIGNMENTS
    from maestro_ml.features.offline import read_view

    learned = read_view(settings.features_uri, ASSIGNMENTS.name)["duration_hours"].max()
    assert scores["duration_p50_hours"].max() <= 10 * learned, (scores["duration_p50_hours"].max(), learned)


def test_the_online_vector_of_a_pair_equals_its_point_in_time_offline_vector(env: dict[str, Any]) -> None:
    """Train/serve skew: what scoring reads online at t is what a training set joins offline at t."""
    from maestro_ml.contracts.features import REQUEST_TIME_FIELD, TIMESTAMP_COLUMN
    from maestro_ml.feast_ext.store import get_store
    from maestro_ml.features.point_in_time import historical_features
    from maestro_ml.scoring import score as s
    from maestro_ml.scoring.open_tasks import candidate_pairs, open_tasks

    settings = get_settings()
    at = END
    tasks = open_tasks(settings.lake_uri, at)
    pairs = candidate_pairs(settings.lake_uri, tasks[tasks["assigned"] == 0], at).head(300)
    store = get_store(settings)
    service = "task_assignment_v2"
    online = s.online_features(store, service, pairs, at)
    # A decision at `at`, as a training set looks it up: just before it.
    lookup = pd.Timestamp(at) - DECISION_LEAD
    entities = pairs.assign(**{TIMESTAMP_COLUMN: lookup, REQUEST_TIME_FIELD: int(lookup.timestamp())})
    offline = historical_features(store, store.get_feature_service(service), entities)
    features = [f for f in s.service_features(store, service) if f in online.columns and f in offline.columns]
    assert len(features) > 40
    for name in features:
        a, b = online[name].to_numpy(), offline[name].to_numpy()
        if a.dtype == object or b.dtype == object:
            assert [None if pd.isna(x) else x for x in a] == [None if pd.isna(x) else x for x in b], name
        else:
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-6, equal_nan=True, err_msg=name)


def _newest_hour_end() -> datetime:
    from maestro_ml import lake

    return max(lake.committed_hours(get_settings().lake_uri)) + timedelta(hours=1)


def _online_row(store: Any, task_id: str) -> dict[str, Any]:
    """What the product reads: one task's row of task_recommendations_v1, through Feast's own API."""
    from maestro_ml.contracts.scores import SCORES_SERVICE

    out = store.get_online_features(features=store.get_feature_service(SCORES_SERVICE),
                                    entity_rows=[{"task_id": task_id}]).to_dict()
    return {name: values[0] for name, values in out.items()}


def _served_task(hour: str) -> str:
    from maestro_ml.scoring.publish import read_hour

    scores = read_hour(hour)
    return str(scores.loc[scores["recommended_user_ids"].map(len) > 0, "task_id"].iloc[0])


def test_a_promotion_between_two_scoring_runs_changes_which_version_scored(
        env: dict[str, Any], run_dag: Any, task_states: Any) -> None:
    from maestro_ml.feast_ext.store import get_store
    from maestro_ml.scoring.publish import read_hour, scored_hours

    _clear_scores()
    first, second = env["versions"]["ranker"]
    _champion("task_assignment", first)
    _champion("task_duration", env["versions"]["duration"])
    at = _newest_hour_end()

    run = run_dag("score_open_tasks", logical_date=at)
    assert set(task_states(run).values()) == {"success"}, task_states(run)
    hour = scored_hours()[-1]
    task_id = _served_task(hour)
    assert set(read_hour(hour)["ranker_version"]) == {first}
    assert _online_row(get_store(), task_id)["ranker_version"] == first

    _champion("task_assignment", second)
    run = run_dag("score_open_tasks", logical_date=at + timedelta(minutes=1))
    assert set(task_states(run).values()) == {"success"}, task_states(run)
    assert scored_hours() == [hour], "the same hour re-scored replaces its file"
    rescored = read_hour(hour)
    assert set(rescored["ranker_version"]) == {second}
    assert set(rescored["duration_version"]) == {env["versions"]["duration"]}
    online = _online_row(get_store(), task_id)
    assert online["ranker_version"] == second
    expected = rescored.set_index("task_id").loc[task_id]
    assert list(online["recommended_user_ids"]) == list(expected["recommended_user_ids"])


def test_a_run_for_an_hour_the_lake_has_moved_past_is_skipped(env: dict[str, Any], run_dag: Any,
                                                              task_states: Any) -> None:
    _champion("task_assignment", env["versions"]["ranker"][0])
    run = run_dag("score_open_tasks", logical_date=_newest_hour_end() - timedelta(hours=6))
    states = task_states(run)
    assert states["resolve_champions"] == "success"
    assert states["score_tasks"] == states["publish_scores"] == "skipped"


def test_a_champion_its_feature_service_cannot_serve_fails_loudly_without_retries(
        env: dict[str, Any], run_dag: Any, task_states: Any, task_tries: Any) -> None:
    from mlflow import MlflowClient

    from maestro_ml.contracts.models import model_spec
    from maestro_ml.registry import FEATURE_SERVICE_TAG

    version = env["versions"]["ranker"][0]
    _champion("task_assignment", version)
    client = MlflowClient(tracking_uri=get_settings().mlflow_tracking_uri)
    name = model_spec("task_assignment").registered_name
    client.set_model_version_tag(name, version, FEATURE_SERVICE_TAG, "task_duration_v1")
    try:
        run = run_dag("score_open_tasks", logical_date=_newest_hour_end())
        states = task_states(run)
        assert states["score_tasks"] == "failed" and states["publish_scores"] == "upstream_failed"
        assert task_tries(run)["score_tasks"] == 1, "a signature mismatch is not retried"
    finally:
        client.set_model_version_tag(name, version, FEATURE_SERVICE_TAG, model_spec("task_assignment").feature_service)


@pytest.fixture(params=["local", "server"])
def scores_store(request: pytest.FixtureRequest, env: dict[str, Any]) -> Iterator[Any]:
    """The scores' online store in a throwaway project: embedded SQLite, or Redis with a PostgreSQL registry.

    Only the scores are pushed to it: scoring itself reads the module's materialized SQLite store.
    """
    from maestro_ml.feast_ext.store import apply_if_changed, get_store

    with throwaway_feast_env(request.param, env["home"], prefix="maestro_scr"):
        apply_if_changed()
        store = get_store()
        yield store
        store.teardown()


def test_a_rescore_after_a_rollback_replaces_the_online_scores_on_sqlite_and_on_redis(
        env: dict[str, Any], scores_store: Any) -> None:
    """Each push writes with a newer event timestamp: Redis keeps a stored value whose timestamp is equal or
    newer, so a re-score that reused the hour's timestamp would change nothing there (and all on SQLite)."""
    from maestro_ml.feast_ext.store import get_store
    from maestro_ml.registry.aliases import rollback
    from maestro_ml.scoring.champions import Champion, load_champion
    from maestro_ml.scoring.open_tasks import candidate_pairs, open_tasks, scoring_time
    from maestro_ml.scoring.publish import push_scores, read_hour, write_scores
    from maestro_ml.scoring.score import Served, score_tasks, serve
    from maestro_ml.scoring.steps import champions

    _clear_scores()
    first, second = env["versions"]["ranker"]
    _champion("task_assignment", first)
    _champion("task_assignment", second)  # previous_champion: first
    pushed_versions = []
    settings = get_settings()
    at = scoring_time(settings.lake_uri)
    tasks = open_tasks(settings.lake_uri, at)
    pairs = candidate_pairs(settings.lake_uri, tasks[tasks["assigned"] == 0], at)
    for step in ("scored with the champion", "re-scored after the rollback"):
        if step.startswith("re-scored"):
            rollback("task_assignment", alias_state("task_assignment"), settings)
        resolved = champions()["task_assignment"]
        # The features come from the module's materialized store; only the scores go to `scores_store`.
        with pytest.MonkeyPatch.context() as patch:
            for name in FEAST_SWITCHES:
                patch.delenv(name, raising=False)
            get_settings.cache_clear()
            feature_store = get_store()
            ranker: Served = serve(Champion(**resolved), load_champion(Champion(**resolved)), feature_store)
            scores = score_tasks(tasks, pairs, at, feature_store, ranker, None, top_k=3)
        get_settings.cache_clear()
        written = write_scores(scores, at)
        hour = written["hour"]
        push_scores(hour, scores_store)
        task_id = _served_task(hour)
        row = _online_row(scores_store, task_id)
        expected = read_hour(hour).set_index("task_id").loc[task_id]
        assert row["ranker_version"] == resolved["version"], step
        assert list(row["recommended_user_ids"]) == list(expected["recommended_user_ids"]), step
        np.testing.assert_allclose(row["recommended_scores"], expected["recommended_scores"], rtol=1e-9)
        pushed_versions.append(row["ranker_version"])
    assert pushed_versions == [second, first]


def test_a_task_assigned_between_two_runs_disappears_from_the_recommendations(env: dict[str, Any]) -> None:
    """Runs last in the module: it ingests one more hour into the module's lake."""
    from tests.ingestion_support import ev, write_landing

    from maestro_ml.feast_ext.store import get_store
    from maestro_ml.ingestion.steps import ingest_hour
    from maestro_ml.scoring.publish import read_hour
    from maestro_ml.scoring.steps import champions, publish, score

    _clear_scores()
    _champion("task_assignment", env["versions"]["ranker"][0])
    _champion("task_duration", env["versions"]["duration"])
    first = score(champions(), None, top_k=3)
    publish(first)
    before = read_hour(first["hour"]).set_index("task_id")
    task_id = _served_task(first["hour"])
    assignee = before.loc[task_id, "recommended_user_ids"][0]
    assert _online_row(get_store(), task_id)["recommended_user_ids"], "served before it was assigned"

    settings = get_settings()
    hour = _newest_hour_end()
    write_landing(settings, "assignments.jsonl.gz",
                  [ev("task_assigned", hour + timedelta(minutes=10), actor_id=assignee, task_id=task_id,
                      assignee_id=assignee)], hour=hour)
    ingest_hour(hour, settings)

    second = score(champions(), None, top_k=3)
    publish(second)
    assert second["hour"] > first["hour"]
    after = read_hour(second["hour"]).set_index("task_id")
    assert after.loc[task_id, "assigned"] == 1 and len(after.loc[task_id, "recommended_user_ids"]) == 0
    assert after.loc[task_id, "forecast_user_id"] == assignee, "an assigned task is forecast for its assignee"
    assert not np.isnan(after.loc[task_id, "duration_p50_hours"])
    online = _online_row(get_store(), task_id)
    assert list(online["recommended_user_ids"] or []) == [] and online["assigned"] == 1
    others = before.index[(before["recommended_user_ids"].map(len) > 0) & (before.index != task_id)]
    still = [t for t in others if t in after.index and after.loc[t, "assigned"] == 0]
    assert still and all(len(after.loc[t, "recommended_user_ids"]) > 0 for t in still)
