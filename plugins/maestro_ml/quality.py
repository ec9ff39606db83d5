"""The blocking data-quality gates of ``ingest_events``: Great Expectations on the staged hour and on state.

``validate_staged_hour`` runs between dedupe and commit, so an hour that fails a critical
expectation is never committed: the lake keeps its previous contents and the task fails
loudly. Warnings travel on into the hour's manifest.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pyarrow.parquet as pq

from maestro_ml.lake import as_hour, hour_key, list_manifests, read_state
from maestro_ml.settings import Settings, get_settings
from maestro_ml.validation import raise_for_critical, validate_events, validate_state

log = logging.getLogger(__name__)

STATE_TABLES = ("users", "teams", "projects", "tasks")
KNOWN_ID_COLUMNS = {"users": "user_id", "projects": "project_id", "tasks": "task_id"}
VOLUME_HISTORY_HOURS = 24


def _warning_lines(warnings: list[dict[str, Any]]) -> list[str]:
    return [f"validation: [{w.get('check')}] {w.get('suite')}.{w.get('column')}: {w.get('summary')}" for w in warnings]


def validate_staged_hour(deduped: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Validate the staged, deduplicated hour; raise ``DataValidationError`` on a critical failure.

    Returns the step dict with the GX warnings appended to ``warnings`` and a ``validation`` summary.
    """
    settings = settings or get_settings()
    hour = as_hour(deduped["hour"])
    tables = {event_type: pq.read_table(uri) for event_type, uri in deduped["staged_events"].items()}
    history = list_manifests(settings.lake_uri, hour - timedelta(hours=VOLUME_HISTORY_HOURS), hour)
    known_ids = {
        entity: read_state(settings.lake_uri, entity).column(column) for entity, column in KNOWN_ID_COLUMNS.items()
    }
    outcome = validate_events(
        tables,
        hour,
        hour + timedelta(hours=1),
        trailing_volumes=[int(m["rows_valid"]) for m in history],
        known_ids=known_ids,
        settings=settings,
        run_name=f"ingest_events-{hour_key(hour)}",
    )
    log.info("Great Expectations Data Docs for this hour: %s", outcome.data_docs_path)
    for line in _warning_lines(outcome.warnings):
        log.warning(line)
    raise_for_critical(outcome)
    return {
        **deduped,
        "warnings": [*deduped.get("warnings", []), *_warning_lines(outcome.warnings)],
        "validation": {"data_docs_path": outcome.data_docs_path, "warnings": len(outcome.warnings)},
    }


def validate_current_state(hour: str, settings: Settings | None = None) -> dict[str, Any]:
    """Validate the current-state tables after an hour was folded in; raise on a critical failure."""
    settings = settings or get_settings()
    state = {name: read_state(settings.lake_uri, name) for name in STATE_TABLES}
    outcome = validate_state(state, settings=settings, run_name=f"state-{hour_key(as_hour(hour))}")
    log.info("Great Expectations Data Docs for state: %s", outcome.data_docs_path)
    for line in _warning_lines(outcome.warnings):
        log.warning(line)
    raise_for_critical(outcome)
    return {"data_docs_path": outcome.data_docs_path, "warnings": len(outcome.warnings),
            "rows": {name: table.num_rows for name, table in state.items()}}
