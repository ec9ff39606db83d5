"""Named drift scenarios: the world changes at an onset, the truth store says exactly how and when.

A scenario (``config.Scenario``, picked with ``config_for_preset(..., scenario=, scenario_day=)``,
the CLI's ``--scenario`` / ``--scenario-day`` or the ``simulate_activity`` DAG's Params) leaves the
window untouched before its onset, hour ``24 * D`` of the window (D = ``scenario_day``, default
the middle), and changes one thing from then on:

``none``
    Stationary, the default. No scenario code draws a random number or adds an event, so the
    output is byte-identical to the simulator's before scenarios existed (same seed, same bytes).
``reorg``
    At the onset a share (``reorg_share``, 30 %) of the non-manager users active then move to
    another team (uniformly among the others). The event contract has no team-change event, so
    the move is what the contract and the lake's state rule already accept: a second
    ``user_joined`` with the same ``user_id``, the new ``team_id`` and the shifted ``skills``
    (``user_joined`` sets the user's joined group last-writer-wins, so the user's team and skills
    change and ``joined_at`` becomes the move). A mover's skills become
    ``(1 - w) * old + w * new team's focus * Beta(4, 3)`` (w = ``reorg_skill_shift``). From the
    onset, managers pick among their team's members as of then, with those members' new skills,
    so who gets what changes and a ranker's learned user/team affinities go stale. Tasks keep
    arriving per team as before (work belongs to the product, not to the people), and a mover
    finishes the tasks they already hold.
``workload_surge``
    From the onset one team's task arrival rate is multiplied (``surge_multiplier``, x2). The
    extra arrivals per hour are drawn from their own stream on top of the usual ones, so every
    other team's (and this team's pre-onset) hourly task counts are exactly those of ``none``.
``estimate_bias``
    Tasks created from the onset carry optimistic estimates: ``estimated_hours`` is the true
    estimate times ``estimate_factor`` (0.6), rounded to half hours, while the true durations
    still follow the true estimate, so actual/estimated rises. Due dates are planned from the
    reported (optimistic) estimate, as a planner trusting it would.

The truth store gets ``scenario.json`` on every run (``scenario_onset`` reads it): the name, the
onset (UTC ISO and day index), the parameters, the affected team(s) and, for ``reorg``, every
move. ``summary.json``'s config records the scenario too (not for ``none``). The ``tracker``
preset has no scenarios.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from maestro_ml import storage
from maestro_ml.contracts.events import NUM_SKILLS
from maestro_ml.settings import join_uri
from maestro_ml.simulation.config import SCENARIOS, SimulationConfig, iso_z
from maestro_ml.simulation.org import Org, stream

SCENARIO_FILE = "scenario.json"


@dataclass
class Drift:
    """A scenario resolved against one organisation: what changes, for whom, from which hour."""

    name: str = "none"
    onset_h: float = float("inf")  # hours after the window start; inf: never (``none``)
    surge_team: int = -1  # workload_surge: the team whose arrivals are multiplied
    surge_multiplier: float = 1.0
    estimate_factor: float = 1.0  # estimate_bias: reported estimate / true estimate from the onset
    # reorg: the movers (user index), their new team and their skills from the onset (rows match).
    moved: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    move_to: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    moved_skills: np.ndarray = field(default_factory=lambda: np.zeros((0, NUM_SKILLS)))

    @property
    def active(self) -> bool:
        return self.name != "none"

    def team_after(self, org: Org) -> np.ndarray:
        """Every user's team from the onset on (their only team when nobody moves)."""
        team = org.user_team.copy()
        team[self.moved] = self.move_to
        return team


