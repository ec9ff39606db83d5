"""The Assets that chain Maestro DAGs, defined once. Producers list them as outlets, consumers schedule on them.

This module imports the Airflow SDK, so only DAG files import it (never ``maestro_ml.training``).
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

# Raw product events in the landing zone, written by the product (and by simulate_activity in the demo).
LANDING_EVENTS = Asset(name="landing_events", uri="maestro://landing/events", group="ingestion")
# Typed, deduplicated, PII-masked and validated events plus current-state tables in the lake.
LAKE_EVENTS = Asset(name="lake_events", uri="maestro://lake/events", group="ingestion")
# What ingest_events lists as its outlet: through the alias a run emits a lake_events event only when a day closed
# or an earlier day changed (a plain outlet emits one on every success, and build_features would run every hour).
LAKE_EVENTS_UPDATES = AssetAlias(name="lake_events_updates", group="ingestion")
# Point-in-time feature tables in the offline store (one directory per Feast feature view).
OFFLINE_FEATURES = Asset(name="offline_features", uri="maestro://features/offline", group="features")
# The latest feature values in the Feast online store, for scoring.
ONLINE_FEATURES = Asset(name="online_features", uri="maestro://features/online", group="features")
# Registered model versions (alias "challenger"), one Asset per model.
TASK_ASSIGNMENT_MODEL = Asset(name="task_assignment_model", uri="maestro://models/task_assignment", group="models")
TASK_DURATION_MODEL = Asset(name="task_duration_model", uri="maestro://models/task_duration", group="models")
# The serving version of each model: an event whenever its `champion` alias moves (promotion or rollback).
TASK_ASSIGNMENT_CHAMPION = Asset(name="task_assignment_champion", uri="maestro://models/task_assignment/champion",
                                 group="models")
TASK_DURATION_CHAMPION = Asset(name="task_duration_champion", uri="maestro://models/task_duration/champion",
                               group="models")
CHAMPIONS = {"task_assignment": TASK_ASSIGNMENT_CHAMPION, "task_duration": TASK_DURATION_CHAMPION}
MODEL_ASSETS = {"task_assignment": TASK_ASSIGNMENT_MODEL, "task_duration": TASK_DURATION_MODEL}
# Each open task's ranked assignees and duration forecast from the champions, in the lake and the online store.
TASK_SCORES = Asset(name="task_scores", uri="maestro://scores/task_recommendations", group="scores")
# A monitoring rule fired for a champion: the event's extra names the model, the rule and its figures; the
# training DAGs run on it (besides weekly), each taking only the requests for its own model.
RETRAINING_REQUESTED = Asset(name="retraining_requested", uri="maestro://models/retraining_requested",
                             group="monitoring")
