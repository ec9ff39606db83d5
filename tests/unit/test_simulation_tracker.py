"""The simulator's ``tracker`` preset: an open-source bug tracker export, its signals and its truth."""

from __future__ import annotations

import contextlib
import json
import re
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from maestro_ml.contracts.events import EVENT_TYPES, required_fields, schema_for
from maestro_ml.simulation import PRESETS, DirtRates, TrackerModel, config_for_preset, simulate
from maestro_ml.simulation.__main__ import parse_args

START = datetime(2026, 1, 5, tzinfo=UTC)
# Smaller than the preset (150 days, 90 users, 3 products) for speed, still months long.
SMALL = {"days": 100, "n_users": 50, "n_teams": 2}
DAY = pd.Timedelta(days=1)
# The classic candidate truth columns, which evaluation code reads for every preset.
CANDIDATE_COLUMNS = {
    "task_id", "user_id", "team_id", "assignment_seq", "assigned_at", "skill_match", "open_hours", "seniority",
    "weekly_capacity_hours", "median_duration_hours", "expected_duration_hours", "p_on_time", "utility",
    "manager_score", "utility_rank", "chosen", "actual_duration_hours",
}  # fmt: skip


def run(root: Path, seed: int = 7, **overrides: Any) -> tuple[Path, Path, Any]:
    cfg = config_for_preset("tracker", START, seed=seed, **{**SMALL, **overrides})
    landing, truth = root / "landing", root / "truth"
    return landing, truth, simulate(cfg, str(landing), str(truth))


def read_events(landing: Path) -> list[Any]:
    """Every parseable line of the landing zone (complete gzip members only)."""
    out: list[Any] = []
    for path in sorted(landing.rglob("*.jsonl.gz")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            d = zlib.decompressobj(wbits=31)
            try:
                chunk = d.decompress(data[pos:])
            except zlib.error:
                break
            if not d.eof:
                break
            for line in chunk.split(b"\n")[:-1]:
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
            pos = len(data) - len(d.unused_data)
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], Path, Any]:
    landing, truth, summary = run(tmp_path_factory.mktemp("tracker"), dirt=DirtRates.off())
    return read_events(landing), truth, summary


