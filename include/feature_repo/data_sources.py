"""Data sources: one directory of daily Parquet partitions per feature view, written by ``build_features``.

The location comes from ``maestro_ml.settings`` (``MAESTRO_FEATURES_URI``), so the embedded and the
server-backed environments read the same offline tables.
"""

from feast import FileSource
from feast.data_format import ParquetFormat

from maestro_ml.contracts.features import TIMESTAMP_COLUMN
from maestro_ml.contracts.scores import SCORES_TABLE
from maestro_ml.settings import get_settings, join_uri

_FEATURES_URI = get_settings().features_uri
_SCORES_URI = get_settings().scores_uri


def _source(view_name: str) -> FileSource:
    return FileSource(
        name=f"{view_name}_source",
        path=join_uri(_FEATURES_URI, view_name),
        file_format=ParquetFormat(),
        timestamp_field=TIMESTAMP_COLUMN,
        description=f"Offline table of {view_name}, partitioned by day (build_features).",
        owner="ml-platform@maestro.example",
    )


user_profile_source = _source("user_profile_features")
user_activity_source = _source("user_activity_features")
task_source = _source("task_features")
project_source = _source("project_features")
task_assignment_outcome_source = _source("historical_task_assignments")
user_project_source = _source("user_project_features")
project_assignment_source = _source("project_assignment_features")
user_reporter_source = _source("user_reporter_features")
task_text_source = _source("task_text_features")
user_text_source = _source("user_text_features")

# The scores score_open_tasks writes to the lake, one file per scoring hour; pushed to the online store by
# the same task (write_to_online_store), never materialized from here.
task_recommendation_source = FileSource(
    name=f"{SCORES_TABLE}_source",
    path=join_uri(_SCORES_URI, SCORES_TABLE),
    file_format=ParquetFormat(),
    timestamp_field=TIMESTAMP_COLUMN,
    description="Hourly scores of open tasks (score_open_tasks), partitioned by scoring hour.",
    owner="ml-platform@maestro.example",
)
