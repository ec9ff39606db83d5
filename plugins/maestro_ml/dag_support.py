"""Helpers for DAG files that need Airflow itself; like ``maestro_ml.assets``, only DAG files import this."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowFailException

T = TypeVar("T")

# A UTC date or instant a person types into a Param: 2026-11-10, 2026-11-10T09, 2026-11-10T09:30:00Z.
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}(T\d{2}(:\d{2}(:\d{2})?)?(Z|[+-]00:00)?)?$"


def fail_without_retry_on_bad_data(gate: Callable[..., T], *args: Any) -> T:
    """Run a validation gate; bad (or no) data stays bad, so a critical failure fails the task without retries."""
    from maestro_ml.validation import DataValidationError, NoDataError

    try:
        return gate(*args)
    except (DataValidationError, NoDataError) as exc:
        raise AirflowFailException(str(exc)) from exc


def asset_event_extras(triggering_asset_events: Mapping[Any, Any] | None, key: str) -> list[Any]:
    """Every ``extra[key]`` of the asset events that triggered this run (none for manual runs)."""
    values = []
    for events in (triggering_asset_events or {}).values():
        for event in events:
            value = (event.extra or {}).get(key)
            if value is not None:
                values.append(value)
    return values
