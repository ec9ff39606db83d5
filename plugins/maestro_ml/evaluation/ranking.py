"""Ranking metrics, relevance labels and baselines for the assignment ranker.

One ranking group is one assignment decision (``decision_id``): the eligible candidates for one
task at one time. Every metric is computed per group and averaged over groups, vectorised over
the whole frame (groups come from ``pd.factorize`` + ``np.lexsort`` + ``np.bincount``).

Metrics
-------
* ``NDCG@k``: ``DCG@k / IDCG@k`` with gain ``2**rel - 1`` and discount ``1 / log2(position + 1)``
  (positions start at 1). IDCG ranks the group by relevance. The mean is over the groups with at
  least one relevant item (``rel > 0``); groups where every item has relevance 0 (and so
  ``IDCG = 0``) are left out, as are rows with a missing (NaN) relevance. ``k=None`` means no cut.
* ``hits@k``: the share of groups whose most relevant item is in the top k.
* Groups without a relevant item: left out of the means by default; with ``misses="zero"`` (the
  observed labels, where a decision whose actual assignee is not a candidate is a miss of the
  candidate rule) they count as 0, and ``coverage`` reports the share of groups that have one.
* ``MRR``: the mean over groups of ``1 / rank`` of the first item in score order that is *most*
  relevant in its group (its relevance equals the group's maximum, which must be > 0). With the
  observed labels that is the rank of the manager's pick; with the truth grades, the rank of the
  best candidate by true utility. ``min_relevance`` switches to "first item with rel >= min_relevance".
* Ties in the scores are broken deterministically. ``ties="stable"`` (the default) keeps the
  input order among equal scores (the first row wins), so the result never depends on sort
  internals; ``ties="pessimistic"`` puts the least relevant item first among equal scores, the
  worst case, useful to check that a score with many ties (a constant, an integer count) is not
  credited for the frame's row order. A NaN score ranks last.

Relevance labels
----------------
``observed_relevance`` is the label the ranker is trained and evaluated on with production data
(only the manager's pick and its outcome are observed, never the counterfactuals)::

    2  chosen and completed on time by that assignee         (outcome_completed_on_time == 1)
    1  chosen, but not known to be on time: completed late, reassigned before completion,
       or still open / outcome unknown                         (the pick is still a revealed preference)
    0  not chosen

The manager's pick is a noisy argmax of the true utility, so it is relevant whatever happened
next; an on-time completion confirms it and earns the higher grade. A reassignment is not
counted against the pick: in the data it mostly follows the assignee leaving, not a bad match.
Every decision has exactly one relevant row, so NDCG@k rewards placing the pick high and MRR
is the mean reciprocal rank of the pick.

``truth_relevance`` grades the candidates by the simulator's true utility (known only in
simulation), to measure how close a ranker gets to the real optimum. Within a group with ``n``
matched candidates, ``below`` = the number of candidates with a strictly lower utility and
``grade = floor(levels * below / (n - 1))`` with ``levels = 4``::

    4  the best candidate (ties for best all get 4)
    3  top quartile, 2 second quartile, 1 third quartile, 0 bottom quartile

The grade is a non-decreasing function of the utility within the group, so ranking by the true
utility gives NDCG = 1 and MRR = 1 by construction; the scale does not depend on the units or
spread of the utility, or on the group's size. A group with a single matched candidate gets
grade 0 (there is nothing to rank) and drops out of the mean. Rows without a truth match get NaN
and are excluded.

Matching the truth: the truth rows carry ``(task_id, user_id, assignment_seq, assigned_at)``. A
decision in the frame (``task_id``, ``assigned_at``) is matched to the truth decision of the same
task whose ``assigned_at`` is nearest, within ``tolerance`` (event timestamps may differ from the
truth by rounding); the candidate rows then join on ``(task_id, assignment_seq, user_id)``.

Baselines
---------
Score functions on the frame (higher = ranked first): ``random_scores`` (seeded uniform),
``least_loaded_scores`` (fewest open estimated hours first, ties by fewest open tasks) and
``skill_overlap_scores`` (``skill_match``). A ranker that cannot beat them is not worth serving.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

Ties = Literal["stable", "pessimistic"]
Misses = Literal["skip", "zero"]
DEFAULT_KS: tuple[int, ...] = (1, 3, 5, 10)
TRUTH_TOLERANCE = pd.Timedelta(seconds=5)
TRUTH_LEVELS = 4
TRUTH_KEYS = ["task_id", "user_id", "assignment_seq", "assigned_at"]


# --------------------------------------------------------------------------- group machinery


def _floats(values: Any) -> np.ndarray:
    """A float64 vector; pandas' missing values (``pd.NA`` in nullable dtypes included) become NaN."""
    if isinstance(values, pd.Series | pd.Index | pd.api.extensions.ExtensionArray):
        return pd.Series(values).astype("float64").to_numpy()
    return np.asarray(values, dtype=np.float64).ravel()


