"""The candidate rule (``features.training_sets.ranking_entities``), defined once: who may be ranked for a
decision, and that evaluation sees the rule's misses instead of having the assignee added back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
from tests.ingestion_support import ev, write_landing

from maestro_ml.features.training_sets import managers_since, ranking_entities
from maestro_ml.ingestion import ingest_hour
from maestro_ml.settings import Settings

H = datetime(2026, 11, 2, 9, tzinfo=UTC)


def test_self_assignment_never_makes_anyone_a_manager() -> None:
    at = pd.Timestamp(H)
    history = pd.DataFrame({
        "actor_id": ["lead", "dev", "dev", "lead"],
        "assignee_id": ["dev", "dev", "dev", "ops"],
        "occurred_at": [at, at + pd.Timedelta(hours=1), at + pd.Timedelta(hours=2), at + pd.Timedelta(hours=3)],
    })
    assert managers_since(history, 1).set_index("user_id")["manager_since"].to_dict() == {"lead": at}
    assert managers_since(history, 2)["manager_since"].tolist() == [at + pd.Timedelta(hours=3)]
    assert managers_since(history, 0).empty, "0 turns the manager rule off"


def test_someone_who_hands_out_work_and_also_takes_it_is_no_manager_from_the_first_task_they_take() -> None:
    at = pd.Timestamp(H)
    hour = pd.Timedelta(hours=1)
    history = pd.DataFrame({
        "actor_id": ["lead", "dev", "reporter", "dev", "lead"],
        "assignee_id": ["dev", "reporter", "dev", "dev", "ops"],
        "occurred_at": [at, at + hour, at + 2 * hour, at + 3 * hour, at + 4 * hour],
    })
    managers = managers_since(history, 1).set_index("user_id")
    # The lead only hands out work; dev took work before handing any out; the reporter handed out work
    # (hour 2) only after taking some (hour 1).
    assert managers.index.tolist() == ["lead"]
    assert pd.isna(managers.loc["lead", "manager_until"])
    took_later = managers_since(history.iloc[[0, 2, 1]].assign(occurred_at=[at, at + hour, at + 2 * hour]), 1)
    assert took_later.set_index("user_id")["manager_until"].to_dict()["reporter"] == at + 2 * hour


def test_the_rule_misses_are_kept_for_evaluation_and_added_back_only_on_request(settings: Settings) -> None:
    team = {"team_id": "team_01"}
    events = [
        ev("user_joined", at=H + timedelta(minutes=1), user_id="u_lead", **team),
        ev("user_joined", at=H + timedelta(minutes=2), user_id="u_dev", **team),
        ev("user_joined", at=H + timedelta(minutes=3), user_id="u_ops", **team),
        ev("user_joined", at=H + timedelta(minutes=4), user_id="u_far", team_id="team_02"),
        ev("project_created", at=H + timedelta(minutes=5), project_id="p_01", **team),
        ev("task_created", at=H + timedelta(minutes=6), task_id="t1", project_id="p_01"),
        ev("task_created", at=H + timedelta(minutes=7), task_id="t2", project_id="p_01"),
        ev("task_created", at=H + timedelta(minutes=8), task_id="t3", project_id="p_01"),
        # u_dev takes t1 themselves, then the lead hands t2 to u_dev and t3 to someone of another team.
        ev("task_assigned", at=H + timedelta(minutes=10), task_id="t1", assignee_id="u_dev", actor_id="u_dev"),
        ev("task_assigned", at=H + timedelta(minutes=20), task_id="t2", assignee_id="u_dev", actor_id="u_lead"),
        ev("task_assigned", at=H + timedelta(minutes=30), task_id="t3", assignee_id="u_far", actor_id="u_lead"),
    ]
    write_landing(settings, "part-0000.jsonl.gz", events, hour=H)
    ingest_hour(H, settings)

    frame = ranking_entities(settings.lake_uri, H, H + timedelta(hours=1))
    by_task = {task: sorted(rows["user_id"]) for task, rows in frame.groupby("task_id")}
    # Up to the lead's first hand-off (t2) everyone of the team is a candidate; after it, not the lead. u_dev
    # assigned t1 to themselves and stays a candidate.
    team_all = ["u_dev", "u_lead", "u_ops"]
    assert by_task == {"t1": team_all, "t2": team_all, "t3": ["u_dev", "u_ops"]}
    chosen = frame.loc[frame["chosen"] == 1, "task_id"].tolist()
    assert chosen == ["t1", "t2"], "t3's assignee is not a candidate: a miss, not a row made up for it"

    added = ranking_entities(settings.lake_uri, H, H + timedelta(hours=1), add_chosen=True)
    assert sorted(added.loc[added["task_id"] == "t3", "user_id"]) == ["u_dev", "u_far", "u_ops"]
    assert added.loc[added["chosen"] == 1, "task_id"].tolist() == ["t1", "t2", "t3"]
