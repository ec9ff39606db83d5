"""Configuration of the simulator: presets, behaviour coefficients and dirt rates."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Ledger classes of injected dirt and what a correct ingestion does with a line of that class.
DIRT_DISPOSITIONS: dict[str, str] = {
    "malformed_json": "quarantine",  # the line is not JSON
    "missing_required": "quarantine",  # a REQUIRED field (or envelope field) is absent or null
    "wrong_type": "quarantine",  # a field holds a value of the wrong JSON type ("hours": "three")
    "unknown_event_type": "quarantine",  # event_type is not in events.EVENT_TYPES (an extra line)
    "future_timestamp": "quarantine",  # occurred_at lies days after the hour the line landed in
    "duplicate_line": "drop",  # byte-identical copy of an earlier line (the copy is listed)
    "resent_event": "drop",  # same event (same event_id) sent again, re-serialised (the copy is listed)
    "late_event": "accept",  # landed 1..47 hours after the hour it occurred in
    "pii_in_text": "accept",  # email / phone number inside free text: accepted once scrubbed
    "truncated_gzip": "lost",  # the line sat in a gzip member that was cut short
}
DIRT_CLASSES: tuple[str, ...] = tuple(DIRT_DISPOSITIONS)


@dataclass(frozen=True)
class DirtRates:
    """How much dirt to inject.

    Line rates are per true event (``unknown_event_type`` adds that fraction of extra lines),
    ``pii_in_text`` is per comment (task titles get a fifth of it) and ``truncated_gzip`` is
    per file that has at least two gzip members.
    """

    malformed_json: float = 0.0
    missing_required: float = 0.0
    wrong_type: float = 0.0
    unknown_event_type: float = 0.0
    future_timestamp: float = 0.0
    duplicate_line: float = 0.0
    resent_event: float = 0.0
    late_event: float = 0.0
    pii_in_text: float = 0.0
    truncated_gzip: float = 0.0

    def __post_init__(self) -> None:
        for name, value in self.to_dict().items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"dirt rate {name} must be in [0, 1], not {value}")
        exclusive = sum(getattr(self, n) for n in EXCLUSIVE_LINE_CLASSES)
        if exclusive > 0.5:
            raise ValueError(f"the per-event dirt rates add up to {exclusive:.3f}; keep them under 0.5")

    @classmethod
    def default(cls) -> DirtRates:
        """The rates the demo runs with: every class present, a few hundred lines of each at demo size."""
        return cls(
            malformed_json=0.002,
            missing_required=0.002,
            wrong_type=0.002,
            unknown_event_type=0.001,
            future_timestamp=0.001,
            duplicate_line=0.003,
            resent_event=0.003,
            late_event=0.01,
            pii_in_text=0.05,
            truncated_gzip=0.01,
        )

    @classmethod
    def off(cls) -> DirtRates:
        return cls()

    @property
    def enabled(self) -> bool:
        return any(v > 0 for v in self.to_dict().values())

    def to_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}


# Classes drawn once per event, mutually exclusive (an event gets at most one of them).
EXCLUSIVE_LINE_CLASSES: tuple[str, ...] = (
    "malformed_json",
    "missing_required",
    "wrong_type",
    "future_timestamp",
    "late_event",
    "resent_event",
    "duplicate_line",
)


@dataclass(frozen=True)
class BehaviourModel:
    """Coefficients of the true duration model and of the managers' choice (see the package docstring)."""

    elapsed_factor: float = 2.5  # wall-clock hours per estimated hour for a typical assignee
    beta_skill: float = 2.0  # log-duration change per unit of skill match below skill_pivot
    skill_pivot: float = 0.6
    beta_seniority: float = 0.12  # log-duration change per seniority level below 3
    beta_load: float = 0.35  # relative slowdown per day of already-open work
    beta_priority: float = 0.08  # log-duration change per priority level below 2.5
    beta_size: float = 0.1  # bigger tasks take disproportionately longer: (estimate / 4h) ** beta_size
    sigma: float = 0.45  # lognormal noise of the actual duration
    utility_lambda: float = 0.25  # weight of the log slowdown in the utility
    manager_noise: float = 0.08  # scale of the Gumbel noise managers add to the utility

    def to_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class TrackerModel:
    """The ``tracker`` preset: an open-source bug tracker export (see the package docstring, "Tracker preset").

    Shares of optional fields written, the organisation's shape, the assignment propensity (the truth's
    ``utility``) and the duration model. ``SimulationConfig.tracker`` is ``None`` for the other presets.
    """

    # What the export carries.
    estimate_share: float = 0.15  # task_created events with an estimated_hours key
    due_share: float = 0.08  # ... with a due_at key
    profile_share: float = 0.2  # user_joined events with seniority and weekly_capacity_hours
    never_assigned: float = 0.15  # tasks nobody ever takes
    no_actor_share: float = 0.08  # task_assigned events without an actor_id
    self_assign_share: float = 0.42  # mean share of a user's assignments they make themselves
    completed_without_assignee: float = 0.1  # task_completed events without an assignee_id
    # The organisation: products (teams) made of components (projects).
    components_per_team: int = 12
    component_words: int = 8  # a component's own vocabulary
    topics_per_team: int = 10  # specialties: a few words a person's tasks are about
    activity_zipf: float = 1.0  # Zipf exponent of the users' activity weights within a product (larger: heavier)
    assign_delay_hours: float = 36.0  # median wait from report to assignment (lognormal)
    assign_delay_sigma: float = 1.6
    # The true assignment propensity (the truth's utility), see the docstring.
    w_affinity: float = 2.0
    w_topic: float = 1.0
    w_activity: float = 1.0
    w_reporter: float = 1.2
    w_self_report: float = 1.5
    w_recency: float = 1.0
    recency_days: float = 21.0
    w_experience: float = 0.3
    w_load: float = 0.3
    utility_lambda: float = 0.3
    choice_noise: float = 1.0  # scale of the Gumbel noise on the utility
    # The true duration model (hours from assignment to done), see the docstring.
    base_median_hours: float = 1500.0
    component_sigma: float = 0.6
    reporter_sigma: float = 0.35
    size_sigma: float = 0.5
    b_priority: float = 0.3
    b_affinity: float = 0.8
    b_topic: float = 0.3
    b_experience: float = 0.2
    sigma: float = 1.4

    def __post_init__(self) -> None:
        shares = ("estimate_share", "due_share", "profile_share", "never_assigned", "no_actor_share",
                  "self_assign_share", "completed_without_assignee")  # fmt: skip
        for name in shares:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"tracker share {name} must be in [0, 1], not {value}")
        if self.components_per_team < 1 or self.topics_per_team < 1 or self.component_words < 2:
            raise ValueError("need at least one component and topic per team and two words per component")

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


