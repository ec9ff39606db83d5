"""Helpers shared by the ``@task`` functions of DAG files: failing fast on bad data, reading asset events."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from airflow.sdk.exceptions import AirflowFailException

T = TypeVar("T")


def fail_without_retry_on_bad_data(gate: Callable[..., T], *args: Any) -> T:
    """Run a validation gate; bad (or no) data stays bad, so a critical failure fails the task without retries."""
    # Imported when a task runs: the validation package pulls in Great Expectations, too heavy for DAG parsing.
    from maestro_ml.validation import DataValidationError, NoDataError

    try:
        return gate(*args)
    except (DataValidationError, NoDataError) as exc:
        raise AirflowFailException(str(exc)) from exc


def fail_without_retry_on_bad_params(resolve: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Read a run's Params; one that cannot be read (an impossible date, an inverted window) fails without retries.

    The Params' JSON schemas refuse most bad values when the run is triggered; what a schema cannot
    express (2026-02-30T09, an end before the start) is a ``ValueError`` here, which no retry fixes.
    """
    try:
        return resolve(*args, **kwargs)
    except ValueError as exc:
        raise AirflowFailException(f"bad Params: {exc}. Fix them and trigger a new run.") from exc


def asset_event_extras(triggering_asset_events: Mapping[Any, Any] | None, key: str) -> list[Any]:
    """Every ``extra[key]`` of the asset events that triggered this run (none for manual runs)."""
    values = []
    for events in (triggering_asset_events or {}).values():
        for event in events:
            value = (event.extra or {}).get(key)
            if value is not None:
                values.append(value)
    return values
