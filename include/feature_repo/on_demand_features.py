"""On-demand feature views: request-time features that depend on *when* a task is scored or on a (task, user) pair.

Python mode (dicts of lists) because scoring requests are small and latency-bound: no pandas per call.
Inputs may be missing (an entity without a row inside its TTL): the outputs are then None.
"""

from feast import Field, RequestSource
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64
from feature_views import task_features, user_activity_features, user_profile_features

from maestro_ml.contracts.features import OWNER, REQUEST_TIME_FIELD

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
}

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