# Named drift scenarios (``maestro_ml.simulation.scenarios`` applies them) and what each does from its onset.
SCENARIOS: dict[str, str] = {
    "none": "stationary: the organisation and its behaviour never change (the default)",
    "reorg": "a share of the users move to another team, their skills shift towards it, and assignment follows",
    "workload_surge": "one team's task arrival rate is multiplied",
    "estimate_bias": "estimates turn optimistic (estimated_hours shrink; true durations do not)",
}


@dataclass(frozen=True)
class Scenario:
    """A named drift scenario and its parameters; ``day`` is its onset, whole days after the window start.

    ``day=None`` means the middle of the window (``days // 2``: day 7 of 14). The onset must leave at
    least one day before and one after it (``1 <= day <= days - 1``), so there is a reference to
    detect the change against; ``SimulationConfig`` checks that against its window.
    """

    name: str = "none"
    day: int | None = None
    reorg_share: float = 0.3  # reorg: share of the non-manager users active at the onset who move
    reorg_skill_shift: float = 0.5  # reorg: weight of the new team's skill profile in a mover's skills
    surge_multiplier: float = 2.0  # workload_surge: task arrival rate of the affected team, times this
    estimate_factor: float = 0.6  # estimate_bias: reported estimated_hours = true estimate * this

    def __post_init__(self) -> None:
        if self.name not in SCENARIOS:
            raise ValueError(f"unknown scenario {self.name!r}; choose one of {sorted(SCENARIOS)}")
        if self.day is not None and (isinstance(self.day, bool) or not isinstance(self.day, int)):
            raise ValueError(f"scenario_day must be a whole number of days, not {self.day!r}")
        if not 0.0 < self.reorg_share <= 1.0:
            raise ValueError(f"reorg_share must be in (0, 1], not {self.reorg_share}")
        if not 0.0 <= self.reorg_skill_shift <= 1.0:
            raise ValueError(f"reorg_skill_shift must be in [0, 1], not {self.reorg_skill_shift}")
        if self.surge_multiplier < 1.0:
            raise ValueError(f"surge_multiplier must be >= 1 (a surge), not {self.surge_multiplier}")
        if not 0.0 < self.estimate_factor <= 1.0:
            raise ValueError(f"estimate_factor must be in (0, 1] (optimistic estimates), not {self.estimate_factor}")

    @property
    def active(self) -> bool:
        return self.name != "none"

    def onset_day(self, days: int) -> int:
        """The onset as whole days after the window start, checked against a ``days``-long window."""
        day = days // 2 if self.day is None else self.day
        if not (self.day is not None or self.active) or 1 <= day <= days - 1:
            return day
        if days < 2:
            raise ValueError(
                f"scenario {self.name!r} needs a window of at least 2 days (a day before and one after its "
                f"onset), not {days}"
            )
        raise ValueError(
            f"scenario_day {day} is outside the {days}-day window: the onset needs at least a day before and "
            f"one after it, so it must be in 1..{days - 1}"
        )

    def parameters(self) -> dict[str, float]:
        """The parameters that matter for this scenario (empty for ``none``)."""
        return {
            "none": {},
            "reorg": {"share_moved": self.reorg_share, "skill_shift": self.reorg_skill_shift},
            "workload_surge": {"multiplier": self.surge_multiplier},
            "estimate_bias": {"estimate_factor": self.estimate_factor},
        }[self.name]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class SimulationConfig:
    preset: str
    start: datetime
    days: int
    seed: int = 7
    n_users: int = 300
    n_teams: int = 12
    tasks_per_user_day: float = 2.2  # tasks created per active non-manager member per (average) day
    comments_per_task: float = 1.4
    unassigned_fraction: float = 0.04  # tasks that stay in the backlog
    join_rate_per_day: float = 0.004  # fraction of users joining per day of window
    leave_rate_per_day: float = 0.003
    max_candidates: int = 50
    lines_per_file: int = 20_000
    lines_per_member: int = 250
    gzip_level: int = 6
    workers: int = 2
    dirt: DirtRates = field(default_factory=DirtRates.default)
    model: BehaviourModel = field(default_factory=BehaviourModel)
    tracker: TrackerModel | None = None  # set: imitate a bug tracker export (the "tracker" preset)
    scenario: Scenario = field(default_factory=Scenario)  # drift from an onset day; "none": stationary

    def __post_init__(self) -> None:
        start = self.start
        if start.tzinfo is None or start.utcoffset() is None:
            raise ValueError("start must be a timezone-aware datetime")
        start = start.astimezone(UTC)
        if (start.minute, start.second, start.microsecond) != (0, 0, 0):
            raise ValueError(f"start must be aligned to the hour, not {start.isoformat()}")
        object.__setattr__(self, "start", start)
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.n_teams < 1 or self.n_users < 4 * self.n_teams:
            raise ValueError("need at least one team and at least 4 users per team")
        if self.lines_per_member < 1 or self.lines_per_file < 1:
            raise ValueError("lines_per_member and lines_per_file must be positive")
        if isinstance(self.scenario, str):
            object.__setattr__(self, "scenario", Scenario(name=self.scenario))
        self.scenario.onset_day(self.days)  # raises when the onset lies outside the window
        if self.scenario.active and self.tracker is not None:
            raise ValueError(f"scenario {self.scenario.name!r} is not available for the tracker preset; use 'none'")
        if self.scenario.name == "reorg" and self.n_teams < 2:
            raise ValueError("the reorg scenario moves users between teams: it needs at least two teams")

    @property
    def hours(self) -> int:
        return self.days * 24

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    @property
    def onset_h(self) -> float | None:
        """Hours from the window start to the scenario's onset; ``None`` when the scenario is ``none``."""
        return float(24 * self.scenario.onset_day(self.days)) if self.scenario.active else None

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["start"] = iso_z(self.start)
        out["dirt"] = self.dirt.to_dict()
        out["model"] = self.model.to_dict()
        if self.tracker is None:
            del out["tracker"]  # the other presets' summaries stay as they were
        else:
            out["tracker"] = self.tracker.to_dict()
        if self.scenario.active:
            out["scenario"] = self.scenario.to_dict()
        else:
            del out["scenario"]  # stationary runs record exactly what they did before scenarios existed
        return out


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"days": 2, "n_users": 30, "n_teams": 3, "lines_per_file": 5_000, "lines_per_member": 25},
    "demo": {"days": 14, "n_users": 300, "n_teams": 12, "lines_per_file": 20_000, "lines_per_member": 250},
    "bench": {"days": 30, "n_users": 2_000, "n_teams": 50, "lines_per_file": 20_000, "lines_per_member": 1_000},
    # An open-source bug tracker export: few fields, components, months-long tasks (``TrackerModel``).
    "tracker": {
        "days": 150,
        "n_users": 90,
        "n_teams": 3,
        "tasks_per_user_day": 0.28,
        "comments_per_task": 1.4,
        "join_rate_per_day": 0.0015,
        "leave_rate_per_day": 0.0012,
        "lines_per_file": 5_000,
        "lines_per_member": 4,  # a few events an hour: small members, so truncated_gzip dirt has files to cut
        "tracker": {},
    },
}


