"""A deterministic (seeded) simulator of a work-management organisation, its activity and its known truth.

``simulate(config_for_preset("demo", start), landing_uri, truth_uri)`` builds teams, users,
projects and tasks, lets managers assign tasks, walks every task through its life and writes:

* the product events (``maestro_ml.contracts.events`` contract, one flat JSON object per line) to
  ``<landing>/events/dt=YYYY-MM-DD/hour=HH/part-NNNN.jsonl.gz`` (folder = hour the line
  *landed*; every file is several gzip members; written atomically through ``maestro_ml.storage``);
* the truth, never under the landing zone, to ``<truth>/``: ``candidates/part-*.parquet``
  (one row per assignment decision and eligible candidate), ``tasks.parquet`` (actual
  outcomes), ``users.parquet``, ``projects.parquet``, ``teams.parquet``, ``model.json``
  (coefficients), ``dirt_ledger.json`` / ``dirt_ledger.parquet``, ``scenario.json`` and ``summary.json``.

A named drift scenario (``config_for_preset(..., scenario="reorg", scenario_day=7)``; ``none``, the
default, is stationary) changes the world from an onset day on: a reorganisation, one team's
workload surge or optimistic estimates. Module ``scenarios`` describes them;
``scenario_onset(truth_uri)`` reads what ``scenario.json`` records (name, onset, parameters).

Same seed, preset and window give byte-identical landing files: every random draw comes from
seeded numpy streams (ids included) and nothing reads the clock. Users (and projects) that
exist before the window get their ``user_joined`` (``project_created``) event in the window's
first half hour, so state rebuilt from the window alone is complete.

Behaviour (the known truth)
---------------------------
For task t (estimate e hours, priority p in 1..4, due at d, required-skill vector r) and a
candidate u (skill vector s, seniority k in 1..5, weekly capacity C hours, open workload L =
estimated hours of u's assigned, not yet completed tasks) at assignment time a::

    match  m   = cos(s, r)                                 (all entries >= 0, so m in [0, 1])
    median M   = e * F * exp(b_skill * (pivot - m)) * exp(-b_sen * (k - 3))
                   * (1 + b_load * L / (C / 5)) * exp(-b_prio * (p - 2.5)) * (e / 4) ** b_size
    actual     = M * exp(sigma * z),  z ~ N(0, 1)          (lognormal; hours from assignment to done)
    E[dur]     = M * exp(sigma**2 / 2)                     ("expected_duration_hours")
    P(on-time) = Phi((ln(d - a) - ln M) / sigma)           (0 when d <= a)
    utility  U = P(on-time) - lambda * ln(E[dur] / (e * F))

with F=2.5, b_skill=2.0, pivot=0.6, b_sen=0.12, b_load=0.35, b_prio=0.08, b_size=0.1,
sigma=0.45, lambda=0.25 (``BehaviourModel``; written to ``<truth>/model.json``).

Eligible candidates are the non-manager members of the task's team who have joined and not
left at time a (a random sample of ``max_candidates`` = 50 when there are more). The
team's manager picks ``argmax(U + tau * Gumbel)`` (tau = 0.08): a noisy version of the true
utility, i.e. a softmax choice. Every decision writes one truth row per eligible candidate
(``chosen`` marks the pick); the chosen user's workload grows by e until the task completes.
When a user leaves, their open tasks are reassigned (``task_assigned`` with
``previous_assignee_id``; truth rows with ``assignment_seq`` > 0).

Dirt (``DirtRates``, on by default, ``--no-dirt`` turns it off) is listed line by line in
``<truth>/dirt_ledger.json`` with file, line number and class; ``DIRT_DISPOSITIONS`` says what
a correct ingestion does with each class.

Tracker preset
--------------
``config_for_preset("tracker", start)`` (``TrackerModel``, module ``tracker``) imitates an
open-source bug tracker export, so models meet the signals real trackers carry. What the events
lack is left out (the key is absent), never filled with a constant: ~85 % of ``task_created``
have no ``estimated_hours`` and ~92 % no ``due_at``, none has ``required_skills``;
``user_joined`` has no ``skills`` and carries ``seniority`` / ``weekly_capacity_hours`` for ~20 %
of users (and the leads) only; ``project_created`` has no ``deadline`` nor ``required_skills``;
nobody logs time. ``task_created.actor_id`` is the reporter. ``task_assigned.actor_id`` is the
assignee (self-assignment, about half), the reporter or the product's lead, or absent (~8 %);
~10 % of ``task_completed`` have no ``assignee_id`` (closed by the reporter or the lead).

Teams are products, each led by a manager who triages (never a candidate), made of ~12
components (projects) with their own vocabulary and a skewed popularity. Users have a
heavy-tailed activity ``a_u`` (Zipf: the k-th of a product's people, in a random order, gets
``k ** -1`` times a lognormal jitter; mean 1), an affinity ``A[u, c]`` (1 for a
specialty component, 0.6-0.9 for a second one, 0.15-0.45 for a few more, 0.03 for the rest of
the product), a specialty topic (three words) and two favourite handlers as reporters; they
join and leave as in the other presets. A task's reporter is drawn by reporting weight times
``A[reporter, c] + 0.15``; its title mixes 1-3 words of its component, 0-2 words of its topic
(the specialty of its likely handler, 3 times in 4) and generic words. It is assigned after a
lognormal delay (median 36 h, sigma 1.6, shorter for higher priority); 15 % never are.

For task t (component c, priority p, reporter r, hidden size s ~ N(0, 0.5^2)) and candidate u at
time a, with ``n[u, c]`` u's assignments in c so far, ``last[u, c]`` the latest one's time and
``open_u`` u's open tasks::

    log M = mu_c - b_prio (p - 2.5) + s + rho_r - b_aff A[u, c] - b_topic [same topic] - b_exp ln(1 + n[u, c])
    actual = M * exp(sigma * z)                      (sigma = 1.4: weeks to months, some > 1 year)
    U = w_aff A[u, c] + w_topic [same topic] + w_act ln a_u + w_rep [u favoured by r] + w_self [u = r]
        + w_rec exp(-(a - last[u, c]) / 21 days) + w_exp ln(1 + n[u, c]) - w_load ln(1 + open_u)
        - lambda (log M - log M_t)                   (log M_t: the candidate-free part)

with mu_c = ln 1500 h + 0.6 N(0, 1), rho_r = 0.35 N(0, 1) and the weights of ``TrackerModel``
(in ``<truth>/model.json``). The pick is ``argmax(U + 1.0 * Gumbel)``; ``utility`` is U and
``utility_rank`` 1 the best candidate, as in the other presets. The candidate truth keeps its
columns (``skill_match`` and ``open_hours`` null, ``p_on_time`` null without a due date,
``seniority`` / ``weekly_capacity_hours`` null where the events lack them) and adds the
signals: ``affinity``, ``topic_match``, ``activity`` (ln a_u), ``reporter_bond``,
``is_reporter``, ``recency``, ``experience`` (ln(1 + n)) and ``open_tasks``.
"""

from __future__ import annotations

from maestro_ml.simulation.config import (
    DIRT_CLASSES,
    DIRT_DISPOSITIONS,
    PRESETS,
    SCENARIOS,
    BehaviourModel,
    DirtRates,
    Scenario,
    SimulationConfig,
    TrackerModel,
    config_for_preset,
)
from maestro_ml.simulation.core import SimulationSummary, simulate
from maestro_ml.simulation.scenarios import scenario_onset

__all__ = [
    "DIRT_CLASSES",
    "DIRT_DISPOSITIONS",
    "PRESETS",
    "SCENARIOS",
    "BehaviourModel",
    "DirtRates",
    "Scenario",
    "SimulationConfig",
    "SimulationSummary",
    "TrackerModel",
    "config_for_preset",
    "scenario_onset",
    "simulate",
]
