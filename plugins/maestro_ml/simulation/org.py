"""The organisation: teams, users (skills, seniority, capacity, timezone, tenure) and projects.

Times are hours relative to the window start (negative: before the window; ``inf``: never).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maestro_ml.contracts.events import NUM_SKILLS
from maestro_ml.simulation import text
from maestro_ml.simulation.config import SimulationConfig

# (IANA name, UTC offset in hours ignoring daylight saving): drives the hours a team is active.
TIMEZONES: tuple[tuple[str, float], ...] = (
    ("America/Los_Angeles", -8.0),
    ("America/New_York", -5.0),
    ("America/Sao_Paulo", -3.0),
    ("Europe/London", 0.0),
    ("Europe/Berlin", 1.0),
    ("Africa/Lagos", 1.0),
    ("Asia/Kolkata", 5.5),
    ("Asia/Singapore", 8.0),
    ("Asia/Tokyo", 9.0),
    ("Australia/Sydney", 10.0),
)


def stream(seed: int, name: str, window: SimulationConfig | None = None) -> np.random.Generator:
    """An independent, reproducible random stream per concern, so one change does not shift the others.

    Streams of window activity (tasks, events, ids) also depend on the window start, so windows
    simulated one after the other with the same seed never reuse a task or event id; the
    organisation's stream depends on the seed alone.
    """
    tag = int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little")
    key = [seed, tag]
    if window is not None:
        key.append(int(window.start.timestamp()) // 3600)
    return np.random.default_rng(np.random.SeedSequence(key))


def unique_ids(rng: np.random.Generator, n: int, prefix: str, nbytes: int = 5) -> list[str]:
    """``n`` distinct ``prefix`` + hex ids drawn from ``rng`` (redrawing the rare collision)."""
    seen: set[int] = set()
    out: list[str] = []
    hi = 1 << (8 * nbytes)
    while len(out) < n:
        for value in rng.integers(0, hi, size=n - len(out), dtype=np.uint64).tolist():
            if value not in seen:
                seen.add(value)
                out.append(f"{prefix}{value:0{2 * nbytes}x}")
    return out


@dataclass
class TrackerTraits:
    """The ``tracker`` preset's hidden traits of users and components (``maestro_ml.simulation.tracker``)."""

    profile: np.ndarray  # per user: does user_joined carry seniority and weekly_capacity_hours
    activity: np.ndarray  # per user, mean 1 over non-managers: how much work they take on (heavy-tailed)
    affinity: np.ndarray  # (n_users, n_projects) in [0, 1]: ~1 on the 1-2 specialty components, 0 off the product
    topic: np.ndarray  # per user: index into topic_words, their specialty
    favourites: np.ndarray  # (n_users, 2): the handlers a user, as reporter, prefers (-1: none)
    report_weight: np.ndarray  # per user: how much they report
    self_assign: np.ndarray  # per user: probability that they make their own assignment
    reporter_log_factor: np.ndarray  # per user: shift of the log duration of the tasks they report
    component_popularity: np.ndarray  # per project: its share of its product's reports
    component_log_median: np.ndarray  # per project: log of its typical duration in hours
    component_words: list[tuple[str, ...]]  # per project: its vocabulary
    topic_team: np.ndarray  # per topic: its product (team)
    topic_words: list[tuple[str, ...]]  # per topic: its vocabulary


@dataclass
class Org:
    team_ids: list[str]
    team_tz: np.ndarray  # int index into TIMEZONES
    team_focus: np.ndarray  # (n_teams, NUM_SKILLS) skill emphasis in [0, 1]
    manager: np.ndarray  # (n_teams,) user index of the team's manager
    user_ids: list[str]
    user_team: np.ndarray
    skills: np.ndarray  # (n_users, NUM_SKILLS) float64, rounded to 3 decimals
    seniority: np.ndarray  # int 1..5
    capacity: np.ndarray  # weekly hours
    user_tz: np.ndarray
    join_h: np.ndarray
    leave_h: np.ndarray
    is_manager: np.ndarray
    names: list[str]
    emails: list[str]
    project_ids: list[str]
    project_team: np.ndarray
    project_created_h: np.ndarray
    project_priority: np.ndarray
    project_deadline_h: np.ndarray
    project_skills: np.ndarray
    project_names: list[str]
    traits: TrackerTraits | None = None  # the tracker preset only

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_teams(self) -> int:
        return len(self.team_ids)


