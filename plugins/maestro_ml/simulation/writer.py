"""From the event table to the landing zone: JSON lines, dirt, hourly gzip files and the dirt ledger.

Layout: ``<landing>/events/dt=YYYY-MM-DD/hour=HH/part-NNNN.jsonl.gz``, where the folder is the
hour the line *landed* in. Every hour of the window gets at least ``part-0000`` (possibly with
no lines), files are split at ``lines_per_file`` lines and each file is a concatenation of gzip
members of ``lines_per_member`` lines. Files are written atomically through maestro_ml.storage.
"""

from __future__ import annotations

import gzip
import json
import math
import posixpath
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from maestro_ml import storage
from maestro_ml.contracts.events import EVENT_TYPES, TASK_STATUSES, required_fields, schema_for
from maestro_ml.settings import join_uri
from maestro_ml.simulation.config import DIRT_CLASSES, EXCLUSIVE_LINE_CLASSES, SimulationConfig
from maestro_ml.simulation.lifecycle import EventTable
from maestro_ml.simulation.org import TIMEZONES, Org, stream
from maestro_ml.simulation.tasks import Tasks

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
# Line class codes: the exclusive per-event classes, then the extra unknown-type lines.
LINE_CLASSES: tuple[str, ...] = (*EXCLUSIVE_LINE_CLASSES, "unknown_event_type")
CODE = {name: i for i, name in enumerate(LINE_CLASSES)}
KIND_ORIGINAL, KIND_DUPLICATE, KIND_RESENT, KIND_UNKNOWN = 0, 1, 2, 3
UNKNOWN_TYPES = ("task_archived", "sprint_started", "user_renamed", "label_added", "task_moved", "TaskCreated")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_ENCODER = msgspec.json.Encoder()


def format_uuids(raw: np.ndarray) -> list[str]:
    """(n, 16) uint8 random bytes -> version-4-shaped UUID strings, vectorised."""
    b = raw.copy()
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    h = np.empty((len(b), 32), dtype=np.uint8)
    h[:, 0::2] = _HEX[b >> 4]
    h[:, 1::2] = _HEX[b & 0x0F]
    out = np.full((len(b), 36), ord("-"), dtype=np.uint8)
    out[:, 0:8], out[:, 9:13], out[:, 14:18] = h[:, 0:8], h[:, 8:12], h[:, 12:16]
    out[:, 19:23], out[:, 24:36] = h[:, 16:20], h[:, 20:32]
    return [s.decode() for s in out.view("S36").ravel().tolist()]


