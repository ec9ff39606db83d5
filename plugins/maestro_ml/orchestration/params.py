"""Params the DAGs share, built the way Airflow's ``example_params_ui_tutorial.py`` shows.

Each Param has a ``title`` and, where the form groups them, a ``section``. Days carry
``format: "date"``, so the trigger form shows a date picker. Hours and instants carry a pattern
and no ``format``: JSON Schema's ``date-time`` is RFC 3339 (``2026-11-10T09:00:00Z``) and refuses
the short forms people type into the REST API (``2026-11-10T09``, ``2026-11-15``), and whether it
is enforced at all depends on an optional package (``rfc3339-validator``, which e.g. moto's server
brings): the same trigger would pass on one deployment and be refused on another.
Choices are ``enum``s.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

# Real calendar fields (month 13, April 31 or hour 25 are refused by the trigger form and the REST API,
# which validate Params against their JSON schema when a run is created). What a pattern cannot see,
# February 29 of a common year, ``format: date`` catches for days (jsonschema checks it); for an
# hour or an instant the first task refuses it, without retries
# (``maestro_ml.orchestration.tasks.fail_without_retry_on_bad_params``).
_DAY = (r"\d{4}-((0[13578]|1[02])-(0[1-9]|[12]\d|3[01])|(0[469]|11)-(0[1-9]|[12]\d|30)"
        r"|02-(0[1-9]|1\d|2\d))")
_HOUR = r"([01]\d|2[0-3])"
# A UTC day, as the date picker writes it.
DAY_PATTERN = rf"^{_DAY}$"
# A UTC day or instant: 2026-11-10, 2026-11-10T09, 2026-11-10T09:30, 2026-11-10T09:30:00.000Z.
INSTANT_PATTERN = rf"^{_DAY}([T ]{_HOUR}(:[0-5]\d(:[0-5]\d(\.\d+)?)?)?(Z|[+-]00:00)?)?$"
# One ingest hour: 2026-11-10T09.
HOUR_PATTERN = rf"^{_DAY}T{_HOUR}$"


def day_param(title: str, description: str, *, section: str | None = None) -> Param:
    """An optional UTC day (``YYYY-MM-DD``): a date picker in the trigger form."""
    return Param(None, type=["null", "string"], format="date", pattern=DAY_PATTERN, title=title,
                 description=description, **_section(section))


def instant_param(title: str, description: str, *, section: str | None = None) -> Param:
    """An optional UTC instant (or day), e.g. ``2026-11-10T09:30:00Z`` or ``2026-11-10``."""
    return Param(None, type=["null", "string"], pattern=INSTANT_PATTERN, title=title,
                 description=description, **_section(section))


def hour_param(title: str, description: str, *, section: str | None = None) -> Param:
    """An optional UTC ingest hour (``YYYY-MM-DDTHH``)."""
    return Param(None, type=["null", "string"], pattern=HOUR_PATTERN, title=title,
                 description=description, **_section(section))


def _section(section: str | None) -> dict[str, Any]:
    return {"section": section} if section else {}


def training_params() -> dict[str, Param]:
    """The Params of both training DAGs: the time-split window, the set size and the training overrides."""
    window, training = "Data window", "Training"
    return {
        "end": instant_param(
            "Window end",
            "End of the data window (UTC, exclusive). Empty: the run's data interval end, so the weekly run "
            "trains on the week just closed.",
            section=window,
        ),
        "train_days": Param(7, type="number", minimum=0.25, maximum=3660, title="Training days",
                            description="Days of training decisions, before validation and test", section=window),
        "valid_days": Param(2, type="number", minimum=0.25, maximum=366, title="Validation days",
                            description="Days after training: early stopping, ensemble weight, interval calibration",
                            section=window),
        "test_days": Param(2, type="number", minimum=0.25, maximum=366, title="Test days",
                           description="Days at the end of the window, evaluated once", section=window),
        "max_rows": Param(None, type=["null", "integer"], minimum=100, title="Row cap",
                          description="Cap on training rows: whole decisions drawn at random, so a years-long window keeps its "
                                      "time profile; empty: no cap",
                          section=training),
        "add_chosen": Param(False, type="boolean", title="Add the assignee to the training candidates",
                            description="Ranker only: where the candidate rule missed a decision's assignee, add them "
                                        "to the training set's candidates (validation and test never get them)",
                            section=training),
        "epochs": Param(30, type="integer", minimum=1, maximum=500, title="PyTorch epochs",
                        description="Most epochs of the PyTorch models (early stopping may end sooner)",
                        section=training),
        "min_groups": Param(20, type="integer", minimum=1, title="Fewest decisions per split",
                            description="The training-set gate fails when a split holds fewer decisions",
                            section=training),
        "hyperparameters": Param(
            {}, type="object", title="Hyperparameter overrides", section=training,
            description='Training CLI flags without the dashes, e.g. {"lgb-num-leaves": 63, "learning-rate": 0.001}; '
                        "checked against the model's flags before anything is built",
        ),
    }
