"""Feature services, versioned per model: a model version is trained and served on exactly one of these.

Change what a model reads by adding ``*_v2``, never by editing a published version.
"""

from feast import FeatureService
from feature_views import (
    project_features,
    task_features,
    task_recommendations,
    user_activity_features,
    user_profile_features,
)
from on_demand_features import pair_affinity_features, task_urgency_features, user_capacity_features

_TASK_COLUMNS = [
    "priority",
    "estimated_hours",
    "age_hours",
    "due_in_hours",
    "has_parent",
    "has_dependency",
    "dependency_open",
    "is_assigned",
    "hours_logged",
    "times_reopened",
    "times_reassigned",
]
_PROJECT_COLUMNS = [
    "project_priority",
    "project_deadline_in_days",
    "project_size_tasks",
    "project_open_tasks",
    "project_overdue_open_tasks",
    "project_blocked_tasks",
    "project_open_estimated_hours",
    "project_velocity_7d",
    "project_on_time_rate_28d",
    "project_overdue_ratio",
    "project_reopen_rate_28d",
]

# v1's user activity, named one by one: features added to the view later belong to later versions.
_ACTIVITY_COLUMNS_V1 = [
    "open_tasks",
    "open_estimated_hours",
    "hours_logged_7d",
    "hours_logged_28d",
    "completed_28d",
    "completed_90d",
    "on_time_rate_28d",
    "on_time_rate_90d",
    "avg_slip_ratio_90d",
    "reassignments_90d",
]

# Both models read the same (task, user) pair; they are versioned apart so that either can change alone.
_PAIR_FEATURES = [
    user_profile_features[["seniority", "weekly_capacity_hours", "tenure_days"]],
    user_activity_features[_ACTIVITY_COLUMNS_V1],
    task_features[_TASK_COLUMNS],
    project_features[_PROJECT_COLUMNS],
    task_urgency_features,
    user_capacity_features,
]

task_assignment_v1 = FeatureService(
    name="task_assignment_v1",
    features=list(_PAIR_FEATURES),
    description="Features of one (task, candidate user) pair for the task-assignment ranker.",
    owner="ml-platform@maestro.example",
    tags={"model": "task_assignment", "version": "1"},
)

task_duration_v1 = FeatureService(
    name="task_duration_v1",
    features=list(_PAIR_FEATURES),
    description="Features of one (task, assignee) pair for the task-duration model.",
    owner="ml-platform@maestro.example",
    tags={"model": "task_duration", "version": "1"},
)

# v2: what real trackers carry. The v1 pair features plus the "is it recorded" flags of optional fields,
# the open work without estimates, and the history of the pair: the user on this project, for this
# reporter, on words like this title (``pair_affinity_features``, decayed to the request time).
_PAIR_FEATURES_V2 = [
    user_profile_features[["seniority", "weekly_capacity_hours", "tenure_days", "seniority_known", "capacity_known",
                           "skills_known"]],
    user_activity_features[[*_ACTIVITY_COLUMNS_V1, "open_unestimated_tasks"]],
    task_features[[*_TASK_COLUMNS, "estimate_known", "due_known", "required_skills_known"]],
    project_features[[*_PROJECT_COLUMNS, "project_deadline_known"]],
    task_urgency_features,
    user_capacity_features,
    pair_affinity_features,
]

task_assignment_v2 = FeatureService(
    name="task_assignment_v2",
    features=list(_PAIR_FEATURES_V2),
    description="Features of one (task, candidate user) pair for the task-assignment ranker, with the pair's "
                "project, reporter and title history.",
    owner="ml-platform@maestro.example",
    tags={"model": "task_assignment", "version": "2"},
)

task_duration_v2 = FeatureService(
    name="task_duration_v2",
    features=list(_PAIR_FEATURES_V2),
    description="Features of one (task, assignee) pair for the task-duration model, with the pair's project, "
                "reporter and title history.",
    owner="ml-platform@maestro.example",
    tags={"model": "task_duration", "version": "2"},
)

# What the product reads for a task: its recommended assignees with reasons and its duration forecast, as the
# serving champions scored them in the latest hour (score_open_tasks).
task_recommendations_v1 = FeatureService(
    name="task_recommendations_v1",
    features=[task_recommendations],
    description="Ranked assignees with reasons and the duration forecast of one open task, from the champions.",
    owner="ml-platform@maestro.example",
    tags={"model": "task_assignment,task_duration", "version": "1"},
)
