"""The known truth: how long a task takes with a given assignee, and how managers choose.

See the package docstring for the formulas. ``run_assignments`` walks the assignment
decisions in time order because each choice changes the chosen user's open workload,
which feeds into every later decision; the per-decision maths is vectorised over the
candidates.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from maestro_ml.simulation.config import BehaviourModel, SimulationConfig
from maestro_ml.simulation.org import Org, stream
from maestro_ml.simulation.scenarios import Drift
from maestro_ml.simulation.tasks import Tasks


def _phi_table() -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(-9.0, 9.0, 18_001)
    return grid, np.array([0.5 * math.erfc(-x / math.sqrt(2.0)) for x in grid.tolist()])


_PHI_X, _PHI_Y = _phi_table()


def norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF: linear interpolation of an exact table (step 0.001, error < 1e-7); no scipy needed."""
    return np.asarray(np.interp(x, _PHI_X, _PHI_Y))


def skill_match(user_skills: np.ndarray, task_skills: np.ndarray) -> np.ndarray:
    """Cosine similarity of user proficiency vectors (rows) with one task's required-skill vector."""
    un = np.linalg.norm(user_skills, axis=-1)
    tn = np.linalg.norm(task_skills)
    denom = np.where(un * tn > 0, un * tn, 1.0)
    return np.asarray((user_skills @ task_skills) / denom)


def median_duration(
    model: BehaviourModel,
    est: np.ndarray | float,
    priority: np.ndarray | float,
    match: np.ndarray,
    seniority: np.ndarray,
    open_hours: np.ndarray,
    weekly_capacity: np.ndarray,
) -> np.ndarray:
    """Median elapsed hours from assignment to done (the lognormal's exp(mu))."""
    est = np.asarray(est, dtype=np.float64)
    return np.asarray(
        est
        * model.elapsed_factor
        * np.exp(model.beta_skill * (model.skill_pivot - match))
        * np.exp(-model.beta_seniority * (seniority - 3.0))
        * (1.0 + model.beta_load * open_hours / (weekly_capacity / 5.0))
        * np.exp(-model.beta_priority * (np.asarray(priority, dtype=np.float64) - 2.5))
        * (est / 4.0) ** model.beta_size
    )


def p_on_time(model: BehaviourModel, median: np.ndarray, slack_hours: np.ndarray | float) -> np.ndarray:
    """P(actual <= slack) for actual ~ LogNormal(log(median), sigma); 0 when the due time has passed."""
    slack = np.asarray(slack_hours, dtype=np.float64)
    safe = np.where(slack > 0, slack, 1.0)
    p = norm_cdf((np.log(safe) - np.log(median)) / model.sigma)
    return np.asarray(np.where(slack > 0, p, 0.0))


def utility(model: BehaviourModel, p_ontime: np.ndarray, expected: np.ndarray, est: np.ndarray | float) -> np.ndarray:
    return np.asarray(p_ontime - model.utility_lambda * np.log(expected / (np.asarray(est) * model.elapsed_factor)))


@dataclass
class Assignments:
    candidates: dict[str, np.ndarray]  # one row per (decision, eligible candidate)
    segments: dict[str, np.ndarray]  # one row per assignment decision that found a candidate
    completed_h: np.ndarray  # per task: true first completion (may be after the window); nan: never
    first_user: np.ndarray  # per task: first assignee or -1
    final_user: np.ndarray  # per task: assignee at the end (or -1)
    n_assignments: np.ndarray  # per task: number of assignment decisions that found a candidate


