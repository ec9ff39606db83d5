"""Tasks: when they are created (working hours of the team's timezone), what they need, how big and how urgent."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maestro_ml.contracts.events import NUM_SKILLS
from maestro_ml.simulation import text
from maestro_ml.simulation.config import SimulationConfig
from maestro_ml.simulation.org import TIMEZONES, Org, stream, unique_ids
from maestro_ml.simulation.scenarios import Drift


@dataclass
class Tasks:
    task_ids: list[str]
    team: np.ndarray
    project: np.ndarray
    created_h: np.ndarray
    priority: np.ndarray  # 1..4
    est: np.ndarray  # estimated hours
    due_h: np.ndarray
    skills: np.ndarray  # (n, NUM_SKILLS) required proficiency, 0 where not needed
    main_skill: np.ndarray
    parent: np.ndarray  # task index or -1
    depends: np.ndarray  # task index or -1
    assign_h: np.ndarray  # when the manager assigns it; nan: stays in the backlog
    titles: list[str]
    title_pii: dict[int, list[str]]  # task index -> PII strings pasted into its title
    # The tracker preset only: who reported it, its specialty topic and its hidden size (log factor).
    reporter: np.ndarray | None = None
    topic: np.ndarray | None = None
    log_size: np.ndarray | None = None
    # The estimate_bias scenario only: the estimate the events carry (``est`` stays the true one).
    reported_est: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.task_ids)


def activity_weights(cfg: SimulationConfig, tz_offsets: np.ndarray) -> np.ndarray:
    """(len(tz_offsets), hours) relative activity: working hours on weekdays, a trickle otherwise; mean 1 per week."""
    start_hour = cfg.start.hour
    weekday0 = cfg.start.weekday()
    h = np.arange(cfg.hours, dtype=np.float64)

    def weights(hour_axis: np.ndarray) -> np.ndarray:
        local = hour_axis[None, :] + start_hour + tz_offsets[:, None]
        local_hour = np.mod(local, 24.0)
        local_day = np.mod(np.floor(local / 24.0) + weekday0, 7)
        w = np.where((local_hour >= 8) & (local_hour < 18), 1.0, 0.1)
        return np.asarray(w * np.where(local_day < 5, 1.0, 0.2))

    week_mean = weights(np.arange(168, dtype=np.float64)).mean(axis=1, keepdims=True)
    return weights(h) / week_mean


def build_tasks(cfg: SimulationConfig, org: Org, drift: Drift | None = None) -> Tasks:
    drift = drift or Drift()
    rng = stream(cfg.seed, "tasks", cfg)
    hours, k = cfg.hours, org.n_teams
    model = cfg.model

    offsets = np.array([TIMEZONES[z][1] for z in org.team_tz])
    weights = activity_weights(cfg, offsets)
    mid = np.arange(hours) + 0.5
    workers = ~org.is_manager
    active = (org.join_h[:, None] <= mid[None, :]) & (org.leave_h[:, None] > mid[None, :]) & workers[:, None]
    onehot = np.zeros((k, org.n_users))
    onehot[org.user_team, np.arange(org.n_users)] = 1.0
    active_per_team = onehot @ active.astype(np.float64)
    expected = cfg.tasks_per_user_day / 24.0 * active_per_team * weights
    expected[:, 0] = 0.0  # the first hour is the organisation's bootstrap (user_joined, project_created)
    counts = rng.poisson(expected)
    if drift.surge_team >= 0:
        # The surge's extra arrivals come from their own stream, added on top: every other count stays as in "none".
        h0, team = int(drift.onset_h), drift.surge_team
        extra = stream(cfg.seed, "surgearr", cfg).poisson(expected[team, h0:] * (drift.surge_multiplier - 1.0))
        counts[team, h0:] += extra
    team_of = np.repeat(np.repeat(np.arange(k), hours), counts.ravel())
    hour_of = np.repeat(np.tile(np.arange(hours), k), counts.ravel())
    created = hour_of + rng.random(len(hour_of))

    # A project of the team that already exists, uniformly.
    project = np.empty(len(created), dtype=np.int64)
    for t in range(k):
        sel = np.flatnonzero(team_of == t)
        projects = np.flatnonzero(org.project_team == t)
        order = np.argsort(org.project_created_h[projects], kind="stable")
        projects, starts = projects[order], org.project_created_h[projects][order]
        available = np.searchsorted(starts, created[sel], side="left")
        available = np.maximum(available, 1)  # teams always have running projects; guard anyway
        project[sel] = projects[(rng.random(len(sel)) * available).astype(np.int64)]

    order = np.lexsort((team_of, created))
    created, team_of, project = created[order], team_of[order], project[order]
    n = len(created)

    # Required skills: one to three skills of the project's mix, weighted by its emphasis.
    mix = org.project_skills[project]
    keys = np.log(mix**2 + 1e-3) + rng.gumbel(size=(n, NUM_SKILLS))
    n_req = rng.choice(np.array([1, 2, 3]), size=n, p=[0.35, 0.45, 0.2])
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    skills = np.where(rank < n_req[:, None], np.round(rng.uniform(0.5, 1.0, size=(n, NUM_SKILLS)), 3), 0.0)
    main_skill = np.argmax(skills, axis=1)

    priority = np.clip(org.project_priority[project] + rng.choice(np.array([-1, 0, 0, 1]), size=n), 1, 4)
    est = np.clip(np.round(rng.lognormal(np.log(3.0), 0.7, size=n) * 2.0) / 2.0, 0.5, 40.0)
    reported = None
    if drift.estimate_factor != 1.0:
        # Optimistic from the onset: the events (and the plan, i.e. the due date) see the shrunk estimate.
        shrunk = np.clip(np.round(est * drift.estimate_factor * 2.0) / 2.0, 0.5, 40.0)
        reported = np.where(created >= drift.onset_h, shrunk, est)
    planned = est if reported is None else reported
    slack = planned * model.elapsed_factor * rng.lognormal(np.log(1.9), 0.45, size=n) * (1.3 - 0.1 * priority)
    due_h = np.ceil(created + np.maximum(slack, 2.0))

    # Structure: subtasks of, and dependencies on, earlier tasks of the same project.
    by_project = np.lexsort((created, project))
    proj_sorted = project[by_project]
    group_start = np.searchsorted(proj_sorted, proj_sorted, side="left")
    pos = np.arange(n) - group_start
    parent = np.full(n, -1, dtype=np.int64)
    depends = np.full(n, -1, dtype=np.int64)
    has_parent = (pos > 0) & (rng.random(n) < 0.15)
    pick = group_start + (rng.random(n) * np.maximum(pos, 1)).astype(np.int64)
    parent[by_project[has_parent]] = by_project[pick[has_parent]]
    has_dep = (pos > 0) & (rng.random(n) < 0.10)
    pick = group_start + (rng.random(n) * np.maximum(pos, 1)).astype(np.int64)
    depends[by_project[has_dep]] = by_project[pick[has_dep]]
    depends[depends == parent] = -1

    delay = rng.exponential(0.4 * (5 - priority))
    assign_h = created + delay
    backlog = rng.random(n) < cfg.unassigned_fraction
    assign_h = np.where(backlog | (assign_h >= hours), np.nan, assign_h)

    verb = rng.integers(0, 1 << 16, size=n)
    obj = rng.integers(0, 1 << 16, size=n)
    titles = [
        text.task_title(int(v), int(s), int(o), i + 1)
        for i, (v, s, o) in enumerate(zip(verb, main_skill, obj, strict=True))
    ]
    title_pii: dict[int, list[str]] = {}
    pii_rate = cfg.dirt.pii_in_text / 5.0
    with_pii = np.flatnonzero(rng.random(n) < pii_rate)
    draws = rng.integers(0, 1 << 20, size=(len(with_pii), 10))
    for i, r in zip(with_pii.tolist(), draws, strict=True):
        suffix, found = text.pii_title_suffix(r)
        titles[i] = f"{titles[i]}, {suffix}"
        title_pii[i] = found

    return Tasks(
        task_ids=unique_ids(rng, n, "t_", 6),
        team=team_of,
        project=project,
        created_h=created,
        priority=priority.astype(np.int64),
        est=est,
        due_h=due_h,
        skills=skills,
        main_skill=main_skill,
        parent=parent,
        depends=depends,
        assign_h=assign_h,
        titles=titles,
        title_pii=title_pii,
        reported_est=reported,
    )