def of_type(events: list[dict[str, Any]], event_type: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event_type"] == event_type]


def test_tracker_preset_is_a_months_long_bug_tracker_window_with_default_dirt() -> None:
    cfg = config_for_preset("tracker", START)
    assert isinstance(cfg.tracker, TrackerModel)
    assert 120 <= cfg.days <= 180 and 60 <= cfg.n_users <= 120 and 2 <= cfg.n_teams <= 3
    assert cfg.dirt == DirtRates.default()
    assert "tracker" in PRESETS and parse_args(["--preset", "tracker", "--start", "2026-01-01T00:00:00Z"]).preset
    assert config_for_preset("tracker", START, tracker={"estimate_share": 0.5}).tracker.estimate_share == 0.5
    assert "tracker" not in config_for_preset("demo", START).to_dict()  # the other presets' summaries are unchanged
    assert config_for_preset("demo", START).tracker is None
    with pytest.raises(ValueError, match="tracker share"):
        TrackerModel(estimate_share=1.5)


def test_tracker_omits_estimates_on_most_tasks_and_skills_everywhere(
    clean: tuple[list[dict[str, Any]], Path, Any],
) -> None:
    events, _, _ = clean
    created = of_type(events, "task_created")
    assert len(created) > 800
    no_estimate = np.mean(["estimated_hours" not in e for e in created])
    assert 0.75 <= no_estimate <= 0.95
    assert np.mean(["due_at" not in e for e in created]) > 0.8
    assert not any("required_skills" in e for e in created)
    joined = of_type(events, "user_joined")
    assert joined and not any("skills" in e for e in joined)
    assert np.mean(["seniority" in e or "weekly_capacity_hours" in e for e in joined]) < 0.4
    projects = of_type(events, "project_created")
    assert projects and not any("deadline" in e or "required_skills" in e for e in projects)
    assert not of_type(events, "time_logged")  # a bug tracker export has no time logs
    # What is there honours the contract; what is absent is absent, not null.
    for e in events:
        schema = schema_for(e["event_type"])
        assert set(e) <= set(schema.names), e
        assert all(v is not None for k, v in e.items() if k != "previous_assignee_id" and not k.endswith("task_id")), e
        required = required_fields(e["event_type"]) - {"actor_id", "assignee_id"}
        assert required <= set(e), e


def test_tracker_projects_are_components_of_a_few_products(clean: tuple[list[dict[str, Any]], Path, Any]) -> None:
    events, truth, _ = clean
    projects = pd.read_parquet(truth / "projects.parquet")
    assert projects.groupby("team_id").size().min() >= 6  # many components per product
    chosen = pd.read_parquet(truth / "candidates").query("chosen")
    tasks = pd.read_parquet(truth / "tasks.parquet").set_index("task_id")
    chosen = chosen.assign(project_id=tasks.loc[chosen.task_id, "project_id"].to_numpy())
    per_user = chosen.groupby("user_id").agg(n=("task_id", "size"), components=("project_id", "nunique"))
    busy = per_user[per_user.n >= 10]
    assert len(busy) >= 5 and (busy.components >= 3).mean() > 0.5  # people work across components ...
    top = chosen.groupby("user_id").project_id.agg(lambda s: s.value_counts().iloc[:2].sum() / len(s))
    assert top[busy.index].mean() > 0.5  # ... but mostly on their specialty


def test_tracker_self_assignment_share_is_in_range(clean: tuple[list[dict[str, Any]], Path, Any]) -> None:
    events, _, _ = clean
    assigned = of_type(events, "task_assigned")
    self_made = np.mean([e.get("actor_id") is not None and e["actor_id"] == e["assignee_id"] for e in assigned])
    assert 0.4 <= self_made <= 0.6
    no_actor = np.mean(["actor_id" not in e for e in assigned])
    assert 0.02 < no_actor < 0.2
    completed = of_type(events, "task_completed")
    assert 0.02 < np.mean(["assignee_id" not in e for e in completed]) < 0.2


def test_tracker_tasks_stay_open_for_months_and_some_are_never_assigned(
    clean: tuple[list[dict[str, Any]], Path, Any],
) -> None:
    events, truth, summary = clean
    tasks = pd.read_parquet(truth / "tasks.parquet")
    assigned = tasks.dropna(subset=["assigned_at"])
    open_for = (assigned.completed_at - assigned.created_at) / DAY  # true completion, after the window too
    assert (open_for > 90).mean() > 0.15
    assert (open_for > 365).mean() > 0.01
    # Seen in the events alone: tasks created early and still open when the window ends.
    end = pd.Timestamp(summary.window_end)
    seen_open = (tasks.completed_at.fillna(end).clip(upper=end) - tasks.created_at) / DAY
    assert (seen_open > 90).sum() > 20
    created = {e["task_id"] for e in of_type(events, "task_created")}
    picked = {e["task_id"] for e in of_type(events, "task_assigned")}
    assert 0.1 < 1 - len(picked & created) / len(created) < 0.4


def test_tracker_assignee_activity_is_heavy_tailed(clean: tuple[list[dict[str, Any]], Path, Any]) -> None:
    events, truth, _ = clean
    users = pd.read_parquet(truth / "users.parquet")
    workers = int((~users.is_manager).sum())
    counts = pd.Series([e["assignee_id"] for e in of_type(events, "task_assigned")]).value_counts()
    top = max(1, round(0.1 * workers))
    assert counts.iloc[:top].sum() / counts.sum() >= 0.4


def test_tracker_people_join_and_leave_and_their_open_tasks_are_reassigned(
    clean: tuple[list[dict[str, Any]], Path, Any],
) -> None:
    events, truth, _ = clean
    users = pd.read_parquet(truth / "users.parquet")
    assert users.joined_at.gt(pd.Timestamp(START)).any() and users.left_at.notna().any()
    assert of_type(events, "user_left")
    left = set(users.loc[users.left_at.notna(), "user_id"])
    reassigned = [e for e in of_type(events, "task_assigned") if e["previous_assignee_id"]]
    assert reassigned and all(e["previous_assignee_id"] in left for e in reassigned)


def test_tracker_titles_carry_component_words(clean: tuple[list[dict[str, Any]], Path, Any]) -> None:
    events, _, _ = clean
    created = of_type(events, "task_created")
    words = [set(re.findall(r"[a-z0-9]+", e["title"].lower().split("(#")[0])) for e in created]
    project = np.array([e["project_id"] for e in created])
    rng = np.random.default_rng(0)

    def jaccard(i: int, j: int) -> float:
        return len(words[i] & words[j]) / max(1, len(words[i] | words[j]))

    same, other = [], []
    for _ in range(4000):
        i, j = (int(x) for x in rng.integers(0, len(created), size=2))
        if i != j:
            (same if project[i] == project[j] else other).append(jaccard(i, j))
    for p in np.unique(project):
        members = np.flatnonzero(project == p)
        for _ in range(min(20, len(members) // 2)):
            i, j = (int(x) for x in rng.choice(members, size=2, replace=False))
            same.append(jaccard(i, j))
    assert len(same) > 100 and np.mean(same) > 2 * np.mean(other)


def test_tracker_reporter_is_an_existing_user_and_matters(clean: tuple[list[dict[str, Any]], Path, Any]) -> None:
    events, truth, _ = clean
    users = pd.read_parquet(truth / "users.parquet").set_index("user_id")
    created = of_type(events, "task_created")
    reporters = pd.Series([e["actor_id"] for e in created])
    at = pd.to_datetime(pd.Series([e["occurred_at"] for e in created]), utc=True)
    assert reporters.isin(users.index).all()
    assert (users.loc[reporters, "joined_at"].to_numpy() <= at.to_numpy()).all()
    tasks = pd.read_parquet(truth / "tasks.parquet")
    reporter_of = tasks.set_index("task_id").loc[[e["task_id"] for e in created], "reporter_id"]
    assert (reporter_of.to_numpy() == reporters.to_numpy()).all()
    cand = pd.read_parquet(truth / "candidates")
    chosen = cand[cand.chosen]
    assert chosen.reporter_bond.mean() > 2 * cand.reporter_bond.mean()
    assert chosen.is_reporter.mean() > 3 * cand.is_reporter.mean()


def test_tracker_truth_keeps_the_candidate_columns_and_is_driven_by_tracker_signals(
    clean: tuple[list[dict[str, Any]], Path, Any],
) -> None:
    events, truth, summary = clean
    cand = pd.read_parquet(truth / "candidates")
    assert set(cand.columns) >= CANDIDATE_COLUMNS
    decisions = cand.groupby(["task_id", "assignment_seq"])
    assert decisions.ngroups >= 700
    assert (decisions.chosen.sum() == 1).all() and (decisions.utility_rank.min() == 1).all()
    assert cand.skill_match.isna().all() and cand.open_hours.isna().all()
    assigned = of_type(events, "task_assigned")
    assert len(assigned) == decisions.ngroups == summary.event_type_counts["task_assigned"]
    chosen = cand[cand.chosen]
    pairs = set(zip(chosen.task_id, chosen.user_id, strict=True))
    assert all((e["task_id"], e["assignee_id"]) in pairs for e in assigned)
    # A noisy choice by the utility: often the best, far better than random; the signals tell.
    assert 0.3 < (chosen.utility_rank == 1).mean() < 0.8
    assert chosen.utility_rank.mean() < cand.utility_rank.mean() / 2
    for signal in ("affinity", "topic_match", "activity", "recency"):
        assert chosen[signal].mean() > cand[signal].mean(), signal
    tasks = pd.read_parquet(truth / "tasks.parquet")
    assert tasks.estimated_hours.isna().mean() > 0.75 and tasks.required_skills.isna().all()


def test_tracker_durations_are_learnable_beyond_the_median_per_project(
    clean: tuple[list[dict[str, Any]], Path, Any],
) -> None:
    _, truth, _ = clean
    cand = pd.read_parquet(truth / "candidates")
    # Within a decision the task is fixed: the candidate's affinity with the component shortens the median.
    centred = cand.assign(
        d_aff=cand.affinity - cand.groupby(["task_id", "assignment_seq"]).affinity.transform("mean"),
        d_dur=np.log(cand.median_duration_hours)
        - np.log(cand.median_duration_hours).groupby([cand.task_id, cand.assignment_seq]).transform("mean"),
    )
    assert np.corrcoef(centred.d_aff, centred.d_dur)[0, 1] < -0.5
    tasks = pd.read_parquet(truth / "tasks.parquet").set_index("task_id")
    done = cand[cand.chosen].dropna(subset=["actual_duration_hours"])
    done = done.assign(project_id=tasks.loc[done.task_id, "project_id"].to_numpy())
    z = np.log(done.actual_duration_hours / done.median_duration_hours)
    assert len(done) > 200 and 1.0 < z.std() < 1.8  # heavy noise
    log_y = np.log(done.actual_duration_hours)
    per_project = log_y.groupby(done.project_id).transform("median")
    assert np.mean(np.abs(log_y - np.log(done.median_duration_hours))) < np.mean(np.abs(log_y - per_project))


def test_tracker_same_seed_same_bytes_and_dirt_is_ledgered(tmp_path: Path) -> None:
    small = {"days": 30, "n_users": 30, "n_teams": 2}
    landing, truth, summary = run(tmp_path / "a", **small)
    again, _, _ = run(tmp_path / "b", **small)
    ours = {p.relative_to(landing): p.read_bytes() for p in sorted(landing.rglob("*.jsonl.gz"))}
    theirs = {p.relative_to(again): p.read_bytes() for p in sorted(again.rglob("*.jsonl.gz"))}
    assert ours.keys() == theirs.keys() and all(ours[k] == theirs[k] for k in ours)
    other, _, _ = run(tmp_path / "c", seed=8, **small)
    other_bytes = {p.relative_to(other): p.read_bytes() for p in sorted(other.rglob("*.jsonl.gz"))}
    assert sum(ours[k] != other_bytes.get(k) for k in ours) > len(ours) // 4

    # Default dirt: a missing_required line lacks a field the contract requires (and the event had).
    ledger = json.loads((truth / "dirt_ledger.json").read_text())
    assert sum(summary.dirt_counts.values()) > 0
    missing = [e for e in ledger["lines"] if e["class"] == "missing_required"]
    for entry in missing:
        field = entry["detail"].removesuffix("=null")
        assert entry["event_type"] in EVENT_TYPES and field in required_fields(entry["event_type"]), entry