def run_assignments(cfg: SimulationConfig, org: Org, tasks: Tasks, drift: Drift | None = None) -> Assignments:
    rng = stream(cfg.seed, "assign", cfg)
    model = cfg.model
    hours = float(cfg.hours)
    n_tasks = len(tasks)
    sigma = model.sigma

    drift = drift or Drift()

    def unit_rows(m: np.ndarray) -> np.ndarray:
        norm = np.linalg.norm(m, axis=1, keepdims=True)
        return np.asarray(m / np.where(norm > 0, norm, 1.0))

    # Membership spells (user, team, from, to, unit skills): one per user, and a reorg splits a
    # mover's at the onset, so from then on they are a candidate of their new team, with their new
    # skills. Spells are per team in user order, so without a scenario nothing changes.
    sp_user, sp_team = np.arange(org.n_users), org.user_team
    sp_from, sp_to, sp_unit = org.join_h, org.leave_h, unit_rows(org.skills)
    if len(drift.moved):
        moved = drift.moved
        ended = sp_to.copy()
        ended[moved] = drift.onset_h
        sp_user = np.concatenate([sp_user, moved])
        sp_team = np.concatenate([sp_team, drift.move_to])
        sp_from = np.concatenate([sp_from, np.full(len(moved), drift.onset_h)])
        sp_to = np.concatenate([ended, org.leave_h[moved]])
        sp_unit = np.vstack([sp_unit, unit_rows(drift.moved_skills)])
    members: list[np.ndarray] = []
    for t in range(org.n_teams):
        rows = np.flatnonzero((sp_team == t) & ~org.is_manager[sp_user])
        members.append(rows[np.argsort(sp_user[rows], kind="stable")])
    m_join = [sp_from[m] for m in members]
    m_leave = [sp_to[m] for m in members]
    load = np.zeros(org.n_users)

    # The duration model factorised: log M = task part - b_skill * m + user part + log(1 + load part * L).
    task_unit = unit_rows(tasks.skills)
    est_all = tasks.est
    log_task = (
        np.log(est_all * model.elapsed_factor)
        + model.beta_skill * model.skill_pivot
        - model.beta_priority * (tasks.priority - 2.5)
        + model.beta_size * np.log(est_all / 4.0)
    )
    log_user = -model.beta_seniority * (org.seniority - 3.0)
    load_coef = model.beta_load / (org.capacity / 5.0)
    half_var = sigma * sigma / 2.0
    log_norm = np.log(est_all * model.elapsed_factor) - half_var  # utility: ln(E[dur] / (e F)) = ln M - this

    # decision heap entries: (time, kind, order, task_or_user, prev_user, seq); kind 0 = user leaves, 1 = assign
    heap: list[tuple[float, int, int, int, int, int]] = []
    order = 0
    for t in np.flatnonzero(~np.isnan(tasks.assign_h)).tolist():
        heap.append((float(tasks.assign_h[t]), 1, order, t, -1, 0))
        order += 1
    for u in np.flatnonzero(np.isfinite(org.leave_h)).tolist():
        heap.append((float(org.leave_h[u]), 0, order, u, -1, 0))
        order += 1
    heapq.heapify(heap)

    completions: list[tuple[float, int]] = []  # (completion time, segment)
    cancelled: set[int] = set()
    open_segments: dict[int, set[int]] = {}

    seg_task: list[int] = []
    seg_seq: list[int] = []
    seg_user: list[int] = []
    seg_prev: list[int] = []
    seg_start: list[float] = []
    seg_actual: list[float] = []
    seg_end: list[float] = []
    seg_final: list[bool] = []
    col_user: list[np.ndarray] = []
    col_match: list[np.ndarray] = []
    col_open: list[np.ndarray] = []
    col_logmed: list[np.ndarray] = []
    col_pon: list[np.ndarray] = []
    col_util: list[np.ndarray] = []
    col_score: list[np.ndarray] = []
    chosen_at: list[int] = []
    team_of_task = tasks.team.tolist()
    due_of_task = tasks.due_h.tolist()
    est_list = est_all.tolist()
    tau, lam, inv_sigma, b_skill = model.manager_noise, model.utility_lambda, 1.0 / sigma, model.beta_skill
    max_c = cfg.max_candidates
    # Per team: the times its membership changes, and the candidate set valid between two changes.
    changes = [
        np.unique(np.concatenate([m_join[t][m_join[t] >= 0], m_leave[t][np.isfinite(m_leave[t])]]))
        for t in range(org.n_teams)
    ]
    empty = np.zeros(0, dtype=np.int64)
    cache: list[tuple[float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = [
        (math.inf, -math.inf, empty, empty, empty, empty) for _ in range(org.n_teams)
    ]

    def drain(until: float) -> None:
        while completions and completions[0][0] <= until:
            _, seg = heapq.heappop(completions)
            if seg in cancelled:
                continue
            u = seg_user[seg]
            load[u] -= est_list[seg_task[seg]]
            open_segments[u].discard(seg)

    while heap:
        now, kind, _, who, prev, seq = heapq.heappop(heap)
        if now >= hours:
            break
        drain(now)
        if kind == 0:  # a user leaves: their open tasks go back to the manager for reassignment
            for seg in sorted(open_segments.pop(who, set())):
                cancelled.add(seg)
                seg_end[seg] = now
                seg_final[seg] = False
                delay = float(rng.uniform(0.05, 1.5))
                heapq.heappush(heap, (now + delay, 1, order, seg_task[seg], who, seg_seq[seg] + 1))
                order += 1
            continue

        t = who
        team = team_of_task[t]
        cached = cache[team]
        if not cached[0] <= now < cached[1]:  # membership changed since the last decision of this team
            k = int(np.searchsorted(changes[team], now, side="right"))
            spells = members[team][(m_join[team] <= now) & (m_leave[team] > now)]
            active = sp_user[spells]
            lo = float(changes[team][k - 1]) if k > 0 else -math.inf
            hi = float(changes[team][k]) if k < len(changes[team]) else math.inf
            cached = (lo, hi, active, sp_unit[spells], log_user[active], load_coef[active])
            cache[team] = cached
        _, _, cands, unit_c, logu_c, coef_c = cached
        n = len(cands)
        if n == 0:
            continue
        if n > max_c:
            pick = np.sort(rng.choice(n, size=max_c, replace=False))
            cands, unit_c, logu_c, coef_c = cands[pick], unit_c[pick], logu_c[pick], coef_c[pick]
            n = max_c
        match = unit_c @ task_unit[t]
        open_hours = load[cands]
        logmed = log_task[t] - b_skill * match + logu_c + np.log1p(coef_c * open_hours)
        slack = due_of_task[t] - now
        pon = np.interp((math.log(slack) - logmed) * inv_sigma, _PHI_X, _PHI_Y) if slack > 0 else np.zeros(n)
        util = pon - lam * (logmed - log_norm[t])
        score = util + tau * rng.gumbel(size=n)
        j = int(np.argmax(score))
        user = int(cands[j])
        actual = math.exp(float(logmed[j]) + sigma * float(rng.standard_normal()))

        seg = len(seg_task)
        seg_task.append(t)
        seg_seq.append(seq)
        seg_user.append(user)
        seg_prev.append(prev)
        seg_start.append(now)
        seg_actual.append(actual)
        seg_end.append(now + actual)
        seg_final.append(True)
        load[user] += est_list[t]
        heapq.heappush(completions, (now + actual, seg))
        open_segments.setdefault(user, set()).add(seg)

        col_user.append(cands)
        col_match.append(match)
        col_open.append(open_hours)
        col_logmed.append(logmed)
        col_pon.append(pon)
        col_util.append(util)
        col_score.append(score)
        chosen_at.append(j)

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    sizes = np.array([len(c) for c in col_user], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    decision = np.repeat(np.arange(len(sizes)), sizes)
    median = np.exp(cat(col_logmed, np.float64))
    util_all = cat(col_util, np.float64)
    chosen = np.zeros(len(decision), dtype=bool)
    chosen[offsets + np.asarray(chosen_at, dtype=np.int64)] = True
    by_util = np.lexsort((-util_all, decision))
    rank = np.empty(len(decision), dtype=np.int64)
    rank[by_util] = np.arange(len(decision)) - offsets[decision[by_util]] + 1
    candidates = {
        "task": np.repeat(np.asarray(seg_task, dtype=np.int64), sizes),
        "seq": np.repeat(np.asarray(seg_seq, dtype=np.int64), sizes),
        "time": np.repeat(np.asarray(seg_start, dtype=np.float64), sizes),
        "user": cat(col_user, np.int64),
        "match": cat(col_match, np.float64),
        "open_hours": cat(col_open, np.float64),
        "median": median,
        "expected": median * np.exp(half_var),
        "p_on_time": cat(col_pon, np.float64),
        "utility": util_all,
        "score": cat(col_score, np.float64),
        "chosen": chosen,
        "rank": rank,
    }
    segments = {
        "task": np.asarray(seg_task, dtype=np.int64),
        "seq": np.asarray(seg_seq, dtype=np.int64),
        "user": np.asarray(seg_user, dtype=np.int64),
        "prev": np.asarray(seg_prev, dtype=np.int64),
        "start": np.asarray(seg_start, dtype=np.float64),
        "actual": np.asarray(seg_actual, dtype=np.float64),
        "end": np.asarray(seg_end, dtype=np.float64),
        "final": np.asarray(seg_final, dtype=bool),
    }
    completed_h = np.full(n_tasks, np.nan)
    first_user = np.full(n_tasks, -1, dtype=np.int64)
    final_user = np.full(n_tasks, -1, dtype=np.int64)
    n_assign = np.zeros(n_tasks, dtype=np.int64)
    st = segments["task"]
    np.add.at(n_assign, st, 1)
    first = segments["seq"] == 0
    first_user[st[first]] = segments["user"][first]
    by_task = np.lexsort((segments["seq"], st))
    last = by_task[np.r_[st[by_task][1:] != st[by_task][:-1], True]] if len(st) else by_task
    final_user[st[last]] = segments["user"][last]
    fin = segments["final"]
    completed_h[st[fin]] = segments["end"][fin]
    return Assignments(
        candidates=candidates,
        segments=segments,
        completed_h=completed_h,
        first_user=first_user,
        final_user=final_user,
        n_assignments=n_assign,
    )