def format_us(us: np.ndarray) -> list[str]:
    """Epoch microseconds -> ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if len(us) == 0:
        return []
    text = np.datetime_as_string(np.asarray(us, dtype=np.int64).astype("datetime64[us]"), unit="us")
    return [s + "Z" for s in text.tolist()]


def hour_folder(start_us: int, hour: int) -> str:
    text = np.datetime_as_string(np.datetime64(start_us + hour * HOUR_US, "us"), unit="h")
    date, hh = str(text).split("T")
    return f"events/dt={date}/hour={hh}"


@dataclass
class LandingResult:
    files: list[str]  # URIs written
    lines_written: int
    line_type_counts: dict[str, int]  # per event_type of the lines as written (parseable or not)
    dirt_counts: dict[str, int]
    ledger_lines: list[dict[str, Any]]
    truncated_files: list[dict[str, Any]]
    removed_stale: list[str] = field(default_factory=list)


@dataclass
class _Plan:
    src: np.ndarray
    kind: np.ndarray
    cls: np.ndarray
    land: np.ndarray
    arrival: np.ndarray
    mut: np.ndarray
    file_of: np.ndarray
    line_no: np.ndarray
    lost: np.ndarray
    files: list[tuple[str, int, int, bool, float]]  # (relative path, first line, end line, truncated, cut fraction)
    unknown_ids: list[str]
    unknown_type: np.ndarray
    unknown_actor: np.ndarray
    unknown_task: np.ndarray


class _Serializer:
    """Builds the JSON object of any true event from the columnar table and the entity tables."""

    def __init__(self, cfg: SimulationConfig, org: Org, tasks: Tasks, ev: EventTable, event_ids: np.ndarray):
        self.ev = ev
        self.event_ids = event_ids
        self.user_ids = org.user_ids
        team_ids = org.team_ids
        # The tracker preset writes what a bug tracker export has: keys it lacks are left out, not nulled.
        self.tracker = cfg.tracker is not None
        self.user_payload = [
            {
                "user_id": org.user_ids[u],
                "team_id": team_ids[int(org.user_team[u])],
                "email": org.emails[u],
                "name": org.names[u],
                "seniority": int(org.seniority[u]),
                "weekly_capacity_hours": float(org.capacity[u]),
                "timezone": TIMEZONES[int(org.user_tz[u])][0],
                "skills": [float(x) for x in org.skills[u]],
            }
            for u in range(org.n_users)
        ]
        if self.tracker:
            for u, payload in enumerate(self.user_payload):
                del payload["skills"]
                if org.traits is None or not org.traits.profile[u]:
                    del payload["seniority"], payload["weekly_capacity_hours"]
        self.move_payload = [
            {"team_id": team_ids[int(t)], "skills": [float(x) for x in skills]}
            for t, skills in zip(ev.move_team.tolist(), ev.move_skills, strict=True)
        ]
        start_us = int(cfg.start.timestamp()) * 1_000_000
        self.start_us = start_us
        deadline_h = np.nan_to_num(org.project_deadline_h, nan=0.0) if self.tracker else org.project_deadline_h
        deadlines = format_us(start_us + np.round(deadline_h * 3.6e9).astype(np.int64))
        self.project_payload = [
            {
                "project_id": org.project_ids[p],
                "team_id": team_ids[int(org.project_team[p])],
                "name": org.project_names[p],
                "priority": int(org.project_priority[p]),
                "deadline": deadlines[p],
                "required_skills": [float(x) for x in org.project_skills[p]],
            }
            for p in range(len(org.project_ids))
        ]
        if self.tracker:
            for payload in self.project_payload:
                del payload["deadline"], payload["required_skills"]
        self.task_ids = tasks.task_ids
        self.task_project = [org.project_ids[p] for p in tasks.project.tolist()]
        self.task_title = tasks.titles
        self.task_priority = tasks.priority.tolist()
        # What the events say: the reported estimate where a scenario biases it, else the true one.
        self.task_est = (tasks.est if tasks.reported_est is None else tasks.reported_est).tolist()
        self.task_due_h = tasks.due_h.tolist()
        due_h = np.nan_to_num(tasks.due_h, nan=0.0) if self.tracker else tasks.due_h
        self.task_due = format_us(start_us + np.round(due_h * 3.6e9).astype(np.int64))
        self.task_skills = tasks.skills.tolist()
        self.task_parent = tasks.parent.tolist()
        self.task_depends = tasks.depends.tolist()
        self.title_pii = tasks.title_pii

    def build(self, idx: np.ndarray) -> list[dict[str, Any]]:
        c = self.ev.cols
        etype = c["etype"][idx].tolist()
        occ = format_us(c["us"][idx])
        eids = format_uuids(self.event_ids[idx])
        task, user, actor = c["task"][idx].tolist(), c["user"][idx].tolist(), c["actor"][idx].tolist()
        x1, x2, f = c["x1"][idx].tolist(), c["x2"][idx].tolist(), c["f"][idx].tolist()
        uid, tid = self.user_ids, self.task_ids
        out = []
        tracker = self.tracker
        for i in range(len(etype)):
            name = EVENT_TYPES[etype[i]]
            a = actor[i]
            d: dict[str, Any] = {
                "event_id": eids[i],
                "event_type": name,
                "occurred_at": occ[i],
                "actor_id": uid[a] if a >= 0 else None,
            }
            if tracker and a < 0:
                del d["actor_id"]
            t = task[i]
            if name == "time_logged":
                d.update(task_id=tid[t], user_id=uid[user[i]], hours=f[i])
            elif name == "task_status_changed":
                d.update(task_id=tid[t], from_status=TASK_STATUSES[x1[i]], to_status=TASK_STATUSES[x2[i]])
            elif name == "comment_added":
                d.update(comment_id=self.ev.comment_ids[x1[i]], task_id=tid[t], text=self.ev.comment_texts[x1[i]])
            elif name == "task_assigned":
                prev = x1[i]
                d.update(
                    task_id=tid[t], assignee_id=uid[user[i]], previous_assignee_id=uid[prev] if prev >= 0 else None
                )
            elif name == "task_completed":
                d["task_id"] = tid[t]
                if user[i] >= 0 or not tracker:
                    d["assignee_id"] = uid[user[i]]
            elif name == "task_created":
                p, dep = self.task_parent[t], self.task_depends[t]
                d.update(
                    task_id=tid[t],
                    project_id=self.task_project[t],
                    title=self.task_title[t],
                    priority=self.task_priority[t],
                    estimated_hours=self.task_est[t],
                    due_at=self.task_due[t],
                    required_skills=self.task_skills[t],
                    parent_task_id=tid[p] if p >= 0 else None,
                    depends_on_task_id=tid[dep] if dep >= 0 else None,
                )
                if tracker:
                    del d["required_skills"]
                    if math.isnan(self.task_est[t]):
                        del d["estimated_hours"]
                    if math.isnan(self.task_due_h[t]):
                        del d["due_at"]
            elif name == "task_reopened":
                d["task_id"] = tid[t]
            elif name == "user_joined":
                d.update(self.user_payload[user[i]])
                if x1[i] >= 0:  # a reorg move: the same user joins another team with shifted skills
                    d.update(self.move_payload[x1[i]])
            elif name == "user_left":
                d["user_id"] = uid[user[i]]
            elif name == "project_created":
                d.update(self.project_payload[x1[i]])
            out.append(d)
        return out

    def pii_of(self, src: int) -> list[str]:
        c = self.ev.cols
        name = EVENT_TYPES[int(c["etype"][src])]
        if name == "comment_added":
            return self.ev.comment_pii.get(int(c["x1"][src]), [])
        if name == "task_created":
            return self.title_pii.get(int(c["task"][src]), [])
        return []


def _plan(cfg: SimulationConfig, ev: EventTable, org: Org, tasks: Tasks) -> _Plan:
    rng = stream(cfg.seed, "dirt", cfg)
    rates = cfg.dirt
    hours = cfg.hours
    start_us = int(cfg.start.timestamp()) * 1_000_000
    us = ev.cols["us"]
    n = len(us)
    occ_hour = (us - start_us) // HOUR_US

    thresholds = np.cumsum([getattr(rates, name) for name in EXCLUSIVE_LINE_CLASSES])
    u = rng.random(n)
    cls = np.searchsorted(thresholds, u, side="right").astype(np.int64)
    cls[cls >= len(EXCLUSIVE_LINE_CLASSES)] = -1
    late = cls == CODE["late_event"]
    cls[late & (occ_hour > hours - 2)] = -1  # nowhere later to land
    late = cls == CODE["late_event"]

    land = occ_hour.copy()
    room = np.minimum(47, hours - 1 - occ_hour)
    delay = 1 + np.floor(rng.random(n) * np.maximum(room, 1)).astype(np.int64)
    land[late] += delay[late]
    arrival = us.copy()
    in_hour = np.floor(rng.random(n) * HOUR_US).astype(np.int64)
    arrival[late] = start_us + land[late] * HOUR_US + in_hour[late]

    def copies(code: str, max_delay: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.flatnonzero(cls == CODE[code])
        room = np.minimum(max_delay, hours - 1 - land[src])
        c_land = land[src] + np.floor(rng.random(len(src)) * (room + 1)).astype(np.int64)
        hour_start = start_us + c_land * HOUR_US
        same = c_land == land[src]
        lo = np.where(same, arrival[src], hour_start)
        c_arr = lo + np.floor(rng.random(len(src)) * (hour_start + HOUR_US - lo)).astype(np.int64)
        return src, c_land, c_arr

    dup_src, dup_land, dup_arr = copies("duplicate_line", 0)
    dup_arr = np.minimum(dup_arr, arrival[dup_src] + 300_000_000)  # within five minutes of the original
    res_src, res_land, res_arr = copies("resent_event", 12)

    n_unknown = int(rng.binomial(n, rates.unknown_event_type)) if rates.unknown_event_type > 0 else 0
    unk_land = rng.integers(0, hours, size=n_unknown)
    unk_arr = start_us + unk_land * HOUR_US + np.floor(rng.random(n_unknown) * HOUR_US).astype(np.int64)
    unknown_type = rng.integers(0, len(UNKNOWN_TYPES), size=n_unknown)
    unknown_actor = rng.integers(0, org.n_users, size=n_unknown)
    unknown_task = rng.integers(0, max(len(tasks), 1), size=n_unknown) if len(tasks) else np.full(n_unknown, -1)
    unknown_ids = format_uuids(rng.integers(0, 256, size=(n_unknown, 16), dtype=np.uint8))

    src = np.concatenate([np.arange(n), dup_src, res_src, np.arange(n_unknown)])
    kind = np.concatenate(
        [
            np.full(n, KIND_ORIGINAL),
            np.full(len(dup_src), KIND_DUPLICATE),
            np.full(len(res_src), KIND_RESENT),
            np.full(n_unknown, KIND_UNKNOWN),
        ]
    ).astype(np.int8)
    line_cls = np.concatenate([cls, cls[dup_src], cls[res_src], np.full(n_unknown, CODE["unknown_event_type"])]).astype(
        np.int8
    )
    line_land = np.concatenate([land, dup_land, res_land, unk_land]).astype(np.int64)
    line_arr = np.concatenate([arrival, dup_arr, res_arr, unk_arr]).astype(np.int64)
    order = np.lexsort((kind, src, line_arr, line_land))
    src, kind, line_cls, line_land, line_arr = (
        src[order],
        kind[order],
        line_cls[order],
        line_land[order],
        line_arr[order],
    )
    total = len(src)
    mut = rng.integers(0, 1 << 31, size=total, dtype=np.int64)

    # Files: split each landing hour into files, each file into gzip members; maybe cut the last member.
    bounds = np.searchsorted(line_land, np.arange(hours + 1), side="left")
    file_of = np.empty(total, dtype=np.int64)
    line_no = np.empty(total, dtype=np.int64)
    lost = np.zeros(total, dtype=bool)
    files: list[tuple[str, int, int, bool, float]] = []
    lpm = cfg.lines_per_member
    for h in range(hours):
        lo, hi = int(bounds[h]), int(bounds[h + 1])
        n_files = max(1, -(-(hi - lo) // cfg.lines_per_file))
        edges = np.linspace(lo, hi, n_files + 1).round().astype(np.int64)
        folder = hour_folder(start_us, h)
        for k in range(n_files):
            a, b = int(edges[k]), int(edges[k + 1])
            file_of[a:b] = len(files)
            line_no[a:b] = np.arange(1, b - a + 1)
            members = -(-(b - a) // lpm)
            draw, frac = rng.random(), float(rng.uniform(0.3, 0.85))
            truncated = members >= 2 and draw < cfg.dirt.truncated_gzip
            if truncated:
                lost[a + (members - 1) * lpm : b] = True
            files.append((f"{folder}/part-{k:04d}.jsonl.gz", a, b, truncated, frac))
    return _Plan(
        src=src,
        kind=kind,
        cls=line_cls,
        land=line_land,
        arrival=line_arr,
        mut=mut,
        file_of=file_of,
        line_no=line_no,
        lost=lost,
        files=files,
        unknown_ids=unknown_ids,
        unknown_type=unknown_type,
        unknown_actor=unknown_actor,
        unknown_task=unknown_task,
    )


_WRONG_WORDS = {
    "seniority": "senior",
    "priority": "high",
    "hours": "three",
    "estimated_hours": "a day or two",
    "weekly_capacity_hours": "full-time",
}


def _wrong_value(event_type: str, name: str, mut: int) -> Any:
    kind = schema_for(event_type).field(name).type
    v = (mut >> 8) % 3
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _WRONG_WORDS.get(name, "three") if v else ["n/a"]
    if pa.types.is_timestamp(kind):
        return ("next tuesday", True, {"ts": "2026-11-02"})[v]
    if pa.types.is_list(kind):
        return ("backend,frontend", {"backend": 0.5}, ["high"] * 12)[v]
    return (12345, True, {"id": 7})[v]


def _corrupt(line: bytes, mut: int) -> bytes:
    v = mut % 4
    if v == 1 and b'":' in line:
        bad = line.replace(b'":', b'"=', 1)
    elif v == 2:
        bad = line[:-1] + b",}"
    elif v == 3:
        bad = b"'" + line[2:]
    else:
        bad = line[: 1 + (mut >> 3) % max(len(line) - 2, 1)]
    try:
        json.loads(bad)
    except ValueError:
        return bad
    return line[: len(line) // 2]


def _mutate(d: dict[str, Any], cls: str, mut: int, occurred_us: int) -> tuple[dict[str, Any], str | None]:
    """Apply a dict-level dirt class; returns the dict and a detail string for the ledger."""
    event_type = d["event_type"]
    if cls == "missing_required":  # among the required fields the event has (a tracker export lacks some)
        fields = sorted(f for f in required_fields(event_type) if d.get(f) is not None)
        name = fields[mut % len(fields)]
        if (mut >> 8) % 3 == 0:
            d[name] = None
            return d, f"{name}=null"
        del d[name]
        return d, name
    if cls == "wrong_type":
        candidates = (required_fields(event_type) | {"occurred_at"}) - {"event_type"}
        fields = sorted(f for f in candidates if d.get(f) is not None)
        name = fields[mut % len(fields)]
        d[name] = _wrong_value(event_type, name, mut)
        return d, name
    if cls == "future_timestamp":
        offset = 3 * DAY_US + (mut % (362 * 86_400)) * 1_000_000
        d["occurred_at"] = format_us(np.array([occurred_us + offset]))[0]
        return d, d["occurred_at"]
    return d, None


def _gzip_members(lines: list[bytes], lpm: int, level: int) -> list[bytes]:
    if not lines:
        return [gzip.compress(b"", compresslevel=level, mtime=0)]
    return [
        gzip.compress(b"".join(lines[i : i + lpm]), compresslevel=level, mtime=0) for i in range(0, len(lines), lpm)
    ]


def _compress_and_write(uri: str, lines: list[bytes], lpm: int, level: int, cut: float | None) -> int:
    members = _gzip_members(lines, lpm, level)
    cut_at = -1
    if cut is not None:
        last = members[-1]
        keep = min(max(1, int(len(last) * cut)), len(last) - 1)
        cut_at = sum(len(m) for m in members[:-1]) + keep
        members[-1] = last[:keep]
    storage.write_bytes_atomic(uri, b"".join(members))
    return cut_at


def write_landing(cfg: SimulationConfig, org: Org, tasks: Tasks, ev: EventTable, landing_uri: str) -> LandingResult:
    plan = _plan(cfg, ev, org, tasks)
    id_rng = stream(cfg.seed, "eventid", cfg)
    event_ids = id_rng.integers(0, 256, size=(len(ev), 16), dtype=np.uint8)
    ser = _Serializer(cfg, org, tasks, ev, event_ids)
    lpm, level = cfg.lines_per_member, cfg.gzip_level

    # Where each original line sits, so copies can point at it; originals lost with a cut member.
    is_orig = plan.kind == KIND_ORIGINAL
    orig_line = np.empty(len(ev), dtype=np.int64)
    orig_line[plan.src[is_orig]] = np.flatnonzero(is_orig)
    lost_src = np.zeros(len(ev), dtype=bool)
    lost_src[plan.src[is_orig & plan.lost]] = True

    ledger: list[dict[str, Any]] = []
    truncated: list[dict[str, Any]] = []
    type_counts: Counter[str] = Counter()
    uris: list[str] = []
    pending: list[tuple[int, Future[int]]] = []

    def note_cut(file_idx: int, cut_at: int) -> None:
        rel, a, b, _, _ = plan.files[file_idx]
        members = -(-(b - a) // lpm)
        intact = (members - 1) * lpm
        truncated.append(
            {
                "file": rel,
                "members": members,
                "intact_lines": intact,
                "lost_lines": [intact + 1, b - a],
                "cut_at_byte": cut_at,
            }
        )

    with ThreadPoolExecutor(max_workers=max(1, cfg.workers)) as pool:
        for file_idx, (rel, a, b, is_cut, frac) in enumerate(plan.files):
            rows = np.arange(a, b)
            lines, entries = _serialize_file(plan, ser, rows, rel, orig_line, lost_src, type_counts)
            ledger.extend(entries)
            uri = join_uri(landing_uri, rel)
            uris.append(uri)
            pending.append(
                (file_idx, pool.submit(_compress_and_write, uri, lines, lpm, level, frac if is_cut else None))
            )
            if len(pending) >= 4 * max(1, cfg.workers):
                done_idx, fut = pending.pop(0)
                cut_at = fut.result()
                if cut_at >= 0:
                    note_cut(done_idx, cut_at)
        for done_idx, fut in pending:
            cut_at = fut.result()
            if cut_at >= 0:
                note_cut(done_idx, cut_at)

    removed = _remove_stale(cfg, landing_uri, uris)
    counts = Counter(e["class"] for e in ledger)
    return LandingResult(
        files=uris,
        lines_written=len(plan.src),
        line_type_counts=dict(sorted(type_counts.items())),
        dirt_counts={name: int(counts.get(name, 0)) for name in DIRT_CLASSES},
        ledger_lines=ledger,
        truncated_files=truncated,
        removed_stale=removed,
    )


def _serialize_file(
    plan: _Plan,
    ser: _Serializer,
    rows: np.ndarray,
    rel: str,
    orig_line: np.ndarray,
    lost_src: np.ndarray,
    type_counts: Counter[str],
) -> tuple[list[bytes], list[dict[str, Any]]]:
    """The lines of one file and the ledger entries of its dirty lines."""
    real = plan.kind[rows] != KIND_UNKNOWN
    dicts_real = iter(ser.build(plan.src[rows[real]]))
    lines: list[bytes] = []
    entries: list[dict[str, Any]] = []
    us_col, etype_col = ser.ev.cols["us"], ser.ev.cols["etype"]
    kinds, srcs, clss = plan.kind[rows].tolist(), plan.src[rows].tolist(), plan.cls[rows].tolist()
    muts, line_nos, lost = plan.mut[rows].tolist(), plan.line_no[rows].tolist(), plan.lost[rows].tolist()
    for j, row in enumerate(rows.tolist()):
        kind, src, cls, mut = kinds[j], srcs[j], clss[j], muts[j]
        here: list[dict[str, Any]] = []
        if kind == KIND_UNKNOWN:
            d: dict[str, Any] = {
                "event_id": plan.unknown_ids[src],
                "event_type": UNKNOWN_TYPES[int(plan.unknown_type[src])],
                "occurred_at": format_us(np.array([plan.arrival[row]]))[0],
                "actor_id": ser.user_ids[int(plan.unknown_actor[src])],
            }
            task = int(plan.unknown_task[src])
            if task >= 0:
                d["task_id"] = ser.task_ids[task]
            eid, event_type = d["event_id"], d["event_type"]
            line = _ENCODER.encode(d)
            here.append({"class": "unknown_event_type"})
        else:
            d = next(dicts_real)
            eid, event_type = d["event_id"], d["event_type"]
            name = LINE_CLASSES[cls] if cls >= 0 else None
            detail: str | None = None
            if kind == KIND_ORIGINAL and name in ("missing_required", "wrong_type", "future_timestamp"):
                d, detail = _mutate(d, name, mut, int(us_col[src]))
            line = _ENCODER.encode(d)
            if kind == KIND_ORIGINAL and name == "malformed_json":
                line = _corrupt(line, mut)
            elif kind == KIND_RESENT:
                line = json.dumps(d, separators=(", ", ": ")).encode()
            if kind in (KIND_DUPLICATE, KIND_RESENT):
                if not lost_src[src]:
                    o = int(orig_line[src])
                    here.append(
                        {
                            "class": "duplicate_line" if kind == KIND_DUPLICATE else "resent_event",
                            "original": {"file": plan.files[int(plan.file_of[o])][0], "line": int(plan.line_no[o])},
                        }
                    )
                elif int(plan.land[row]) > (int(us_col[src]) - ser.start_us) // HOUR_US:
                    # The original sat in a cut gzip member: this copy is the only one, and it is late.
                    here.append({"class": "late_event", "detail": "surviving copy of a lost line"})
            elif name is not None and name not in ("duplicate_line", "resent_event"):  # originals of copies are clean
                here.append({"class": name, **({"detail": detail} if detail is not None else {})})
            if etype_col[src] in _TEXT_TYPES:
                pii = [p for p in ser.pii_of(src) if p.encode() in line]
                if pii:
                    here.append({"class": "pii_in_text", "detail": pii})
        type_counts[event_type] += 1
        lines.append(line + b"\n")
        if lost[j]:
            was = sorted({e["class"] for e in here})
            here = [{"class": "truncated_gzip", **({"was": was} if was else {})}]
        for e in here:
            entries.append({"file": rel, "line": line_nos[j], "event_id": eid, "event_type": event_type, **e})
    return lines, entries


_TEXT_TYPES = frozenset({EVENT_TYPES.index("comment_added"), EVENT_TYPES.index("task_created")})


def _remove_stale(cfg: SimulationConfig, landing_uri: str, written: list[str]) -> list[str]:
    """Delete part files of the window's hour folders that this run did not write (from an earlier, bigger run)."""
    start_us = int(cfg.start.timestamp()) * 1_000_000
    keep = {posixpath.normpath(storage.filesystem(u)[1]) for u in written}
    removed: list[str] = []
    folders = {hour_folder(start_us, h) for h in range(cfg.hours)}
    dates = sorted({f.split("/")[1] for f in folders})
    for date in dates:
        for uri in storage.glob(join_uri(landing_uri, "events", date, "hour=*", "part-*.jsonl.gz")):
            path = posixpath.normpath(storage.filesystem(uri)[1])
            folder = "/".join(path.split("/")[-4:-1])
            if folder in folders and path not in keep:
                storage.remove(uri)
                removed.append(uri)
    return removed