def config_for_preset(name: str, start: datetime, seed: int = 7, **overrides: Any) -> SimulationConfig:
    """A preset's config; keyword overrides replace any field (``dirt`` may be a DirtRates or a dict).

    ``scenario=`` names a drift scenario (one of ``SCENARIOS``, or a ``Scenario`` or a dict of its
    fields) and ``scenario_day=`` its onset (days after the start; default: the window's middle).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    scenario = overrides.pop("scenario", None)
    scenario_day = overrides.pop("scenario_day", None)
    values: dict[str, Any] = {**PRESETS[name], **overrides}
    picked: Scenario
    if isinstance(scenario, Scenario):
        picked = scenario if scenario_day is None else dataclasses.replace(scenario, day=scenario_day)
    elif isinstance(scenario, dict):
        picked = Scenario(**{**scenario, **({} if scenario_day is None else {"day": scenario_day})})
    else:
        picked = Scenario(name=scenario or "none", day=scenario_day)
    values["scenario"] = picked
    dirt = values.get("dirt")
    if isinstance(dirt, dict):
        values["dirt"] = DirtRates(**dirt)
    model = values.get("model")
    if isinstance(model, dict):
        values["model"] = BehaviourModel(**model)
    tracker = values.get("tracker")
    if isinstance(tracker, dict):
        values["tracker"] = TrackerModel(**tracker)
    known = {f.name for f in dataclasses.fields(SimulationConfig)}
    unknown = set(values) - known
    if unknown:
        raise TypeError(f"unknown SimulationConfig fields: {sorted(unknown)}")
    return SimulationConfig(preset=name, start=start, seed=seed, **values)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_start(text: str) -> datetime:
    """Parse ``2026-11-01T00:00:00Z`` (or any ISO form with an offset; naive means UTC)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