def build_org(cfg: SimulationConfig) -> Org:
    rng = stream(cfg.seed, "org")
    n, k, hours = cfg.n_users, cfg.n_teams, cfg.hours

    extra = rng.multinomial(n - 4 * k, rng.dirichlet(np.full(k, 3.0)))
    sizes = 4 + extra
    user_team = np.repeat(np.arange(k), sizes)
    team_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])

    team_tz = rng.integers(0, len(TIMEZONES), size=k)
    team_focus = np.full((k, NUM_SKILLS), 0.12)
    for t in range(k):
        focus = rng.choice(NUM_SKILLS, size=3, replace=False)
        team_focus[t, focus] = rng.uniform(0.6, 1.0, size=3)

    seniority = rng.choice(np.arange(1, 6), size=n, p=[0.22, 0.32, 0.26, 0.14, 0.06])
    seniority[team_start] = np.maximum(seniority[team_start], 4)  # the manager

    skills = team_focus[user_team] * rng.beta(4.0, 3.0, size=(n, NUM_SKILLS))
    skills += rng.beta(1.2, 6.0, size=(n, NUM_SKILLS))
    specialty = rng.integers(0, NUM_SKILLS, size=n)
    skills[np.arange(n), specialty] += rng.uniform(0.3, 0.6, size=n)
    skills *= (0.8 + 0.05 * seniority)[:, None]
    skills = np.asarray(np.round(np.clip(skills, 0.0, 1.0), 3), dtype=np.float64)

    capacity = rng.choice(np.array([20.0, 24.0, 30.0, 32.0, 36.0, 40.0]), size=n, p=[0.05, 0.05, 0.1, 0.15, 0.25, 0.4])
    user_tz = np.where(rng.random(n) < 0.8, team_tz[user_team], rng.integers(0, len(TIMEZONES), size=n))

    p_join = min(0.25, cfg.join_rate_per_day * cfg.days)
    joins_in_window = rng.random(n) < p_join
    joins_in_window[team_start] = False
    join_h = np.where(
        joins_in_window, rng.uniform(1.0, max(1.5, hours - 1.0), size=n), -rng.uniform(720, 36_000, size=n)
    )

    p_leave = min(0.2, cfg.leave_rate_per_day * cfg.days)
    lo = np.maximum(join_h, 0.0) + 24.0
    leaves = (rng.random(n) < p_leave) & (lo < hours - 1.0)
    leaves[team_start] = False
    leave_h = np.where(leaves, lo + rng.random(n) * (hours - 1.0 - lo), np.inf)

    is_manager = np.zeros(n, dtype=bool)
    is_manager[team_start] = True

    first = rng.integers(0, 1 << 16, size=n)
    last = rng.integers(0, 1 << 16, size=n)
    names = [text.person_name(int(a), int(b)) for a, b in zip(first, last, strict=True)]
    emails = [text.work_email(int(a), int(b), i) for i, (a, b) in enumerate(zip(first, last, strict=True))]

    # Projects: a few running ones per team when the window opens, a few started during it.
    n_initial = np.maximum(2, np.round(sizes / 6).astype(int))
    n_new = rng.poisson(0.08 * cfg.days, size=k)
    per_team = n_initial + n_new
    project_team = np.repeat(np.arange(k), per_team)
    is_initial = np.concatenate([np.arange(c) < i for c, i in zip(per_team, n_initial, strict=True)])
    m = len(project_team)
    created_h = np.where(
        is_initial, -rng.uniform(24, 24 * 200, size=m), rng.uniform(1.0, max(1.5, hours - 24.0), size=m)
    )
    project_priority = rng.choice(np.arange(1, 5), size=m, p=[0.2, 0.4, 0.3, 0.1])
    project_deadline_h = np.maximum(created_h, 0.0) + 24 * rng.uniform(14, 120, size=m)
    project_skills = team_focus[project_team] * rng.uniform(0.5, 1.0, size=(m, NUM_SKILLS))
    project_skills += rng.beta(0.5, 4.0, size=(m, NUM_SKILLS))
    project_skills = np.asarray(np.round(np.clip(project_skills, 0.0, 1.0), 3), dtype=np.float64)
    a = rng.integers(0, 1 << 16, size=m)
    b = rng.integers(0, 1 << 16, size=m)
    project_names = [text.project_name(int(x), int(y), i + 1) for i, (x, y) in enumerate(zip(a, b, strict=True))]

    return Org(
        team_ids=unique_ids(rng, k, "team_", 3),
        team_tz=team_tz,
        team_focus=team_focus,
        manager=team_start.astype(np.int64),
        user_ids=unique_ids(rng, n, "u_"),
        user_team=user_team,
        skills=skills,
        seniority=seniority.astype(np.int64),
        capacity=capacity,
        user_tz=user_tz,
        join_h=join_h,
        leave_h=leave_h,
        is_manager=is_manager,
        names=names,
        emails=emails,
        project_ids=unique_ids(rng, m, "p_"),
        project_team=project_team,
        project_created_h=created_h,
        project_priority=project_priority.astype(np.int64),
        project_deadline_h=project_deadline_h,
        project_skills=project_skills,
        project_names=project_names,
    )
