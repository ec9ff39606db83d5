"""Feature views: built from the contract in ``maestro_ml.contracts.features`` so names, types and TTLs live in one place."""

from data_sources import (
    project_assignment_source,
    project_source,
    task_assignment_outcome_source,
    task_recommendation_source,
    task_source,
    task_text_source,
    user_activity_source,
    user_profile_source,
    user_project_source,
    user_reporter_source,
    user_text_source,
)
from entities import project, reporter, task, user
from feast import FeatureView, Field
from feast.types import Array, Float32, Float64, Int64, String

from maestro_ml.contracts.features import (
    ASSIGNMENTS,
    OWNER,
    PROJECT,
    PROJECT_ASSIGNMENTS,
    TASK,
    TASK_TEXT,
    USER_ACTIVITY,
    USER_PROFILE,
    USER_PROJECT,
    USER_REPORTER,
    USER_TEXT,
    View,
)
from maestro_ml.contracts.scores import TASK_RECOMMENDATIONS

_TYPES = {"Int64": Int64, "Float32": Float32, "Float64": Float64, "String": String, "Array(Float32)": Array(Float32),
          "Array(Float64)": Array(Float64), "Array(String)": Array(String)}


def _view(spec: View, entities: list, source) -> FeatureView:
    return FeatureView(
        name=spec.name,
        entities=entities,
        ttl=spec.ttl,
        schema=[Field(name=f.name, dtype=_TYPES[f.dtype], description=f.description) for f in spec.features],
        source=source,
        online=True,
        description=spec.description,
        owner=f"{OWNER}@maestro.example",
        tags={"team": OWNER, "cadence": spec.cadence},
    )


user_profile_features = _view(USER_PROFILE, [user], user_profile_source)
user_activity_features = _view(USER_ACTIVITY, [user], user_activity_source)
task_features = _view(TASK, [task], task_source)
project_features = _view(PROJECT, [project], project_source)
historical_task_assignments = _view(ASSIGNMENTS, [task, user], task_assignment_outcome_source)
user_project_features = _view(USER_PROJECT, [user, project], user_project_source)
project_assignment_features = _view(PROJECT_ASSIGNMENTS, [project], project_assignment_source)
user_reporter_features = _view(USER_REPORTER, [user, reporter], user_reporter_source)
task_text_features = _view(TASK_TEXT, [task], task_text_source)
user_text_features = _view(USER_TEXT, [user], user_text_source)
task_recommendations = _view(TASK_RECOMMENDATIONS, [task], task_recommendation_source)
