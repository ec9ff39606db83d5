"""A deterministic (seeded) simulator of a work-management organisation, its activity and its known truth.

``simulate(config_for_preset("demo", start), landing_uri, truth_uri)`` builds teams, users,
projects and tasks, lets managers assign tasks, walks every task through its life and writes:

* the product events (``maestro_ml.contracts.events`` contract, one flat JSON object per line) to
  ``<landing>/events/dt=YYYY-MM-DD/hour=HH/part-NNNN.jsonl.gz`` (folder = hour the line
  *landed*; every file is several gzip members; written atomically through ``maestro_ml.storage``);
* the truth, never under the landing zone, to ``<truth>/``: ``candidates/part-*.parquet``
  (one row per assignment decision and eligible candidate), ``tasks.parquet`` (actual
  outcomes), ``users.parquet``, ``projects.parquet``, ``teams.parquet``, ``model.json``
  (coefficients), ``dirt_ledger.json`` / ``dirt_ledger.parquet`` and ``summary.json``.

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
"""

from __future__ import annotations

from maestro_ml.simulation.config import (
    DIRT_CLASSES,
    DIRT_DISPOSITIONS,
    PRESETS,
    BehaviourModel,
    DirtRates,
    SimulationConfig,
    config_for_preset,
)
from maestro_ml.simulation.core import SimulationSummary, simulate

__all__ = [
    "DIRT_CLASSES",
    "DIRT_DISPOSITIONS",
    "PRESETS",
    "BehaviourModel",
    "DirtRates",
    "SimulationConfig",
    "SimulationSummary",
    "config_for_preset",
    "simulate",
]
