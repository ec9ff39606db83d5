"""Great Expectations gates for the hourly pipeline: events before they reach the lake's consumers, state after.

``validate_events`` and ``validate_state`` run GX suites (defined as code in
:mod:`maestro_ml.validation.suites`) and return a :class:`ValidationOutcome`;
``raise_for_critical`` turns a critical failure into a :class:`DataValidationError` that names
what failed and where the Data Docs are (``<reports_uri>/gx/data_docs/index.html``).

Great Expectations takes seconds to import, so it is imported on first validation, not here:
DAG files can import this package at parse time.
"""

from __future__ import annotations

from maestro_ml.validation.gates import validate_events, validate_features, validate_state
from maestro_ml.validation.outcome import DataValidationError, NoDataError, ValidationOutcome, raise_for_critical

__all__ = ["DataValidationError", "NoDataError", "ValidationOutcome", "raise_for_critical", "validate_events",
    "validate_features",
    "validate_state",
]
