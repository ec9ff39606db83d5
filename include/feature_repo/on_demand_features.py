"""On-demand feature views: request-time features that depend on *when* a task is scored or on a (task, user) pair.

Python mode (dicts of lists) because scoring requests are small and latency-bound: no pandas per call.
Inputs may be missing (an entity without a row inside its TTL): the outputs are then None.
"""

from feast import Field, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64
from feature_views import (
    project_assignment_features,
    task_features,
    task_text_features,
    user_activity_features,
    user_profile_features,
    user_project_features,
    user_reporter_features,
    user_text_features,
)

from maestro_ml.contracts.features import AFFINITY_HALF_LIFE, OWNER, REQUEST_TIME_FIELD

# Feast compares an on-demand view's declared fields with the ones it infers, descriptions included, so the
# output fields carry none; the catalog takes them from here.
OUTPUT_DESCRIPTIONS = {
    "due_in_hours_now": "Hours until due at request time.",
    "age_hours_now": "Hours since creation at request time.",
    "remaining_estimate_hours": "Estimate minus hours logged, >= 0.",
    "urgency_ratio": "Remaining estimate / hours left until due (>= 0.5).",
    "is_overdue": "1 when the due time has passed at request time.",
    "free_capacity_hours": "Weekly capacity minus open estimated work.",
    "capacity_after_task_hours": "Free capacity minus the task's estimate.",
    "load_ratio": "Open estimated work / weekly capacity.",
    "skill_match": "Cosine of the user's skills and the task's needs.",
    "up_assignments_all": "Tasks of this project assigned to the user, all time (0: never).",
    "up_completions_all": "Tasks of this project the user completed, all time.",
    "up_assignments_recent": "The user's assignments on this project, decayed to the request time.",
    "up_days_since_active": "Days since the user last took or finished a task of this project (null: never).",
    "up_share_recent": "The user's share of the project's recent assignments (both decayed to the request time).",
    "ur_assignments_all": "Tasks filed by this reporter assigned to the user, all time.",
    "ur_completions_all": "Tasks filed by this reporter the user completed, all time.",
    "ur_assignments_recent": "The user's assignments of this reporter's tasks, decayed to the request time.",
    "title_similarity": "Cosine of the task's title vector and the user's title profile (null without either).",
    "title_profile_tasks_all": "Tasks in the user's title profile (0: none yet).",
}

# The transformation is serialised into the registry and runs without this module, so the decay's
# half-life is written into it as a number; this keeps the number and the contract equal.
if AFFINITY_HALF_LIFE.total_seconds() != 2_592_000.0:
    raise ValueError("pair_affinity_features' half-life (30 days) differs from contracts.features.AFFINITY_HALF_LIFE")

scoring_request = RequestSource(
    name="scoring_request",
    schema=[Field(name=REQUEST_TIME_FIELD, dtype=Int64, description="When the request is made, epoch seconds UTC.")],
    description="Request-time context of a scoring or training row.",
)


@on_demand_feature_view(
    sources=[task_features, scoring_request],
    schema=[
        Field(name="due_in_hours_now", dtype=Float64),
        Field(name="age_hours_now", dtype=Float64),
        Field(name="remaining_estimate_hours", dtype=Float64),
        Field(name="urgency_ratio", dtype=Float64),
        Field(name="is_overdue", dtype=Int64),
    ],
    mode="python",
    description="Time to due against the remaining estimate, at the moment of the request.",
    owner=f"{OWNER}@maestro.example",
    tags={"team": OWNER},
)
def task_urgency_features(inputs: dict) -> dict:
    out: dict = {"due_in_hours_now": [], "age_hours_now": [], "remaining_estimate_hours": [], "urgency_ratio": [],
                 "is_overdue": []}
    for now, due, created, estimate, logged in zip(
        inputs["request_time_unix"], inputs["due_at_unix"], inputs["created_at_unix"], inputs["estimated_hours"],
        inputs["hours_logged"], strict=True,
    ):
        if now is None or due is None or created is None or estimate is None:
            for key in out:
                out[key].append(None)
            continue
        due_in = (due - now) / 3600.0
        remaining = max(float(estimate) - float(logged or 0.0), 0.0)
        out["due_in_hours_now"].append(due_in)
        out["age_hours_now"].append(max((now - created) / 3600.0, 0.0))
        out["remaining_estimate_hours"].append(remaining)
        out["urgency_ratio"].append(remaining / max(due_in, 0.5))
        out["is_overdue"].append(1 if due_in < 0 else 0)
    return out


