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

    @property
    def hours(self) -> int:
        return self.days * 24

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["start"] = iso_z(self.start)
        out["dirt"] = self.dirt.to_dict()
        out["model"] = self.model.to_dict()
        return out


PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"days": 2, "n_users": 30, "n_teams": 3, "lines_per_file": 5_000, "lines_per_member": 25},
    "demo": {"days": 14, "n_users": 300, "n_teams": 12, "lines_per_file": 20_000, "lines_per_member": 250},
    "bench": {"days": 30, "n_users": 2_000, "n_teams": 50, "lines_per_file": 20_000, "lines_per_member": 1_000},
}


def config_for_preset(name: str, start: datetime, seed: int = 7, **overrides: Any) -> SimulationConfig:
    """A preset's config; keyword overrides replace any field (``dirt`` may be a DirtRates or a dict)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    values: dict[str, Any] = {**PRESETS[name], **overrides}
    dirt = values.get("dirt")
    if isinstance(dirt, dict):
        values["dirt"] = DirtRates(**dirt)
    model = values.get("model")
    if isinstance(model, dict):
        values["model"] = BehaviourModel(**model)
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
