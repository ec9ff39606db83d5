"""What a validation gate returns and raises: a verdict a DAG can act on and log.

Severity comes from each GX expectation's own ``severity`` (``critical`` or ``warning``);
``meta`` names the check class (``schema``, ``not_null``, ``unique``, ``accepted_values``,
``range``, ``referential_integrity``, ``volume``, ``freshness``, ``pii``), the contract column
it is about and the rule in words.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

SAMPLE_SIZE = 5


@dataclass
class ValidationOutcome:
    """The verdict of one gate run.

    ``success`` is False exactly when a critical expectation failed. ``critical_failures`` and
    ``warnings`` hold one dict per failed expectation: ``suite``, ``expectation_type``,
    ``column``, ``check``, ``severity``, ``rule``, ``summary`` and the GX figures behind it
    (``unexpected_count``, ``element_count``, ``observed_value``, ``sample`` of unexpected values,
    ``sample_rows`` with the ids of the rows holding them).
    """

    success: bool
    critical_failures: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    statistics: dict[str, Any]
    data_docs_path: str | None
    run_name: str = ""
    kind: str = ""
    data_docs_pages: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (for XCom, logs and reports)."""
        return jsonable(asdict(self))

    def describe(self, limit: int = 20) -> str:
        """A few lines a human reads in a task log."""
        lines = [
            f"{self.kind or 'validation'} run {self.run_name!r}: "
            f"{'PASSED' if self.success else 'FAILED'} "
            f"({len(self.critical_failures)} critical, {len(self.warnings)} warning)"
        ]
        for label, failures in (("CRITICAL", self.critical_failures), ("WARNING", self.warnings)):
            for f in failures[:limit]:
                lines.append(f"  {label} {format_failure(f)}")
            if len(failures) > limit:
                lines.append(f"  ... and {len(failures) - limit} more {label.lower()} failures")
        if self.data_docs_path:
            lines.append(f"  Data Docs: {self.data_docs_path}")
        return "\n".join(lines)


def format_failure(failure: dict[str, Any]) -> str:
    where = failure["suite"] + (f".{failure['column']}" if failure.get("column") else "")
    return f"[{failure.get('check', '?')}] {where} {failure['expectation_type']}: {failure['summary']}"


class NoDataError(ValueError):
    """There is nothing to work on (a window without any rows): a retry cannot change that."""


class DataValidationError(Exception):
    """A critical expectation failed: the data must not move on."""

    def __init__(self, outcome: ValidationOutcome) -> None:
        self.outcome = outcome
        failures = outcome.critical_failures
        lines = [
            f"{outcome.kind or 'data'} validation {outcome.run_name!r} failed: "
            f"{len(failures)} critical expectation(s) failed"
        ]
        lines += [f"  - {format_failure(f)}" for f in failures[:25]]
        if len(failures) > 25:
            lines.append(f"  - ... and {len(failures) - 25} more")
        if outcome.warnings:
            lines.append(f"  ({len(outcome.warnings)} warning(s) as well)")
        docs = outcome.data_docs_path or outcome.statistics.get("data_docs_error") or "not built"
        lines.append(f"  Data Docs: {docs}")
        super().__init__("\n".join(lines))


def raise_for_critical(outcome: ValidationOutcome) -> ValidationOutcome:
    """Raise :class:`DataValidationError` if a critical expectation failed; return ``outcome`` otherwise."""
    if not outcome.success:
        raise DataValidationError(outcome)
    return outcome


def jsonable(value: Any) -> Any:
    """``value`` with timestamps, numpy scalars, NaN/NA and enums turned into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, pd.Timestamp | dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, int):
        return value
    if hasattr(value, "value") and isinstance(value.value, str):  # enums (FailureSeverity)
        return value.value
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _exception_message(exception_info: Any) -> str | None:
    if not exception_info:
        return None
    if isinstance(exception_info, dict) and "raised_exception" in exception_info:
        infos: Iterable[Any] = [exception_info]
    elif isinstance(exception_info, dict):
        infos = exception_info.values()
    else:
        return None
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            return str(info.get("exception_message"))
    return None


def _sample_rows(result: dict[str, Any], frame: pd.DataFrame | None, id_columns: Iterable[str]) -> list[dict[str, Any]]:
    """The ids (``id_columns``) of the first unexpected rows, from GX's row positions."""
    positions = (result.get("partial_unexpected_index_list") or [])[:SAMPLE_SIZE]
    columns = [c for c in id_columns if frame is not None and c in frame.columns]
    if frame is None or not columns or not positions or not all(isinstance(p, int | np.integer) for p in positions):
        return []
    return jsonable(frame.loc[list(positions), columns].to_dict("records"))


def _summary(result: dict[str, Any], kwargs: dict[str, Any], error: str | None, rows: list[dict[str, Any]]) -> str:
    if error:
        return f"could not be evaluated: {error}"
    if "unexpected_count" in result:
        count = result.get("unexpected_count") or 0
        total = result.get("element_count")
        pct = result.get("unexpected_percent")
        text = f"{count} of {total} rows unexpected" + (f" ({pct:.3g}%)" if isinstance(pct, float) else "")
        sample = result.get("partial_unexpected_list") or []
        if sample:
            text += f", e.g. {jsonable(sample[:SAMPLE_SIZE])}"
        if rows:
            shown = [c for c in rows[0] if c != kwargs.get("column")] or list(rows[0])
            text += f"; {shown[0]} {[r.get(shown[0]) for r in rows]}"
        return text
    bounds = {k: jsonable(kwargs[k]) for k in ("min_value", "max_value", "value_set") if kwargs.get(k) is not None}
    return f"observed {jsonable(result.get('observed_value'))}, expected {bounds or 'otherwise'}"


def failures_from(
    suite_name: str, suite_result: Any, frame: pd.DataFrame | None = None, id_columns: Iterable[str] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(critical, warning) failure dicts of one GX ``ExpectationSuiteValidationResult``.

    ``frame`` is the validated DataFrame and ``id_columns`` the columns that identify its rows:
    the failure's ``sample_rows`` give them for the first unexpected rows.
    """
    critical: list[dict[str, Any]] = []
    warning: list[dict[str, Any]] = []
    for r in suite_result.results:
        if r.success:
            continue
        config = r.expectation_config
        meta = dict(config.meta or {})
        kwargs = dict(config.kwargs or {})
        severity = getattr(getattr(config, "severity", None), "value", None) or meta.get("severity") or "critical"
        result = dict(r.result or {})
        error = _exception_message(r.exception_info)
        rows = _sample_rows(result, frame, id_columns)
        failure = {
            "suite": suite_name,
            "expectation_type": config.type,
            "column": meta["column"] if "column" in meta else kwargs.get("column"),
            "check": meta.get("check"),
            "severity": severity,
            "rule": meta.get("rule"),
            "summary": _summary(result, kwargs, error, rows),
            "unexpected_count": jsonable(result.get("unexpected_count")),
            "element_count": jsonable(result.get("element_count")),
            "observed_value": jsonable(result.get("observed_value")),
            "sample": jsonable((result.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]),
            "sample_rows": rows,
        }
        if error:
            failure["error"] = error
        (warning if severity in ("warning", "info") else critical).append(failure)
    return critical, warning