def resolve(cfg: SimulationConfig, org: Org) -> Drift:
    """Draw what the configured scenario changes in ``org`` (from scenario streams only: ``none`` draws nothing)."""
    sc = cfg.scenario
    onset = cfg.onset_h
    if onset is None:
        return Drift()
    if sc.name == "workload_surge":
        # A team picked by the seed alone, so reruns of a window surge the same team.
        team = int(stream(cfg.seed, "surgeteam").integers(0, org.n_teams))
        return Drift(name=sc.name, onset_h=onset, surge_team=team, surge_multiplier=sc.surge_multiplier)
    if sc.name == "estimate_bias":
        return Drift(name=sc.name, onset_h=onset, estimate_factor=sc.estimate_factor)
    # reorg
    rng = stream(cfg.seed, "reorg", cfg)
    eligible = np.flatnonzero(~org.is_manager & (org.join_h <= onset) & (org.leave_h > onset))
    n_move = int(round(sc.reorg_share * len(eligible)))
    moved = np.sort(rng.choice(eligible, size=n_move, replace=False)) if n_move else eligible[:0]
    # Another team, uniformly: shift the old team by 1..k-1 places.
    k = org.n_teams
    move_to = (org.user_team[moved] + rng.integers(1, k, size=len(moved))) % k
    target = org.team_focus[move_to] * rng.beta(4.0, 3.0, size=(len(moved), NUM_SKILLS))
    w = sc.reorg_skill_shift
    skills = np.round(np.clip((1.0 - w) * org.skills[moved] + w * target, 0.0, 1.0), 3)
    return Drift(
        name=sc.name,
        onset_h=onset,
        moved=moved.astype(np.int64),
        move_to=move_to.astype(np.int64),
        moved_skills=np.asarray(skills, dtype=np.float64),
    )


def truth_record(cfg: SimulationConfig, org: Org, drift: Drift) -> dict[str, Any]:
    """The scenario's entry in the truth store: name, onset, parameters and who or what it affects."""
    sc = cfg.scenario
    record: dict[str, Any] = {
        "scenario": sc.name,
        "description": SCENARIOS[sc.name],
        "window_start": iso_z(cfg.start),
        "window_end": iso_z(cfg.end),
        "onset_day": None,
        "onset": None,
        "parameters": sc.parameters(),
        "affected_team_ids": [],
    }
    if not drift.active:
        return record
    record["onset_day"] = sc.onset_day(cfg.days)
    record["onset"] = iso_z(cfg.start + timedelta(hours=drift.onset_h))
    if drift.name == "workload_surge":
        record["affected_team_ids"] = [org.team_ids[drift.surge_team]]
    elif drift.name == "estimate_bias":
        record["affected_team_ids"] = list(org.team_ids)
    elif drift.name == "reorg":
        moves = [
            {"user_id": org.user_ids[u], "from_team_id": org.team_ids[int(org.user_team[u])],
             "to_team_id": org.team_ids[t], "skills": [float(x) for x in s]}
            for u, t, s in zip(drift.moved.tolist(), drift.move_to.tolist(), drift.moved_skills, strict=True)
        ]  # fmt: skip
        eligible = int(np.sum(~org.is_manager & (org.join_h <= drift.onset_h) & (org.leave_h > drift.onset_h)))
        record["parameters"] = {**record["parameters"], "users_moved": len(moves), "users_eligible": eligible}
        record["affected_team_ids"] = sorted({m["from_team_id"] for m in moves} | {m["to_team_id"] for m in moves})
        record["moves"] = moves
    return record


def write_truth(cfg: SimulationConfig, org: Org, drift: Drift, truth_uri: str) -> dict[str, Any]:
    """Write ``<truth>/scenario.json`` (every run, so a stationary rerun replaces an old scenario's record)."""
    record = truth_record(cfg, org, drift)
    storage.write_json_atomic(join_uri(truth_uri, SCENARIO_FILE), record)
    return record


def scenario_onset(truth_uri: str) -> dict[str, Any] | None:
    """The drift scenario a simulated truth store records, or ``None`` when it is stationary.

    Reads ``<truth_uri>/scenario.json``. Returns ``None`` for scenario ``none`` and for truth stores
    written before scenarios existed; otherwise a dict with ``scenario`` (name), ``onset`` (UTC ISO,
    ``...Z``: the first hour of the changed world), ``onset_day`` (days after ``window_start``),
    ``parameters`` (e.g. ``share_moved``, ``multiplier``, ``estimate_factor``),
    ``affected_team_ids``, ``window_start`` / ``window_end`` and, for ``reorg``, ``moves``. Detection
    delay is then the first alarm minus ``onset``; alarms before it are false alarms.
    """
    uri = join_uri(truth_uri, SCENARIO_FILE)
    if not storage.exists(uri):
        return None
    record: dict[str, Any] = storage.read_json(uri)
    return None if record.get("scenario", "none") == "none" else record
