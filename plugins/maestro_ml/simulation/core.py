"""``simulate``: organisation -> tasks -> assignment truth -> events -> landing zone + truth store."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.contracts.events import EVENT_TYPES, SKILL_NAMES
from maestro_ml.settings import join_uri
from maestro_ml.simulation import scenarios
from maestro_ml.simulation import tracker as tracker_sim
from maestro_ml.simulation.behaviour import Assignments, run_assignments
from maestro_ml.simulation.config import DIRT_CLASSES, DIRT_DISPOSITIONS, SimulationConfig, iso_z
from maestro_ml.simulation.lifecycle import EventTable, build_events
from maestro_ml.simulation.org import TIMEZONES, Org, build_org
from maestro_ml.simulation.tasks import Tasks, build_tasks
from maestro_ml.simulation.writer import LandingResult, write_landing

TS = pa.timestamp("us", tz="UTC")
CANDIDATE_ROWS_PER_FILE = 1_000_000


@dataclass
class SimulationSummary:
    preset: str
    seed: int
    window_start: str
    window_end: str
    landing_uri: str
    truth_uri: str
    users: int
    teams: int
    projects: int
    tasks: int
    assigned_tasks: int
    candidate_rows: int
    events_generated: int  # true events of the window
    events_written: int  # lines in the landing zone, dirt included
    files: int
    event_type_counts: dict[str, int]  # true events per type
    dirt_enabled: bool
    dirt_counts: dict[str, int]  # ledger lines per dirt class
    elapsed_s: float = 0.0
    stale_files_removed: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _separate(landing_uri: str, truth_uri: str) -> None:
    lfs, lpath = storage.filesystem(landing_uri)
    tfs, tpath = storage.filesystem(truth_uri)
    if lfs.protocol != tfs.protocol:
        return
    a, b = lpath.rstrip("/") + "/", tpath.rstrip("/") + "/"
    if a.startswith(b) or b.startswith(a):
        raise ValueError(f"the truth store ({truth_uri}) and the landing zone ({landing_uri}) must not nest")


def simulate(config: SimulationConfig, landing_uri: str, truth_uri: str) -> SimulationSummary:
    """Generate the organisation and its activity; write events to ``landing_uri`` and truth to ``truth_uri``."""
    _separate(landing_uri, truth_uri)
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - since, 3)
        return now

    if config.tracker is None:
        org = build_org(config)
        drift = scenarios.resolve(config, org)
        tasks = build_tasks(config, org, drift)
    else:  # the tracker preset has no scenarios (SimulationConfig refuses them)
        org = tracker_sim.build_org(config)
        drift = scenarios.Drift()
        tasks = tracker_sim.build_tasks(config, org)
    t = lap("org_and_tasks", t0)
    if config.tracker is None:
        asg = run_assignments(config, org, tasks, drift)
    else:
        asg = tracker_sim.run_assignments(config, org, tasks)
    t = lap("assignments", t)
    ev = build_events(config, org, tasks, asg, drift)
    t = lap("events", t)
    landed = write_landing(config, org, tasks, ev, landing_uri)
    t = lap("landing", t)
    _write_truth(config, org, tasks, asg, ev, landed, landing_uri, truth_uri)
    scenarios.write_truth(config, org, drift, truth_uri)
    lap("truth", t)

    counts = np.bincount(ev.cols["etype"], minlength=len(EVENT_TYPES))
    summary = SimulationSummary(
        preset=config.preset,
        seed=config.seed,
        window_start=iso_z(config.start),
        window_end=iso_z(config.end),
        landing_uri=landing_uri,
        truth_uri=truth_uri,
        users=org.n_users,
        teams=org.n_teams,
        projects=len(org.project_ids),
        tasks=len(tasks),
        assigned_tasks=int(np.sum(asg.n_assignments > 0)),
        candidate_rows=len(asg.candidates["task"]),
        events_generated=len(ev),
        events_written=landed.lines_written,
        files=len(landed.files),
        event_type_counts={name: int(counts[i]) for i, name in enumerate(EVENT_TYPES)},
        dirt_enabled=config.dirt.enabled,
        dirt_counts=landed.dirt_counts,
        stale_files_removed=len(landed.removed_stale),
    )
    # Without the wall-clock fields, so the truth store is as reproducible as the landing zone.
    recorded = {k: v for k, v in summary.to_dict().items() if k not in ("elapsed_s", "timings_s")}
    storage.write_json_atomic(join_uri(truth_uri, "summary.json"), {**recorded, "config": config.to_dict()})
    summary.elapsed_s = round(time.perf_counter() - t0, 3)
    summary.timings_s = timings
    return summary


def _ts(start: datetime, hours: np.ndarray) -> pa.Array:
    """Hours since the window start -> timestamp[us, UTC]; nan/inf become null."""
    hours = np.asarray(hours, dtype=np.float64)
    ok = np.isfinite(hours)
    start_us = int(start.timestamp()) * 1_000_000
    us = start_us + np.round(np.where(ok, hours, 0.0) * 3.6e9).astype(np.int64)
    return pa.array(us, type=pa.int64(), mask=~ok).cast(TS)


def _strings(values: list[str], idx: np.ndarray) -> pa.Array:
    """values[idx] as a string array (null where idx < 0), without a Python loop over idx."""
    dictionary = pa.array(values, type=pa.string())
    idx = np.asarray(idx, dtype=np.int64)
    indices = pa.array(np.where(idx >= 0, idx, 0), type=pa.int64(), mask=idx < 0)
    return dictionary.take(indices)


def _skills(matrix: np.ndarray, absent: bool = False) -> pa.Array:
    """Skill vectors as list<float32>; all null when ``absent`` (the tracker preset has no skills)."""
    if absent:
        return pa.nulls(len(matrix), type=pa.list_(pa.float32()))
    flat = pa.array(np.asarray(matrix, dtype=np.float32).ravel(), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, len(SKILL_NAMES)).cast(pa.list_(pa.float32()))


def _floats(values: np.ndarray, typ: pa.DataType, nan_is_null: bool) -> pa.Array:
    values = np.asarray(values)
    return pa.array(values, type=typ, mask=np.isnan(values) if nan_is_null else None)


def _write_parquet(uri: str, table: pa.Table) -> None:
    with storage.atomic_open(uri, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")


def _write_truth(
    cfg: SimulationConfig,
    org: Org,
    tasks: Tasks,
    asg: Assignments,
    ev: EventTable,
    landed: LandingResult,
    landing_uri: str,
    truth_uri: str,
) -> None:
    start, hours = cfg.start, float(cfg.hours)
    tracker = cfg.tracker is not None
    # The tracker preset: seniority and capacity exist for the users whose user_joined carries them only.
    no_profile = None if org.traits is None else ~org.traits.profile

    # Candidates: one row per (assignment decision, eligible candidate).
    c = asg.candidates
    seg = asg.segments
    chosen = c["chosen"].astype(bool)
    # The realised duration of the chosen candidate, when that assignment ran to completion.
    key = c["task"] * 1024 + c["seq"]
    seg_key = seg["task"] * 1024 + seg["seq"]
    seg_pos = {int(k): i for i, k in enumerate(seg_key.tolist())}
    actual = np.full(len(key), np.nan)
    for row in np.flatnonzero(chosen).tolist():
        s = seg_pos[int(key[row])]
        if seg["final"][s]:
            actual[row] = seg["actual"][s]
    cand_table = pa.table(
        {
            "task_id": _strings(tasks.task_ids, c["task"]),
            "user_id": _strings(org.user_ids, c["user"]),
            # The task's team: candidates are its members at decision time (a reorg moves users between teams).
            "team_id": _strings(org.team_ids, tasks.team[c["task"]] if len(c["task"]) else c["task"]),
            "assignment_seq": pa.array(c["seq"], type=pa.int16()),
            "assigned_at": _ts(start, c["time"]),
            "skill_match": _floats(c["match"], pa.float64(), tracker),
            "open_hours": _floats(c["open_hours"], pa.float64(), tracker),
            "seniority": pa.array(org.seniority[c["user"]], type=pa.int8(), mask=_at(no_profile, c["user"])),
            "weekly_capacity_hours": pa.array(
                org.capacity[c["user"]], type=pa.float32(), mask=_at(no_profile, c["user"])
            ),
            "median_duration_hours": pa.array(c["median"], type=pa.float64()),
            "expected_duration_hours": pa.array(c["expected"], type=pa.float64()),
            "p_on_time": _floats(c["p_on_time"], pa.float64(), tracker),
            "utility": pa.array(c["utility"], type=pa.float64()),
            "manager_score": pa.array(c["score"], type=pa.float64()),
            "utility_rank": pa.array(c["rank"], type=pa.int32()),
            "chosen": pa.array(chosen, type=pa.bool_()),
            "actual_duration_hours": pa.array(actual, type=pa.float64(), mask=np.isnan(actual)),
            # The tracker preset: the signals its utility is made of.
            **{name: pa.array(c[name], type=pa.float64()) for name in tracker_sim.TRUTH_EXTRA if name in c},
        }
    )
    cand_dir = join_uri(truth_uri, "candidates")
    storage.remove(cand_dir, recursive=True)
    n_parts = max(1, -(-cand_table.num_rows // CANDIDATE_ROWS_PER_FILE))
    for part in range(n_parts):
        chunk = cand_table.slice(part * CANDIDATE_ROWS_PER_FILE, CANDIDATE_ROWS_PER_FILE)
        _write_parquet(join_uri(cand_dir, f"part-{part:05d}.parquet"), chunk)

    # Tasks: what was asked and what really happened (completion may fall after the window).
    n = len(tasks)
    first = seg["seq"] == 0
    first_at = np.full(n, np.nan)
    first_at[seg["task"][first]] = seg["start"][first]
    exp_first = np.full(n, np.nan)
    pon_first = np.full(n, np.nan)
    sel = chosen & (c["seq"] == 0)
    exp_first[c["task"][sel]] = c["expected"][sel]
    pon_first[c["task"][sel]] = c["p_on_time"][sel]
    completed = asg.completed_h
    done = np.isfinite(completed)
    on_time = np.where(done, completed <= tasks.due_h, False)
    tasks_table = pa.table(
        {
            "task_id": pa.array(tasks.task_ids, type=pa.string()),
            "project_id": _strings(org.project_ids, tasks.project),
            "team_id": _strings(org.team_ids, tasks.team),
            "created_at": _ts(start, tasks.created_h),
            "priority": pa.array(tasks.priority, type=pa.int8()),
            "estimated_hours": _floats(_reported_est(tasks), pa.float32(), tracker),
            "due_at": _ts(start, tasks.due_h),
            "required_skills": _skills(tasks.skills, absent=tracker),
            "main_skill": _strings(list(SKILL_NAMES), tasks.main_skill),
            "parent_task_id": _strings(tasks.task_ids, tasks.parent),
            "depends_on_task_id": _strings(tasks.task_ids, tasks.depends),
            "assigned_at": _ts(start, first_at),
            "first_assignee_id": _strings(org.user_ids, asg.first_user),
            "final_assignee_id": _strings(org.user_ids, asg.final_user),
            "n_assignments": pa.array(asg.n_assignments, type=pa.int16()),
            "expected_duration_hours": pa.array(exp_first, mask=np.isnan(exp_first)),
            "p_on_time": pa.array(pon_first, mask=np.isnan(pon_first)),
            "completed_at": _ts(start, completed),
            "actual_duration_hours": pa.array(completed - first_at, mask=~(done & np.isfinite(first_at))),
            "on_time": pa.array(on_time, type=pa.bool_(), mask=~done | np.isnan(tasks.due_h)),
            "completed_in_window": pa.array(done & (completed < hours), type=pa.bool_()),
            "reopened": pa.array(ev.reopened, type=pa.bool_()),
            **_tracker_task_columns(org, tasks),
            **_true_estimate_column(tasks),
        }
    )
    _write_parquet(join_uri(truth_uri, "tasks.parquet"), tasks_table)

    users_table = pa.table(
        {
            "user_id": pa.array(org.user_ids, type=pa.string()),
            "team_id": _strings(org.team_ids, org.user_team),
            "is_manager": pa.array(org.is_manager, type=pa.bool_()),
            "seniority": pa.array(org.seniority, type=pa.int8(), mask=no_profile),
            "weekly_capacity_hours": pa.array(org.capacity, type=pa.float32(), mask=no_profile),
            "timezone": _strings([z[0] for z in TIMEZONES], org.user_tz),
            "skills": _skills(org.skills, absent=tracker),
            "joined_at": _ts(start, org.join_h),
            "left_at": _ts(start, org.leave_h),
            **_tracker_user_columns(org),
        }
    )
    _write_parquet(join_uri(truth_uri, "users.parquet"), users_table)
    projects_table = pa.table(
        {
            "project_id": pa.array(org.project_ids, type=pa.string()),
            "team_id": _strings(org.team_ids, org.project_team),
            "priority": pa.array(org.project_priority, type=pa.int8()),
            "created_at": _ts(start, org.project_created_h),
            "deadline": _ts(start, org.project_deadline_h),
            "required_skills": _skills(org.project_skills, absent=tracker),
            **_tracker_project_columns(org),
        }
    )
    _write_parquet(join_uri(truth_uri, "projects.parquet"), projects_table)
    teams_table = pa.table(
        {
            "team_id": pa.array(org.team_ids, type=pa.string()),
            "manager_id": _strings(org.user_ids, org.manager),
            "timezone": _strings([z[0] for z in TIMEZONES], org.team_tz),
        }
    )
    _write_parquet(join_uri(truth_uri, "teams.parquet"), teams_table)

    if cfg.tracker is None:
        model_doc: dict[str, Any] = {
            "coefficients": cfg.model.to_dict(),
            "formula": _formula_doc(),
            "skill_names": list(SKILL_NAMES),
        }
    else:
        model_doc = {"preset": "tracker", "coefficients": cfg.tracker.to_dict(), "formula": _formula_doc(tracker=True)}
    storage.write_json_atomic(join_uri(truth_uri, "model.json"), model_doc)
    ledger = {
        "landing_uri": landing_uri,
        "seed": cfg.seed,
        "window_start": iso_z(cfg.start),
        "window_end": iso_z(cfg.start + timedelta(hours=cfg.hours)),
        "rates": cfg.dirt.to_dict(),
        "dispositions": DIRT_DISPOSITIONS,
        "counts": landed.dirt_counts,
        "lines_written": landed.lines_written,
        "files": len(landed.files),
        "truncated_files": landed.truncated_files,
        "lines": landed.ledger_lines,
    }
    storage.write_bytes_atomic(join_uri(truth_uri, "dirt_ledger.json"), json.dumps(ledger, sort_keys=True).encode())
    lines = landed.ledger_lines
    ledger_table = pa.table(
        {
            "file": pa.array([e["file"] for e in lines], type=pa.string()),
            "line": pa.array([e["line"] for e in lines], type=pa.int32()),
            "class": pa.array([e["class"] for e in lines], type=pa.string()),
            "event_id": pa.array([e.get("event_id") for e in lines], type=pa.string()),
            "event_type": pa.array([e.get("event_type") for e in lines], type=pa.string()),
            "disposition": pa.array([DIRT_DISPOSITIONS[e["class"]] for e in lines], type=pa.string()),
        }
    )
    _write_parquet(join_uri(truth_uri, "dirt_ledger.parquet"), ledger_table)
    assert set(landed.dirt_counts) == set(DIRT_CLASSES)


TRACKER_HEADING = "\nTracker preset\n"


def _formula_doc(tracker: bool = False) -> str:
    # The package docstring holds the formulas; the package is always imported before its modules.
    doc = sys.modules[__package__ or "maestro_ml.simulation"].__doc__ or ""
    cut = doc.find(TRACKER_HEADING)
    if tracker:
        return doc[cut + 1 :] if cut >= 0 else doc
    doc = doc[:cut] if cut >= 0 else doc
    start = doc.find("Behaviour")
    return doc[start:] if start >= 0 else doc


def _reported_est(tasks: Tasks) -> np.ndarray:
    """The estimate the events carry (the estimate_bias scenario shrinks it from its onset)."""
    return tasks.est if tasks.reported_est is None else tasks.reported_est


def _true_estimate_column(tasks: Tasks) -> dict[str, pa.Array]:
    """estimate_bias only: the true estimate, which the durations follow (``estimated_hours`` is the reported one)."""
    if tasks.reported_est is None:
        return {}
    return {"true_estimated_hours": pa.array(tasks.est, type=pa.float32())}


def _at(mask: np.ndarray | None, idx: np.ndarray) -> np.ndarray | None:
    return None if mask is None else mask[idx]


def _tracker_user_columns(org: Org) -> dict[str, pa.Array]:
    """The tracker preset's hidden user traits (nothing for the other presets)."""
    tr = org.traits
    if tr is None:
        return {}
    specialty = np.argmax(tr.affinity, axis=1)
    return {
        "activity": pa.array(tr.activity, type=pa.float64()),
        "specialty_project_id": _strings(org.project_ids, specialty),
        "topic": pa.array([" ".join(tr.topic_words[t]) for t in tr.topic.tolist()], type=pa.string()),
        "self_assign_probability": pa.array(tr.self_assign, type=pa.float64()),
        "reporter_log_factor": pa.array(tr.reporter_log_factor, type=pa.float64()),
        "profile_in_events": pa.array(tr.profile, type=pa.bool_()),
    }


def _tracker_project_columns(org: Org) -> dict[str, pa.Array]:
    tr = org.traits
    if tr is None:
        return {}
    return {
        "popularity": pa.array(tr.component_popularity, type=pa.float64()),
        "log_median_hours": pa.array(tr.component_log_median, type=pa.float64()),
        "words": pa.array([" ".join(w) for w in tr.component_words], type=pa.string()),
    }


def _tracker_task_columns(org: Org, tasks: Tasks) -> dict[str, pa.Array]:
    tr = org.traits
    if tr is None or tasks.reporter is None or tasks.topic is None or tasks.log_size is None:
        return {}
    return {
        "reporter_id": _strings(org.user_ids, tasks.reporter),
        "topic": pa.array([" ".join(tr.topic_words[t]) for t in tasks.topic.tolist()], type=pa.string()),
        "log_size": pa.array(tasks.log_size, type=pa.float64()),
    }
