"""Every true event of the window, as one columnar table (numpy arrays), sorted by time.

Columns: ``etype`` (index into events.EVENT_TYPES), ``t`` (hours since the window start),
``us`` (epoch microseconds), and integer payload slots whose meaning depends on the type:

=====================  =======  ===========  ========  =====================  ============
type                   task     user         actor     x1                     x2 / f
=====================  =======  ===========  ========  =====================  ============
user_joined / left     -        the user     manager   move (reorg) or -1     -
project_created        -        -            manager   project                -
task_created           task     -            manager   -                      -
task_assigned          task     assignee     manager   previous assignee      -
task_status_changed    task     -            assignee  from status            x2: to status
task_completed         task     assignee     assignee  -                      -
task_reopened          task     -            manager   -                      -
comment_added          task     -            author    comment                -
time_logged            task     the user     the user  -                      f: hours
=====================  =======  ===========  ========  =====================  ============

The tracker preset (``cfg.tracker``) differs: ``task_created``'s actor is the reporter, the actor
of ``task_assigned`` is the segment's (``segments["actor"]``: the assignee, the reporter, the
lead, or -1 for none), some ``task_completed`` have no assignee (user -1, closed by the reporter
or the lead), the reporter stands in for the manager elsewhere while they are around, comments
talk about the component and nobody logs time. A -1 actor or user means the key is left out.

The ``reorg`` scenario adds a second ``user_joined`` per mover at the onset: ``x1`` indexes
``EventTable.move_team`` / ``move_skills``, the team and skills that event carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from maestro_ml.contracts.events import EVENT_TYPES, NUM_SKILLS, TASK_STATUSES
from maestro_ml.simulation import text
from maestro_ml.simulation.behaviour import Assignments
from maestro_ml.simulation.config import SimulationConfig
from maestro_ml.simulation.org import Org, stream, unique_ids
from maestro_ml.simulation.scenarios import Drift
from maestro_ml.simulation.tasks import Tasks

ET = {name: i for i, name in enumerate(EVENT_TYPES)}
ST = {name: i for i, name in enumerate(TASK_STATUSES)}
COLUMNS = ("etype", "t", "task", "user", "actor", "x1", "x2", "f")


@dataclass
class EventTable:
    cols: dict[str, np.ndarray]
    comment_ids: list[str]
    comment_texts: list[str]
    comment_pii: dict[int, list[str]]  # comment index -> PII strings inside its text
    reopened: np.ndarray  # per task: reopened after its first completion (truth)
    # reorg: per move (a user_joined's x1), the new team and skills that user_joined carries.
    move_team: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    move_skills: np.ndarray = field(default_factory=lambda: np.zeros((0, NUM_SKILLS)))

    def __len__(self) -> int:
        return len(self.cols["etype"])


class _Buffer:
    def __init__(self) -> None:
        self.parts: list[dict[str, np.ndarray]] = []

    def add(self, etype: str, t: np.ndarray, **slots: Any) -> None:
        t = np.asarray(t, dtype=np.float64)
        n = len(t)
        part = {"etype": np.full(n, ET[etype], dtype=np.int16), "t": t}
        for name in ("task", "user", "actor", "x1", "x2"):
            part[name] = np.broadcast_to(np.asarray(slots.get(name, -1), dtype=np.int64), (n,)).copy()
        part["f"] = np.broadcast_to(np.asarray(slots.get("f", np.nan), dtype=np.float64), (n,)).copy()
        self.parts.append(part)

    def build(self) -> dict[str, np.ndarray]:
        return {c: np.concatenate([p[c] for p in self.parts]) for c in COLUMNS}


def build_events(
    cfg: SimulationConfig, org: Org, tasks: Tasks, asg: Assignments, drift: Drift | None = None
) -> EventTable:
    drift = drift or Drift()
    rng = stream(cfg.seed, "lifecycle", cfg)
    hours = float(cfg.hours)
    buf = _Buffer()
    user_manager = org.manager[org.user_team]
    task_manager = org.manager[tasks.team]
    tracker = cfg.tracker is not None
    reporter = tasks.reporter if tracker and tasks.reporter is not None else task_manager

    def owner(task: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Who speaks for the task at time t: its reporter while they are around (tracker), else the manager."""
        rep = reporter[task]
        return np.where(org.leave_h[rep] > t, rep, task_manager[task])

    # --- organisation bootstrap and changes ---
    n_users = org.n_users
    boot = rng.uniform(0.0, 0.25, size=n_users)
    buf.add("user_joined", np.where(org.join_h >= 0, org.join_h, boot), user=np.arange(n_users), actor=user_manager)
    left = np.flatnonzero(org.leave_h < hours)
    # A mover leaves after the onset (they were active at it), so their new team's manager records it.
    leaver_manager = org.manager[drift.team_after(org)]
    buf.add("user_left", org.leave_h[left], user=left, actor=leaver_manager[left])
    n_proj = len(org.project_ids)
    boot = rng.uniform(0.25, 0.5, size=n_proj)
    buf.add(
        "project_created",
        np.where(org.project_created_h >= 0, org.project_created_h, boot),
        x1=np.arange(n_proj),
        actor=org.manager[org.project_team],
    )
    buf.add("task_created", tasks.created_h, task=np.arange(len(tasks)), actor=reporter)

    # --- assignment segments: assignment, status walk, completion, time logs ---
    seg = asg.segments
    s_task, s_user, s_start, s_dur, s_end, s_final = (
        seg["task"],
        seg["user"],
        seg["start"],
        seg["actual"],
        seg["end"],
        seg["final"],
    )
    n_seg = len(s_task)
    assign_actor = seg["actor"] if "actor" in seg else task_manager[s_task]
    buf.add("task_assigned", s_start, task=s_task, user=s_user, actor=assign_actor, x1=seg["prev"])

    t_ip = s_start + s_dur * rng.uniform(0.02, 0.10, size=n_seg)
    blocked = rng.random(n_seg) < 0.12
    t_b1 = s_start + s_dur * rng.uniform(0.2, 0.4, size=n_seg)
    t_b2 = t_b1 + s_dur * rng.uniform(0.05, 0.2, size=n_seg)
    t_rv = s_start + s_dur * rng.uniform(0.75, 0.92, size=n_seg)
    t_done = s_start + s_dur

    # Where a reassigned task's walk resumes: the status it had when the previous assignee left.
    at_end = np.full(n_seg, ST["in_progress"], dtype=np.int64)
    at_end[t_ip > s_end] = ST["todo"]
    at_end[blocked & (t_b1 <= s_end) & (t_b2 > s_end)] = ST["blocked"]
    at_end[t_rv <= s_end] = ST["in_review"]
    from_status = np.full(n_seg, ST["todo"], dtype=np.int64)
    status_at_end = at_end.copy()
    if np.any(seg["seq"] > 0):
        index = {(int(t), int(q)): i for i, (t, q) in enumerate(zip(s_task, seg["seq"], strict=True))}
        for i in sorted(np.flatnonzero(seg["seq"] > 0).tolist(), key=lambda i: int(seg["seq"][i])):
            before = index[(int(s_task[i]), int(seg["seq"][i]) - 1)]
            from_status[i] = status_at_end[before]
            if t_ip[i] > s_end[i]:  # never started: the status it inherited is still the status
                status_at_end[i] = from_status[i]

    def status(t: np.ndarray, mask: np.ndarray, frm: np.ndarray | int, to: int) -> None:
        keep = mask & (t <= s_end)
        frm_arr = np.broadcast_to(np.asarray(frm), (n_seg,))
        buf.add(
            "task_status_changed",
            t[keep],
            task=s_task[keep],
            actor=s_user[keep],
            x1=frm_arr[keep],
            x2=to,
        )

    status(t_ip, from_status != ST["in_progress"], from_status, ST["in_progress"])
    status(t_b1, blocked, ST["in_progress"], ST["blocked"])
    status(t_b2, blocked, ST["blocked"], ST["in_progress"])
    status(t_rv, np.ones(n_seg, dtype=bool), ST["in_progress"], ST["in_review"])
    status(t_done, s_final, ST["in_review"], ST["done"])
    t_completed = t_done + rng.uniform(0.0, 0.01, size=n_seg)
    done_by, done_actor = s_user, s_user
    if cfg.tracker is not None:  # some are closed without an assignee, by the reporter or the lead
        no_assignee = rng.random(n_seg) < cfg.tracker.completed_without_assignee
        done_by = np.where(no_assignee, -1, s_user)
        done_actor = np.where(no_assignee, owner(s_task, t_completed), s_user)
    buf.add(
        "task_completed", t_completed[s_final], task=s_task[s_final], user=done_by[s_final], actor=done_actor[s_final]
    )

    # Time logs: the effort actually spent (actual duration / elapsed factor, noisy), in a few entries.
    span_end = np.minimum(s_end, t_done)
    frac = np.clip((span_end - t_ip) / np.maximum(t_done - t_ip, 1e-9), 0.0, 1.0)
    total = s_dur / cfg.model.elapsed_factor * rng.lognormal(0.0, 0.25, size=n_seg) * frac
    n_logs = np.where(total >= 0.25, np.clip(np.ceil(total / 1.25), 1, 12), 0).astype(np.int64)
    which = np.repeat(np.arange(n_seg), n_logs)
    when = t_ip[which] + rng.random(len(which)) * np.maximum(span_end[which] - t_ip[which], 0.0)
    w = rng.uniform(0.3, 1.0, size=len(which))
    wsum = np.bincount(which, weights=w, minlength=n_seg)
    log_hours = np.maximum(np.round(total[which] * w / wsum[which] * 4.0) / 4.0, 0.25)
    if not tracker:  # a bug tracker export has no time logs
        buf.add("time_logged", when, task=s_task[which], user=s_user[which], actor=s_user[which], f=log_hours)

    # Reopens: some finished tasks come back, get reworked and are completed again.
    ro = s_final & (rng.random(n_seg) < 0.05)
    t_ro = t_done + rng.uniform(1.0, 36.0, size=n_seg)
    t_back = t_ro + rng.uniform(0.01, 0.2, size=n_seg)
    t_d2 = t_ro + rng.uniform(1.0, 10.0, size=n_seg)
    ro &= org.leave_h[s_user] > t_d2 + 1.0
    reopen_actor = owner(s_task[ro], t_ro[ro]) if tracker else task_manager[s_task[ro]]
    buf.add("task_reopened", t_ro[ro], task=s_task[ro], actor=reopen_actor)
    buf.add("task_status_changed", t_back[ro], task=s_task[ro], actor=s_user[ro], x1=ST["done"], x2=ST["in_progress"])
    buf.add("task_status_changed", t_d2[ro], task=s_task[ro], actor=s_user[ro], x1=ST["in_progress"], x2=ST["done"])
    buf.add("task_completed", t_d2[ro] + 0.002, task=s_task[ro], user=s_user[ro], actor=s_user[ro])
    rework = np.maximum(np.round(rng.uniform(0.5, 3.0, size=n_seg) * 4.0) / 4.0, 0.25)
    if not tracker:
        buf.add("time_logged", t_d2[ro] - 0.05, task=s_task[ro], user=s_user[ro], actor=s_user[ro], f=rework[ro])
    reopened = np.zeros(len(tasks), dtype=bool)
    reopened[s_task[ro & (t_ro < hours)]] = True

    # --- comments ---
    n_tasks = len(tasks)
    c_end = np.full(n_tasks, hours)
    done_at = np.full(n_tasks, np.inf)
    done_at[s_task[s_final]] = np.where(ro, t_d2, t_done)[s_final]
    c_end = np.minimum(c_end, done_at + 2.0)
    n_comments = rng.poisson(cfg.comments_per_task, size=n_tasks)
    on = np.repeat(np.arange(n_tasks), n_comments)
    c_t = tasks.created_h[on] + rng.random(len(on)) * np.maximum(c_end[on] - tasks.created_h[on], 0.0)
    first_start = np.full(n_tasks, np.inf)
    final_start = np.full(n_tasks, np.inf)
    first_mask = seg["seq"] == 0
    first_start[s_task[first_mask]] = s_start[first_mask]
    order = np.lexsort((seg["seq"], s_task))
    final_start[s_task[order]] = s_start[order]  # ascending seq: the last write is the latest assignment
    assignee = np.where(c_t >= final_start[on], asg.final_user[on], asg.first_user[on])
    by_assignee = (c_t >= first_start[on]) & (rng.random(len(on)) < 0.6) & (assignee >= 0)
    fallback = owner(on, c_t) if tracker else task_manager[on]
    author = np.where(by_assignee, assignee, fallback)
    gone = org.leave_h[np.maximum(author, 0)] <= c_t
    author = np.where(gone, task_manager[on], author)
    n_c = len(on)
    template = rng.integers(0, 1 << 16, size=n_c)
    obj = rng.integers(0, 1 << 16, size=n_c)
    if tracker and org.traits is not None:
        words = org.traits.component_words
        proj = tasks.project[on]
        texts = [text.tracker_comment(int(a), words[p], int(o)) for a, p, o in zip(template, proj, obj, strict=True)]
    else:
        skill = tasks.main_skill[on]
        texts = [text.comment_text(int(a), int(s), int(o)) for a, s, o in zip(template, skill, obj, strict=True)]
    comment_pii: dict[int, list[str]] = {}
    with_pii = np.flatnonzero(rng.random(n_c) < cfg.dirt.pii_in_text)
    draws = rng.integers(0, 1 << 20, size=(len(with_pii), 10))
    for i, r in zip(with_pii.tolist(), draws, strict=True):
        sentence, found = text.pii_sentence(r)
        texts[i] = f"{texts[i]} {sentence}"
        comment_pii[i] = found
    comment_ids = unique_ids(rng, n_c, "c_", 6)
    buf.add("comment_added", c_t, task=on, actor=author, x1=np.arange(n_c))

    if len(drift.moved):  # the reorg: each mover joins their new team (same user_id) at the onset
        moves = np.arange(len(drift.moved))
        buf.add("user_joined", np.full(len(moves), drift.onset_h), user=drift.moved,
                actor=org.manager[drift.move_to], x1=moves)  # fmt: skip

    cols = buf.build()
    keep = (cols["t"] >= 0.0) & (cols["t"] < hours)
    cols = {k: v[keep] for k, v in cols.items()}
    start_us = int(cfg.start.timestamp()) * 1_000_000
    cols["us"] = start_us + np.floor(cols["t"] * 3.6e9).astype(np.int64)
    order = np.lexsort((np.arange(len(cols["us"])), cols["etype"], cols["us"]))
    cols = {k: v[order] for k, v in cols.items()}
    return EventTable(
        cols=cols,
        comment_ids=comment_ids,
        comment_texts=texts,
        comment_pii=comment_pii,
        reopened=reopened,
        move_team=drift.move_to,
        move_skills=drift.moved_skills,
    )
