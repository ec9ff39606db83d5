"""The ``tracker`` preset: the organisation, tasks and assignment truth of an open-source bug tracker.

Products (teams) made of many components (projects); contributors with a heavy-tailed activity,
one or two specialty components and a specialty topic; reporters who file tasks about their own
corner of the product; tasks that stay open for months. The assignment truth is driven by what
such an export carries (component, reporter, title words, who worked on what and when), not by
skills or estimates. The package docstring ("Tracker preset") gives the formulas; the results
use the same ``Org`` / ``Tasks`` / ``Assignments`` structures as the other presets.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

from maestro_ml.contracts.events import NUM_SKILLS
from maestro_ml.simulation import text
from maestro_ml.simulation.behaviour import Assignments, norm_cdf
from maestro_ml.simulation.config import SimulationConfig, TrackerModel
from maestro_ml.simulation.org import TIMEZONES, Org, TrackerTraits, stream, unique_ids
from maestro_ml.simulation.tasks import Tasks, activity_weights

TOPIC_WORDS = 3  # words per specialty topic
HANDLER_TOPIC_SHARE = 0.75  # a title's topic is its likely handler's specialty this often (else any topic)


def _model(cfg: SimulationConfig) -> TrackerModel:
    if cfg.tracker is None:
        raise ValueError("the tracker simulation needs SimulationConfig.tracker")
    return cfg.tracker


def _gumbel_top(rng: np.random.Generator, log_w: np.ndarray, k: int) -> np.ndarray:
    """Indices of ``k`` draws without replacement, weights ``exp(log_w)`` (the Gumbel top-k trick)."""
    keys = log_w + rng.gumbel(size=log_w.shape)
    return np.argsort(-keys, kind="stable")[:k]


def build_org(cfg: SimulationConfig) -> Org:
    tm = _model(cfg)
    rng = stream(cfg.seed, "trk-org")
    n, k, hours = cfg.n_users, cfg.n_teams, cfg.hours

    extra = rng.multinomial(n - 4 * k, rng.dirichlet(np.full(k, 3.0)))
    sizes = 4 + extra
    user_team = np.repeat(np.arange(k), sizes)
    team_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    is_manager = np.zeros(n, dtype=bool)
    is_manager[team_start] = True  # the product's lead: triages, never a candidate
    workers = ~is_manager

    team_tz = rng.integers(0, len(TIMEZONES), size=k)
    user_tz = np.where(rng.random(n) < 0.4, team_tz[user_team], rng.integers(0, len(TIMEZONES), size=n))
    seniority = rng.choice(np.arange(1, 6), size=n, p=[0.22, 0.32, 0.26, 0.14, 0.06])
    capacity = rng.choice(np.array([10.0, 20.0, 30.0, 40.0]), size=n, p=[0.3, 0.25, 0.15, 0.3])
    profile = rng.random(n) < tm.profile_share
    profile[team_start] = True

    # Activity: Zipf over a random ranking of each product's people (with some jitter), so in every
    # product a few people take most of the work.
    rank = np.empty(n)
    for t in range(k):
        people = np.flatnonzero(user_team == t)
        rank[people] = 1.0 + rng.permutation(len(people))
    activity = rank ** (-tm.activity_zipf) * rng.lognormal(0.0, 0.3, size=n)
    activity /= activity[workers].mean()

    p_join = min(0.25, cfg.join_rate_per_day * cfg.days)
    joins_in_window = (rng.random(n) < p_join) & workers
    join_h = np.where(
        joins_in_window, rng.uniform(1.0, max(1.5, hours - 1.0), size=n), -rng.uniform(720, 36_000, size=n)
    )
    p_leave = min(0.2, cfg.leave_rate_per_day * cfg.days)
    lo = np.maximum(join_h, 0.0) + 24.0
    leaves = (rng.random(n) < p_leave) & (lo < hours - 1.0) & workers
    leave_h = np.where(leaves, lo + rng.random(n) * (hours - 1.0 - lo), np.inf)

    first = rng.integers(0, 1 << 16, size=n)
    last = rng.integers(0, 1 << 16, size=n)
    names = [text.person_name(int(a), int(b)) for a, b in zip(first, last, strict=True)]
    emails = [text.work_email(int(a), int(b), i) for i, (a, b) in enumerate(zip(first, last, strict=True))]

    # Components: most exist before the window, a few appear during it; popularity is skewed.
    n_initial = np.maximum(2, tm.components_per_team + rng.integers(-2, 3, size=k))
    n_new = rng.poisson(0.005 * cfg.days, size=k)
    per_team = n_initial + n_new
    project_team = np.repeat(np.arange(k), per_team)
    is_initial = np.concatenate([np.arange(c) < i for c, i in zip(per_team, n_initial, strict=True)])
    m = len(project_team)
    created_h = np.where(
        is_initial, -rng.uniform(24 * 30, 24 * 1500, size=m), rng.uniform(1.0, max(1.5, hours - 24.0 * 14), size=m)
    )
    popularity = np.empty(m)
    for t in range(k):
        sel = project_team == t
        popularity[sel] = np.maximum(rng.dirichlet(np.full(int(sel.sum()), 0.8)), 1e-9)
    project_priority = rng.choice(np.arange(1, 5), size=m, p=[0.15, 0.45, 0.3, 0.1])
    component_log_median = math.log(tm.base_median_hours) + tm.component_sigma * rng.standard_normal(m)

    pool = np.array(text.COMPONENT_POOL)
    component_words: list[tuple[str, ...]] = []
    for t in range(k):
        need = int(per_team[t]) * tm.component_words
        words = np.concatenate([rng.permutation(pool) for _ in range(-(-need // len(pool)))])
        for c in range(int(per_team[t])):
            component_words.append(tuple(words[c * tm.component_words : (c + 1) * tm.component_words].tolist()))
    products = rng.integers(0, 1 << 16, size=k)
    product_names = [text.PROJECT_NOUNS[int(p) % len(text.PROJECT_NOUNS)] for p in products]
    suffix = rng.integers(0, 1 << 16, size=m)
    project_names = [
        text.component_name(product_names[int(project_team[p])], component_words[p][0], int(suffix[p]))
        for p in range(m)
    ]

    topic_pool = np.array(text.TOPIC_POOL)
    topic_team = np.repeat(np.arange(k), tm.topics_per_team)
    topic_words: list[tuple[str, ...]] = []
    for _ in range(k):
        need = tm.topics_per_team * TOPIC_WORDS
        words = np.concatenate([rng.permutation(topic_pool) for _ in range(-(-need // len(topic_pool)))])
        for c in range(tm.topics_per_team):
            topic_words.append(tuple(words[c * TOPIC_WORDS : (c + 1) * TOPIC_WORDS].tolist()))
    topic = user_team * tm.topics_per_team + rng.integers(0, tm.topics_per_team, size=n)

    # Affinity: 1-2 specialty components (by popularity), a few secondary ones, a little for the rest.
    affinity = np.zeros((n, m))
    n_special = rng.choice(np.array([1, 2]), size=n, p=[0.6, 0.4])
    n_secondary = rng.poisson(1.5, size=n)
    second_level = rng.uniform(0.6, 0.9, size=n)
    for u in range(n):
        comps = np.flatnonzero(project_team == user_team[u])
        affinity[u, comps] = 0.03
        order = _gumbel_top(rng, np.log(popularity[comps]), len(comps))
        special = comps[order[: n_special[u]]]
        secondary = comps[order[n_special[u] : n_special[u] + n_secondary[u]]]
        affinity[u, secondary] = rng.uniform(0.15, 0.45, size=len(secondary))
        affinity[u, special[0]] = 1.0
        affinity[u, special[1:]] = second_level[u]

    # Reporters: everyone reports a little, leads and a heavy tail of people a lot; each prefers two handlers.
    report_weight = rng.lognormal(0.0, 1.0, size=n) * activity**0.4
    report_weight[team_start] *= 4.0
    favourites = np.full((n, 2), -1, dtype=np.int64)
    for u in range(n):
        team = np.flatnonzero((user_team == user_team[u]) & workers & (np.arange(n) != u))
        if len(team):
            log_w = 0.7 * np.log(activity[team]) + 2.0 * (affinity[team] @ affinity[u]) / max(affinity[u].sum(), 1e-9)
            pick = team[_gumbel_top(rng, log_w, 2)]
            favourites[u, : len(pick)] = pick
    # Self-assignment: more likely for the more active people.
    share = min(max(tm.self_assign_share, 1e-6), 1.0 - 1e-6)
    raw = math.log(share / (1.0 - share)) + 0.5 * np.log(activity) + 0.8 * rng.standard_normal(n)
    self_assign = 1.0 / (1.0 + np.exp(-raw))
    reporter_log_factor = tm.reporter_sigma * rng.standard_normal(n)

    traits = TrackerTraits(
        profile=profile,
        activity=activity,
        affinity=affinity,
        topic=topic.astype(np.int64),
        favourites=favourites,
        report_weight=report_weight,
        self_assign=self_assign,
        reporter_log_factor=reporter_log_factor,
        component_popularity=popularity,
        component_log_median=component_log_median,
        component_words=component_words,
        topic_team=topic_team,
        topic_words=topic_words,
    )
    return Org(
        team_ids=unique_ids(rng, k, "team_", 3),
        team_tz=team_tz,
        team_focus=np.zeros((k, NUM_SKILLS)),
        manager=team_start.astype(np.int64),
        user_ids=unique_ids(rng, n, "u_"),
        user_team=user_team,
        skills=np.zeros((n, NUM_SKILLS)),
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
        project_deadline_h=np.full(m, np.nan),
        project_skills=np.zeros((m, NUM_SKILLS)),
        project_names=project_names,
        traits=traits,
    )


def _traits(org: Org) -> TrackerTraits:
    if org.traits is None:
        raise ValueError("the tracker simulation needs an organisation built by tracker.build_org")
    return org.traits


def build_tasks(cfg: SimulationConfig, org: Org) -> Tasks:
    tm, tr = _model(cfg), _traits(org)
    rng = stream(cfg.seed, "trk-task", cfg)
    hours, k = cfg.hours, org.n_teams

    offsets = np.array([TIMEZONES[z][1] for z in org.team_tz])
    weights = activity_weights(cfg, offsets)
    mid = np.arange(hours) + 0.5
    workers = ~org.is_manager
    active = (org.join_h[:, None] <= mid[None, :]) & (org.leave_h[:, None] > mid[None, :]) & workers[:, None]
    onehot = np.zeros((k, org.n_users))
    onehot[org.user_team, np.arange(org.n_users)] = 1.0
    expected = cfg.tasks_per_user_day / 24.0 * (onehot @ active.astype(np.float64)) * weights
    expected[:, 0] = 0.0  # the first hour is the organisation's bootstrap
    counts = rng.poisson(expected)
    team_of = np.repeat(np.repeat(np.arange(k), hours), counts.ravel())
    hour_of = np.repeat(np.tile(np.arange(hours), k), counts.ravel())
    created = hour_of + rng.random(len(hour_of))
    order = np.lexsort((team_of, created))
    created, team_of = created[order], team_of[order]
    n = len(created)

    # Component (by popularity among the existing ones), reporter, likely handler and topic, per task.
    project = np.empty(n, dtype=np.int64)
    reporter = np.empty(n, dtype=np.int64)
    topic = np.empty(n, dtype=np.int64)
    for t in range(k):
        sel = np.flatnonzero(team_of == t)
        if len(sel) == 0:
            continue
        at = created[sel]
        comps = np.flatnonzero(org.project_team == t)
        exists = org.project_created_h[comps][None, :] <= at[:, None]
        exists[:, np.argmin(org.project_created_h[comps])] = True  # guard: the oldest always exists
        keys = np.where(exists, np.log(tr.component_popularity[comps])[None, :], -np.inf)
        project[sel] = comps[np.argmax(keys + rng.gumbel(size=keys.shape), axis=1)]

        people = np.flatnonzero(org.user_team == t)
        here = (org.join_h[people][None, :] <= at[:, None]) & (org.leave_h[people][None, :] > at[:, None])
        aff = tr.affinity[people][:, project[sel]].T  # (tasks, people)
        keys = np.where(here, np.log(tr.report_weight[people])[None, :] + np.log(aff + 0.15), -np.inf)
        reporter[sel] = people[np.argmax(keys + rng.gumbel(size=keys.shape), axis=1)]

        handler_ok = here & workers[people][None, :]
        keys = np.where(handler_ok, 0.5 * np.log(tr.activity[people])[None, :] + 2.0 * np.log(aff + 0.05), -np.inf)
        handler = people[np.argmax(keys + rng.gumbel(size=keys.shape), axis=1)]
        any_topic = t * tm.topics_per_team + rng.integers(0, tm.topics_per_team, size=len(sel))
        has_handler = handler_ok.any(axis=1)
        use_handler = has_handler & (rng.random(len(sel)) < HANDLER_TOPIC_SHARE)
        topic[sel] = np.where(use_handler, tr.topic[handler], any_topic)

    priority = np.clip(org.project_priority[project] + rng.choice(np.array([-1, 0, 0, 1]), size=n), 1, 4)
    log_size = tm.size_sigma * rng.standard_normal(n)
    est_raw = np.clip(np.round(4.0 * np.exp(log_size) * rng.lognormal(0.0, 0.4, size=n) * 2.0) / 2.0, 0.5, 80.0)
    est = np.where(rng.random(n) < tm.estimate_share, est_raw, np.nan)
    due_raw = np.ceil(created + 24.0 * rng.lognormal(math.log(30.0), 0.6, size=n))
    due_h = np.where(rng.random(n) < tm.due_share, due_raw, np.nan)

    # A few links: subtasks of, and dependencies on, earlier tasks of the same component.
    by_project = np.lexsort((created, project))
    proj_sorted = project[by_project]
    group_start = np.searchsorted(proj_sorted, proj_sorted, side="left")
    pos = np.arange(n) - group_start
    parent = np.full(n, -1, dtype=np.int64)
    depends = np.full(n, -1, dtype=np.int64)
    has_parent = (pos > 0) & (rng.random(n) < 0.05)
    pick = group_start + (rng.random(n) * np.maximum(pos, 1)).astype(np.int64)
    parent[by_project[has_parent]] = by_project[pick[has_parent]]
    has_dep = (pos > 0) & (rng.random(n) < 0.03)
    pick = group_start + (rng.random(n) * np.maximum(pos, 1)).astype(np.int64)
    depends[by_project[has_dep]] = by_project[pick[has_dep]]
    depends[depends == parent] = -1

    # Triage takes days, sometimes months; some reports are never picked up.
    delay = rng.lognormal(math.log(tm.assign_delay_hours) - 0.3 * (priority - 2.5), tm.assign_delay_sigma)
    assign_h = created + delay
    backlog = rng.random(n) < tm.never_assigned
    assign_h = np.where(backlog | (assign_h >= hours), np.nan, assign_h)

    # Titles: component words, topic words (the likely handler's specialty) and generic words, shuffled.
    n_comp = rng.choice(np.array([1, 2, 3]), size=n, p=[0.3, 0.5, 0.2])
    n_topic = rng.choice(np.array([0, 1, 2]), size=n, p=[0.15, 0.55, 0.3])
    n_generic = rng.choice(np.array([1, 2, 3]), size=n, p=[0.3, 0.45, 0.25])
    draws = rng.integers(0, 1 << 30, size=(n, 13))  # word starts (2), generic words (3), order keys (8)
    verb = rng.integers(0, 1 << 16, size=n)
    titles: list[str] = []
    generic = text.GENERIC_WORDS
    for i in range(n):
        cw, tw, r = tr.component_words[int(project[i])], tr.topic_words[int(topic[i])], draws[i]
        start_c, start_t = int(r[0]) % len(cw), int(r[1]) % len(tw)
        words = [cw[(start_c + j) % len(cw)] for j in range(int(n_comp[i]))]
        words += [tw[(start_t + j) % len(tw)] for j in range(int(n_topic[i]))]
        words += [generic[int(r[2 + j]) % len(generic)] for j in range(int(n_generic[i]))]
        perm = np.argsort(r[5 : 5 + len(words)], kind="stable")
        titles.append(text.tracker_title(int(verb[i]), [words[int(j)] for j in perm], i + 1))
    title_pii: dict[int, list[str]] = {}
    with_pii = np.flatnonzero(rng.random(n) < cfg.dirt.pii_in_text / 5.0)
    pii_draws = rng.integers(0, 1 << 20, size=(len(with_pii), 10))
    for i, r in zip(with_pii.tolist(), pii_draws, strict=True):
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
        skills=np.zeros((n, NUM_SKILLS)),
        main_skill=np.full(n, -1, dtype=np.int64),
        parent=parent,
        depends=depends,
        assign_h=assign_h,
        titles=titles,
        title_pii=title_pii,
        reporter=reporter,
        topic=topic,
        log_size=log_size,
    )


def run_assignments(cfg: SimulationConfig, org: Org, tasks: Tasks) -> Assignments:
    """Walk the assignment decisions in time order (each changes the state later ones see)."""
    tm, tr = _model(cfg), _traits(org)
    if tasks.reporter is None or tasks.topic is None or tasks.log_size is None:
        raise ValueError("the tracker simulation needs tasks built by tracker.build_tasks")
    rng = stream(cfg.seed, "trk-asgn", cfg)
    hours = float(cfg.hours)
    n_tasks, n_users = len(tasks), org.n_users
    sigma = tm.sigma

    members = [np.flatnonzero((org.user_team == t) & ~org.is_manager) for t in range(org.n_teams)]
    open_tasks = np.zeros(n_users)
    experience = np.zeros((n_users, len(org.project_ids)))
    last_at = np.full((n_users, len(org.project_ids)), -np.inf)
    log_activity = np.log(tr.activity)
    # The task's own part of the log median: its component, priority, hidden size and reporter.
    log_task = (
        tr.component_log_median[tasks.project]
        - tm.b_priority * (tasks.priority - 2.5)
        + tasks.log_size
        + tr.reporter_log_factor[tasks.reporter]
    )
    recency_h = 24.0 * tm.recency_days

    heap: list[tuple[float, int, int, int, int, int]] = []  # (time, kind, order, task_or_user, prev, seq)
    order = 0
    for t in np.flatnonzero(~np.isnan(tasks.assign_h)).tolist():
        heap.append((float(tasks.assign_h[t]), 1, order, t, -1, 0))
        order += 1
    for u in np.flatnonzero(np.isfinite(org.leave_h)).tolist():
        heap.append((float(org.leave_h[u]), 0, order, u, -1, 0))
        order += 1
    heapq.heapify(heap)

    completions: list[tuple[float, int]] = []
    cancelled: set[int] = set()
    open_segments: dict[int, set[int]] = {}
    seg: dict[str, list[float]] = {k: [] for k in ("task", "seq", "user", "prev", "start", "actual", "end", "final")}
    cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in ("user", "logmed", "pon", "util", "score", "affinity", "topic_match", "activity", "reporter_bond",
                  "is_reporter", "recency", "experience", "open_tasks")
    }  # fmt: skip
    chosen_at: list[int] = []

    def drain(until: float) -> None:
        while completions and completions[0][0] <= until:
            _, s = heapq.heappop(completions)
            if s in cancelled:
                continue
            u = int(seg["user"][s])
            open_tasks[u] -= 1
            open_segments[u].discard(s)

    while heap:
        now, kind, _, who, prev, seq = heapq.heappop(heap)
        if now >= hours:
            break
        drain(now)
        if kind == 0:  # a user leaves: their open tasks go back to triage
            for s in sorted(open_segments.pop(who, set())):
                cancelled.add(s)
                seg["end"][s] = now
                seg["final"][s] = False
                delay = float(rng.uniform(1.0, 72.0))
                heapq.heappush(heap, (now + delay, 1, order, int(seg["task"][s]), who, int(seg["seq"][s]) + 1))
                order += 1
            continue

        t = who
        team = int(tasks.team[t])
        cands = members[team][(org.join_h[members[team]] <= now) & (org.leave_h[members[team]] > now)]
        if len(cands) == 0:
            continue
        if len(cands) > cfg.max_candidates:
            cands = cands[np.sort(rng.choice(len(cands), size=cfg.max_candidates, replace=False))]
        comp, rep = int(tasks.project[t]), int(tasks.reporter[t])
        aff = tr.affinity[cands, comp]
        topic_match = (tr.topic[cands] == tasks.topic[t]).astype(np.float64)
        act = log_activity[cands]
        bond = ((tr.favourites[rep, 0] == cands) | (tr.favourites[rep, 1] == cands)).astype(np.float64)
        is_rep = (cands == rep).astype(np.float64)
        recency = np.exp(-(now - last_at[cands, comp]) / recency_h)
        exp_log = np.log1p(experience[cands, comp])
        load = open_tasks[cands].copy()
        logmed = log_task[t] - tm.b_affinity * aff - tm.b_topic * topic_match - tm.b_experience * exp_log
        util = (
            tm.w_affinity * aff
            + tm.w_topic * topic_match
            + tm.w_activity * act
            + tm.w_reporter * bond
            + tm.w_self_report * is_rep
            + tm.w_recency * recency
            + tm.w_experience * exp_log
            - tm.w_load * np.log1p(load)
            - tm.utility_lambda * (logmed - log_task[t])
        )
        score = util + tm.choice_noise * rng.gumbel(size=len(cands))
        j = int(np.argmax(score))
        user = int(cands[j])
        actual = math.exp(float(logmed[j]) + sigma * float(rng.standard_normal()))
        slack = float(tasks.due_h[t]) - now
        if math.isnan(slack):
            pon = np.full(len(cands), np.nan)
        elif slack > 0:
            pon = norm_cdf((math.log(slack) - logmed) / sigma)
        else:
            pon = np.zeros(len(cands))

        s = len(seg["task"])
        row = {"task": t, "seq": seq, "user": user, "prev": prev, "start": now, "actual": actual,
               "end": now + actual, "final": True}  # fmt: skip
        for key, value in row.items():
            seg[key].append(value)
        open_tasks[user] += 1
        experience[user, comp] += 1
        last_at[user, comp] = now
        heapq.heappush(completions, (now + actual, s))
        open_segments.setdefault(user, set()).add(s)
        columns = {"user": cands, "logmed": logmed, "pon": pon, "util": util, "score": score, "affinity": aff,
                   "topic_match": topic_match, "activity": act, "reporter_bond": bond, "is_reporter": is_rep,
                   "recency": recency, "experience": exp_log, "open_tasks": load}  # fmt: skip
        for name, column in columns.items():
            cols[name].append(column)
        chosen_at.append(j)

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    sizes = np.array([len(c) for c in cols["user"]], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    decision = np.repeat(np.arange(len(sizes)), sizes)
    median = np.exp(cat(cols["logmed"], np.float64))
    util_all = cat(cols["util"], np.float64)
    chosen = np.zeros(len(decision), dtype=bool)
    chosen[offsets + np.asarray(chosen_at, dtype=np.int64)] = True
    by_util = np.lexsort((-util_all, decision))
    rank = np.empty(len(decision), dtype=np.int64)
    rank[by_util] = np.arange(len(decision)) - offsets[decision[by_util]] + 1
    s_task = np.asarray(seg["task"], dtype=np.int64)
    s_seq = np.asarray(seg["seq"], dtype=np.int64)
    s_start = np.asarray(seg["start"], dtype=np.float64)
    n_dec = len(decision)
    candidates = {
        "task": np.repeat(s_task, sizes),
        "seq": np.repeat(s_seq, sizes),
        "time": np.repeat(s_start, sizes),
        "user": cat(cols["user"], np.int64),
        "match": np.full(n_dec, np.nan),  # no skills in a tracker export
        "open_hours": np.full(n_dec, np.nan),  # no estimates either: see open_tasks
        "median": median,
        "expected": median * math.exp(sigma * sigma / 2.0),
        "p_on_time": cat(cols["pon"], np.float64),
        "utility": util_all,
        "score": cat(cols["score"], np.float64),
        "chosen": chosen,
        "rank": rank,
        **{k: cat(cols[k], np.float64) for k in TRUTH_EXTRA},
    }
    s_user = np.asarray(seg["user"], dtype=np.int64)
    segments = {
        "task": s_task,
        "seq": s_seq,
        "user": s_user,
        "prev": np.asarray(seg["prev"], dtype=np.int64),
        "start": s_start,
        "actual": np.asarray(seg["actual"], dtype=np.float64),
        "end": np.asarray(seg["end"], dtype=np.float64),
        "final": np.asarray(seg["final"], dtype=bool),
        "actor": _assignment_actors(rng, tm, org, tasks, s_task, s_seq, s_user, s_start),
    }
    completed_h = np.full(n_tasks, np.nan)
    first_user = np.full(n_tasks, -1, dtype=np.int64)
    final_user = np.full(n_tasks, -1, dtype=np.int64)
    n_assign = np.zeros(n_tasks, dtype=np.int64)
    np.add.at(n_assign, s_task, 1)
    first = s_seq == 0
    first_user[s_task[first]] = s_user[first]
    by_task = np.lexsort((s_seq, s_task))
    last = by_task[np.r_[s_task[by_task][1:] != s_task[by_task][:-1], True]] if len(s_task) else by_task
    final_user[s_task[last]] = s_user[last]
    fin = segments["final"]
    completed_h[s_task[fin]] = segments["end"][fin]
    return Assignments(
        candidates=candidates,
        segments=segments,
        completed_h=completed_h,
        first_user=first_user,
        final_user=final_user,
        n_assignments=n_assign,
    )


# Truth columns the tracker adds to candidates/part-*.parquet: the signals its utility is made of.
TRUTH_EXTRA: tuple[str, ...] = (
    "affinity",
    "topic_match",
    "activity",
    "reporter_bond",
    "is_reporter",
    "recency",
    "experience",
    "open_tasks",
)


def _assignment_actors(
    rng: np.random.Generator,
    tm: TrackerModel,
    org: Org,
    tasks: Tasks,
    s_task: np.ndarray,
    s_seq: np.ndarray,
    s_user: np.ndarray,
    s_start: np.ndarray,
) -> np.ndarray:
    """Who made each assignment: the assignee (self-assignment), the reporter or the lead; -1: not recorded."""
    tr = _traits(org)
    assert tasks.reporter is not None
    n = len(s_task)
    lead = org.manager[tasks.team[s_task]]
    reporter = tasks.reporter[s_task]
    reporter_here = (org.join_h[reporter] <= s_start) & (org.leave_h[reporter] > s_start) & (s_seq == 0)
    by_reporter = reporter_here & (rng.random(n) < 0.5)
    actor = np.where(by_reporter, reporter, lead)
    self_made = rng.random(n) < tr.self_assign[s_user]
    actor = np.where(self_made, s_user, actor)
    actor = np.where(rng.random(n) < tm.no_actor_share, -1, actor)
    return np.asarray(actor, dtype=np.int64)