@on_demand_feature_view(
    sources=[user_profile_features, user_activity_features, task_features],
    schema=[
        Field(name="free_capacity_hours", dtype=Float64),
        Field(name="capacity_after_task_hours", dtype=Float64),
        Field(name="load_ratio", dtype=Float64),
        Field(name="skill_match", dtype=Float64),
    ],
    mode="python",
    description="Whether a user has room for a task and the skills it needs.",
    owner=f"{OWNER}@maestro.example",
    tags={"team": OWNER},
)
def user_capacity_features(inputs: dict) -> dict:
    import math
    import operator

    # Pair skill_<x> with requires_<x> by name, in name order: the sum's order must not depend on the
    # order of the input columns, which differs between online, Feast's offline join and ours.
    # The function is serialised into the registry, so it must not need maestro_ml (or this module) to run.
    user_skills = sorted(k for k in inputs if k.startswith("skill_"))
    task_skills = ["requires_" + k[len("skill_"):] for k in user_skills]

    out: dict = {"free_capacity_hours": [], "capacity_after_task_hours": [], "load_ratio": [], "skill_match": []}
    skills = list(zip(*(inputs[name] for name in user_skills), strict=True))
    needs = list(zip(*(inputs[name] for name in task_skills), strict=True))
    for capacity, load, estimate, have, need in zip(
        inputs["weekly_capacity_hours"], inputs["open_estimated_hours"], inputs["estimated_hours"], skills, needs,
        strict=True,
    ):
        free = None if capacity is None else float(capacity) - float(load or 0.0)
        out["free_capacity_hours"].append(free)
        out["capacity_after_task_hours"].append(None if free is None or estimate is None else free - float(estimate))
        out["load_ratio"].append(None if not capacity else float(load or 0.0) / float(capacity))
        if None in have or None in need:
            out["skill_match"].append(None)
            continue
        # map/hypot rather than generator expressions: this runs per row, over millions of training rows.
        dot = sum(map(operator.mul, have, need))
        norm = math.hypot(*have) * math.hypot(*need)
        out["skill_match"].append(dot / norm if norm > 0 else 0.0)
    return out


@on_demand_feature_view(
    sources=[user_project_features, project_assignment_features, user_reporter_features, task_text_features,
             user_text_features, scoring_request],
    schema=[
        Field(name="up_assignments_all", dtype=Int64),
        Field(name="up_completions_all", dtype=Int64),
        Field(name="up_assignments_recent", dtype=Float64),
        Field(name="up_days_since_active", dtype=Float64),
        Field(name="up_share_recent", dtype=Float64),
        Field(name="ur_assignments_all", dtype=Int64),
        Field(name="ur_completions_all", dtype=Int64),
        Field(name="ur_assignments_recent", dtype=Float64),
        Field(name="title_similarity", dtype=Float64),
        Field(name="title_profile_tasks_all", dtype=Int64),
    ],
    mode="python",
    description="How much a user worked on this project, for this reporter and on words like this title, as of "
                "the request: the history views' counts decayed to the request time, and a title cosine.",
    owner=f"{OWNER}@maestro.example",
    tags={"team": OWNER},
)
def pair_affinity_features(inputs: dict) -> dict:
    import numpy as np

    half_life = 2_592_000.0  # AFFINITY_HALF_LIFE, in seconds
    now = np.array([np.nan if v is None else float(v) for v in inputs["request_time_unix"]])

    def numbers(name: str) -> np.ndarray:
        return np.array([np.nan if v is None else float(v) for v in inputs[name]])

    def decayed(value: str, at: str) -> np.ndarray:
        # A pair without a row never happened: 0, not unknown.
        values, stamps = numbers(value), numbers(at)
        out = values * np.exp2(-np.maximum(now - stamps, 0.0) / half_life)
        return np.where(np.isnan(values), 0.0, out)

    def counts(name: str) -> list:
        return [0 if v is None else int(v) for v in inputs[name]]

    up_recent = decayed("up_assignments_decayed", "up_last_active_unix")
    project_recent = decayed("project_assignments_decayed", "project_last_assigned_unix")
    last = numbers("up_last_active_unix")
    since = (now - last) / 86400.0
    share = np.divide(up_recent, project_recent, out=np.zeros_like(up_recent), where=project_recent > 0)

    def arrays(lists: dict) -> dict:
        # id -> (float64 array, its norm) of distinct lists, converted in one call when they have one length.
        try:
            matrix = np.array(list(lists.values()), dtype=np.float64)
        except ValueError:  # lists of different lengths
            matrix = None
        if matrix is None or matrix.ndim != 2:
            rows = [np.asarray(v, dtype=np.float64) for v in lists.values()]
        else:
            rows = list(matrix)
        return {key: (row, np.linalg.norm(row)) for key, row in zip(lists, rows, strict=True)}

    # Rows in blocks (bounded memory for training sets); in a block each distinct list is converted once (an
    # online request repeats its task's vector on every candidate row). Dot products and norms stay 1-D and
    # per row as before, so the values are the same to the bit.
    vectors, profiles = inputs["title_vector"], inputs["title_profile"]
    similarity: list = [None] * len(vectors)
    pairs = [i for i, (v, p) in enumerate(zip(vectors, profiles, strict=True)) if v is not None and p is not None]
    for start in range(0, len(pairs), 1024):
        block = pairs[start : start + 1024]
        vector_arrays = arrays({id(vectors[i]): vectors[i] for i in block})
        profile_arrays = arrays({id(profiles[i]): profiles[i] for i in block})
        for i in block:
            (a, a_norm), (b, b_norm) = vector_arrays[id(vectors[i])], profile_arrays[id(profiles[i])]
            norm = float(a_norm * b_norm)
            similarity[i] = float(a @ b) / norm if norm > 0 else None

    def floats(values: np.ndarray) -> list:
        return [None if v != v else v for v in values.tolist()]  # NaN -> None (v != v: NaN, without a ufunc call)

    return {
        "up_assignments_all": counts("up_assignments"),
        "up_completions_all": counts("up_completions"),
        "up_assignments_recent": floats(up_recent),
        "up_days_since_active": floats(np.where(np.isnan(last), np.nan, np.maximum(since, 0.0))),
        "up_share_recent": floats(share),
        "ur_assignments_all": counts("ur_assignments"),
        "ur_completions_all": counts("ur_completions"),
        "ur_assignments_recent": floats(decayed("ur_assignments_decayed", "ur_last_active_unix")),
        "title_similarity": similarity,
        "title_profile_tasks_all": counts("title_profile_tasks"),
    }