def _prepare(
    scores: Any, relevance: Any, groups: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Arrays without the rows whose relevance is missing; scores NaN -> -inf; groups -> dense codes."""
    s = _floats(scores)
    r = _floats(relevance)
    g = np.asarray(groups).ravel()
    if not (len(s) == len(r) == len(g)):
        raise ValueError(f"scores, relevance and groups differ in length: {len(s)}, {len(r)}, {len(g)}")
    keep = ~np.isnan(r)
    s, r, g = s[keep], r[keep], g[keep]
    if np.any(r < 0):
        raise ValueError("relevance must be >= 0")
    s = np.where(np.isnan(s), -np.inf, s)
    codes, uniques = pd.factorize(g, sort=False)
    return s, r, codes.astype(np.int64), len(uniques)


def _ranked(
    scores: np.ndarray, relevance: np.ndarray, codes: np.ndarray, ties: Ties
) -> tuple[np.ndarray, np.ndarray]:
    """Row order by (group, score descending, tie-break) and each sorted row's 0-based position in its group."""
    # lexsort is stable, so rows that tie on every key keep their input order without an index key.
    if ties == "stable":
        order = np.lexsort((-scores, codes))
    elif ties == "pessimistic":
        order = np.lexsort((relevance, -scores, codes))
    else:
        raise ValueError(f"unknown ties {ties!r}; expected 'stable' or 'pessimistic'")
    return order, _positions(codes[order])


def _positions(sorted_codes: np.ndarray) -> np.ndarray:
    """0-based position of each row inside its (contiguous) group."""
    n = len(sorted_codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)


def _dcg(gains: np.ndarray, positions: np.ndarray, codes: np.ndarray, n_groups: int, k: int | None) -> np.ndarray:
    discount = 1.0 / np.log2(positions + 2.0)
    if k is not None:
        discount = np.where(positions < k, discount, 0.0)
    return np.bincount(codes, weights=gains * discount, minlength=n_groups)


@dataclass(frozen=True)
class _Ranked:
    """One group-wise sort of the scores and one of the ideal order, shared by every metric of a report."""

    codes: np.ndarray
    n_groups: int
    relevance: np.ndarray
    gains: np.ndarray
    order: np.ndarray
    positions: np.ndarray
    ideal: np.ndarray
    ideal_positions: np.ndarray

    @classmethod
    def of(cls, s: np.ndarray, r: np.ndarray, codes: np.ndarray, n_groups: int, ties: Ties) -> _Ranked:
        order, pos = _ranked(s, r, codes, ties)
        ideal = np.lexsort((-r, codes))
        return cls(codes, n_groups, r, np.power(2.0, r) - 1.0, order, pos, ideal, _positions(codes[ideal]))


def _ndcg_per_group(ranked: _Ranked, k: int | None) -> np.ndarray:
    """NDCG@k of every group; NaN for groups without a relevant item."""
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1 (or None), got {k}")
    rk = ranked
    dcg = _dcg(rk.gains[rk.order], rk.positions, rk.codes[rk.order], rk.n_groups, k)
    idcg = _dcg(rk.gains[rk.ideal], rk.ideal_positions, rk.codes[rk.ideal], rk.n_groups, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(idcg > 0, dcg / idcg, np.nan)


def _mrr_per_group(ranked: _Ranked, min_relevance: float | None) -> np.ndarray:
    """1 / rank of the first relevant item of every group; NaN for groups without one."""
    r, codes, n_groups = ranked.relevance, ranked.codes, ranked.n_groups
    if min_relevance is None:
        best = np.full(n_groups, -np.inf)
        np.maximum.at(best, codes, r)
        relevant = (r == best[codes]) & (r > 0)
    else:
        relevant = r >= min_relevance
    order, pos = ranked.order, ranked.positions
    hit = relevant[order]
    first = np.full(n_groups, np.iinfo(np.int64).max)
    np.minimum.at(first, codes[order][hit], pos[hit])
    found = first < np.iinfo(np.int64).max
    return np.where(found, 1.0 / (np.where(found, first, 0) + 1.0), np.nan)


def _mean(values: np.ndarray) -> float:
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if len(valid) else float("nan")


# --------------------------------------------------------------------------- metrics


def ndcg_at_k(scores: Any, relevance: Any, groups: Any, k: int | None, *, ties: Ties = "stable") -> float:
    """Mean NDCG@k over the groups with at least one relevant item (NaN when there is none).

    Gain ``2**rel - 1``, discount ``1/log2(pos + 1)``; rows with NaN relevance are ignored;
    ties in ``scores`` keep input order (``ties="stable"``) or rank the least relevant first
    (``ties="pessimistic"``).
    """
    return _mean(_ndcg_per_group(_Ranked.of(*_prepare(scores, relevance, groups), ties), k))


def mrr(
    scores: Any, relevance: Any, groups: Any, *, min_relevance: float | None = None, ties: Ties = "stable"
) -> float:
    """Mean reciprocal rank of each group's most relevant item (or first with ``rel >= min_relevance``)."""
    return _mean(_mrr_per_group(_Ranked.of(*_prepare(scores, relevance, groups), ties), min_relevance))


def ranking_report(
    frame: pd.DataFrame,
    score_col: str,
    relevance_col: str,
    group_col: str = "decision_id",
    ks: Sequence[int] = DEFAULT_KS,
    *,
    ties: Ties = "stable",
    misses: Misses = "skip",
) -> dict[str, float]:
    """``ndcg@k`` and ``hits@k`` for every k in ``ks``, ``mrr``, ``coverage`` and the counts of groups and rows.

    ``misses="zero"`` (the observed labels: a decision whose pick is not among the candidates) counts
    a group without a relevant item as 0 in every metric instead of leaving it out; ``coverage`` is
    the share of groups that have one. ``groups`` counts the groups with a relevant item,
    ``all_groups`` every group.
    """
    s, r, codes, n_groups = _prepare(frame[score_col], frame[relevance_col], frame[group_col])
    ranked = _Ranked.of(s, r, codes, n_groups, ties)
    mrr = _mrr_per_group(ranked, None)
    covered = ~np.isnan(mrr)

    def mean(values: np.ndarray) -> float:
        return _mean(np.where(np.isnan(values), 0.0, values)) if misses == "zero" else _mean(values)

    report: dict[str, float] = {f"ndcg@{k}": mean(_ndcg_per_group(ranked, k)) for k in ks}
    # hits@k: the (most) relevant item is in the top k; NaN for groups without one, like MRR.
    report |= {f"hits@{k}": mean(np.where(covered, (1.0 / np.where(covered, mrr, 1.0)) <= k + 1e-9, np.nan))
               for k in ks}
    report["mrr"] = mean(mrr)
    report["coverage"] = float(covered.mean()) if n_groups else float("nan")
    report["groups"] = int(np.count_nonzero(np.bincount(codes, weights=(r > 0).astype(np.float64), minlength=n_groups)))
    report["all_groups"] = int(n_groups)
    report["rows"] = len(s)
    return report


def ndcg_per_group(
    frame: pd.DataFrame, score_col: str, relevance_col: str, group_col: str = "decision_id", k: int | None = 5,
    *, ties: Ties = "stable", misses: Misses = "zero",
) -> np.ndarray:
    """NDCG@k of every group, in the order the groups first appear (misses as 0 or NaN)."""
    s, r, codes, n_groups = _prepare(frame[score_col], frame[relevance_col], frame[group_col])
    values = _ndcg_per_group(_Ranked.of(s, r, codes, n_groups, ties), k)
    return np.where(np.isnan(values), 0.0, values) if misses == "zero" else values


def paired_bootstrap(a: np.ndarray, b: np.ndarray, *, rounds: int = 2_000, seed: int = 0,
                     level: float = 0.95) -> dict[str, float]:
    """Mean of ``a - b`` over paired units (decisions) and its percentile bootstrap interval.

    Units are resampled with replacement, the same units for both, so the interval is that of the
    difference, not of two separate means. NaN pairs are dropped.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = ~(np.isnan(a) | np.isnan(b))
    diff = a[keep] - b[keep]
    if len(diff) == 0:
        return {"diff": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(rounds, len(diff)))].mean(axis=1)
    tail = (1 - level) / 2
    return {"diff": float(diff.mean()), "lo": float(np.quantile(means, tail)),
            "hi": float(np.quantile(means, 1 - tail)), "n": int(len(diff))}


# --------------------------------------------------------------------------- labels


def observed_relevance(frame: pd.DataFrame) -> pd.Series:
    """The observed graded label: 2 chosen and on time, 1 chosen otherwise, 0 not chosen (see the module docstring)."""
    chosen = frame["chosen"].fillna(0).astype("int64").to_numpy() == 1
    on_time = frame["outcome_completed_on_time"].fillna(0).astype("float64").to_numpy() == 1
    grade = np.where(chosen, np.where(on_time, 2, 1), 0)
    return pd.Series(grade, index=frame.index, name="relevance", dtype="int64")


def _utc_ns(values: Any) -> np.ndarray:
    """UTC instants as naive datetime64[ns]: numpy of a tz-aware Series is an object array of Timestamps."""
    return pd.Series(pd.to_datetime(values, utc=True)).dt.tz_convert(None).astype("datetime64[ns]").to_numpy()


def join_truth(
    frame: pd.DataFrame,
    truth_candidates: pd.DataFrame,
    columns: Sequence[str],
    *,
    tolerance: pd.Timedelta = TRUTH_TOLERANCE,
) -> pd.DataFrame:
    """The truth ``columns`` (plus ``assignment_seq``) for every row of ``frame``, aligned to its index; NaN if none.

    A frame decision (``task_id``, ``assigned_at``) takes the truth decision of the same task with the
    nearest ``assigned_at`` within ``tolerance``; rows then join on ``(task_id, assignment_seq, user_id)``.
    """
    missing = [c for c in [*TRUTH_KEYS, *columns] if c not in truth_candidates.columns]
    if missing:
        raise KeyError(f"truth candidates lack columns {missing}")
    rows = pd.DataFrame(
        {
            "task_id": frame["task_id"].astype(object).to_numpy(),
            "user_id": frame["user_id"].astype(object).to_numpy(),
            "t": _utc_ns(frame["assigned_at"]),
            "_row": np.arange(len(frame)),
        }
    )
    truth = pd.DataFrame(
        {
            "task_id": truth_candidates["task_id"].astype(object).to_numpy(),
            "user_id": truth_candidates["user_id"].astype(object).to_numpy(),
            "assignment_seq": truth_candidates["assignment_seq"].astype("int64").to_numpy(),
            "t": _utc_ns(truth_candidates["assigned_at"]),
            **{c: truth_candidates[c].to_numpy() for c in columns if c not in TRUTH_KEYS},
        }
    )
    decisions = rows[["task_id", "t"]].drop_duplicates().sort_values("t", kind="mergesort")
    truth_decisions = truth[["task_id", "assignment_seq", "t"]].drop_duplicates(["task_id", "assignment_seq"])
    matched = pd.merge_asof(
        decisions,
        truth_decisions.sort_values("t", kind="mergesort"),
        on="t",
        by="task_id",
        direction="nearest",
        tolerance=tolerance,
    ).dropna(subset=["assignment_seq"])
    matched["assignment_seq"] = matched["assignment_seq"].astype("int64")
    keyed = rows.merge(matched, on=["task_id", "t"], how="inner")
    values = [c for c in columns if c not in TRUTH_KEYS]
    joined = keyed.merge(
        truth.drop(columns="t").drop_duplicates(["task_id", "assignment_seq", "user_id"]),
        on=["task_id", "assignment_seq", "user_id"],
        how="inner",
    )
    out = pd.DataFrame(index=np.arange(len(frame)))
    out["assignment_seq"] = pd.Series(joined["assignment_seq"].to_numpy(), index=joined["_row"].to_numpy()).astype(
        "Int64"
    )
    for c in values:
        out[c] = pd.Series(joined[c].to_numpy(), index=joined["_row"].to_numpy())
    out.index = frame.index
    return out


def grade_within_groups(values: Any, groups: Any, levels: int = TRUTH_LEVELS) -> np.ndarray:
    """``floor(levels * below / (n - 1))`` per group (``below`` = count strictly lower); NaN values stay NaN."""
    df = pd.DataFrame({"g": np.asarray(groups), "u": np.asarray(values, dtype=np.float64)})
    by = df.groupby("g", sort=False)["u"]
    below = by.rank(method="min").to_numpy() - 1.0
    n = by.transform("count").to_numpy().astype(np.float64)
    grade = np.where(n > 1, np.floor_divide(levels * below, np.maximum(n - 1.0, 1.0)), 0.0)
    return np.where(np.isnan(df["u"].to_numpy()), np.nan, grade)


def truth_relevance(
    frame: pd.DataFrame,
    truth_candidates: pd.DataFrame,
    *,
    group_col: str = "decision_id",
    tolerance: pd.Timedelta = TRUTH_TOLERANCE,
    levels: int = TRUTH_LEVELS,
) -> pd.Series:
    """Graded relevance 0..``levels`` from the true utility within each group; NaN where the truth has no row."""
    utility = join_truth(frame, truth_candidates, ["utility"], tolerance=tolerance)["utility"]
    grade = grade_within_groups(utility.astype("float64").to_numpy(), frame[group_col].to_numpy(), levels)
    return pd.Series(grade, index=frame.index, name="truth_relevance", dtype="float64")


# --------------------------------------------------------------------------- baselines


def random_scores(frame: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Seeded uniform scores: the floor any ranker must clear."""
    return np.random.default_rng(seed).random(len(frame))


def least_loaded_scores(frame: pd.DataFrame) -> np.ndarray:
    """Fewest open estimated hours first, ties by fewest open tasks (missing counts as no open work).

    The score is minus the dense rank of ``(open_estimated_hours, open_tasks)`` over the frame, so equal
    pairs share a score and the lexicographic order holds inside every group.
    """
    hours = frame["open_estimated_hours"].astype("float64").fillna(0.0).to_numpy()
    tasks = frame["open_tasks"].astype("float64").fillna(0.0).to_numpy()
    if len(frame) == 0:
        return np.zeros(0)
    order = np.lexsort((tasks, hours))
    h, t = hours[order], tasks[order]
    dense = np.cumsum(np.r_[True, (h[1:] != h[:-1]) | (t[1:] != t[:-1])])
    scores = np.empty(len(frame))
    scores[order] = -dense.astype(np.float64)
    return scores


def skill_overlap_scores(frame: pd.DataFrame) -> np.ndarray:
    """The candidate's ``skill_match`` with the task (missing counts as 0)."""
    return frame["skill_match"].astype("float64").fillna(0.0).to_numpy()


def project_history_scores(
    frame: pd.DataFrame, history: pd.DataFrame, time_col: str = "assigned_at", label_col: str = "chosen"
) -> dict[str, np.ndarray]:
    """Two baselines from who was chosen on the task's project before each decision, counted online.

    * ``project_frequency``: how often the candidate was chosen on this project before (equal counts
      share a score);
    * ``project_last_assignee``: 1 for the candidate chosen last on this project before, else 0.

    ``history`` holds decisions of any time (earlier splits, this one, later ones): only its chosen
    rows strictly before each decision count, so nothing leaks from the decision itself or after it.
    """
    if frame.empty:
        return {"project_frequency": np.zeros(0), "project_last_assignee": np.zeros(0)}
    chosen = history.loc[history[label_col].astype(bool), ["project_id", "user_id", time_col]]
    chosen = chosen.dropna(subset=["project_id", "user_id"])
    t_chosen = pd.to_datetime(chosen[time_col], utc=True)
    t_frame = pd.to_datetime(frame[time_col], utc=True)
    # Events and queries in one sort: at equal times queries come first, so only strictly earlier events count.
    keys = pd.concat([chosen["project_id"].astype(str) + "\x1f" + chosen["user_id"].astype(str),
                      frame["project_id"].astype(str) + "\x1f" + frame["user_id"].astype(str)], ignore_index=True)
    both = pd.DataFrame({
        "key": keys,
        "t": pd.concat([t_chosen, t_frame], ignore_index=True),
        "event": np.r_[np.ones(len(chosen), dtype=np.int64), np.zeros(len(frame), dtype=np.int64)],
        "row": np.r_[np.full(len(chosen), -1), np.arange(len(frame))],
    }).sort_values(["key", "t", "event"], kind="mergesort")
    both["seen"] = both.groupby("key", sort=False)["event"].cumsum()
    queries = both[both["event"] == 0]
    frequency = np.zeros(len(frame))
    frequency[queries["row"].to_numpy()] = queries["seen"].to_numpy(dtype=np.float64)

    last = pd.DataFrame({"project_id": chosen["project_id"].astype(str).to_numpy(), "t": t_chosen.to_numpy(),
                         "last_user": chosen["user_id"].astype(str).to_numpy()}).sort_values("t", kind="mergesort")
    asked = pd.DataFrame({"project_id": frame["project_id"].astype(str).to_numpy(), "t": t_frame.to_numpy(),
                          "row": np.arange(len(frame))}).sort_values("t", kind="mergesort")
    matched = pd.merge_asof(asked, last, on="t", by="project_id", allow_exact_matches=False)
    is_last = np.zeros(len(frame))
    hit = matched["last_user"].to_numpy(dtype=object) == frame["user_id"].astype(str).to_numpy()[matched["row"]]
    is_last[matched["row"].to_numpy()] = hit.astype(np.float64)
    return {"project_frequency": frequency, "project_last_assignee": is_last}


BASELINES: dict[str, tuple[tuple[str, ...], Callable[[pd.DataFrame], np.ndarray]]] = {
    "least_loaded": (("open_estimated_hours", "open_tasks"), least_loaded_scores),
    "skill_overlap": (("skill_match",), skill_overlap_scores),
}


def baseline_score_columns(
    frame: pd.DataFrame, *, seed: int = 0, history: pd.DataFrame | None = None
) -> dict[str, np.ndarray]:
    """The scores of every baseline whose inputs ``frame`` (and ``history``) carry; ``random`` always."""
    scored: dict[str, np.ndarray] = {"random": random_scores(frame, seed)}
    for name, (needs, fn) in BASELINES.items():
        if all(c in frame.columns for c in needs):
            scored[name] = fn(frame)
    needs = ("project_id", "user_id", "assigned_at", "chosen")
    if history is not None and all(c in frame.columns for c in needs[:3]) and all(c in history for c in needs):
        scored.update(project_history_scores(frame, history))
    return scored


def baseline_reports(
    frame: pd.DataFrame,
    relevance_col: str,
    group_col: str = "decision_id",
    *,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = 0,
    ties: Ties = "stable",
    history: pd.DataFrame | None = None,
    misses: Misses = "skip",
    scores: dict[str, np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """``ranking_report`` of every baseline whose input columns are in ``frame`` (``random`` always).

    With ``history`` (decisions with ``project_id``, ``user_id``, ``assigned_at`` and ``chosen``), also
    the project baselines of ``project_history_scores``. ``scores``: ``baseline_score_columns`` already computed.
    """
    scored = scores if scores is not None else baseline_score_columns(frame, seed=seed, history=history)
    base = frame[[relevance_col, group_col]]
    return {
        name: ranking_report(base.assign(_score=s), "_score", relevance_col, group_col, ks, ties=ties, misses=misses)
        for name, s in scored.items()
    }
