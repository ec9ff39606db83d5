"""The serving champions: resolved by alias once per run, loaded once, checked against their feature service.

A run resolves ``champion`` to a version at its start (``resolve_champions``) and loads exactly that version,
so a promotion or rollback takes effect at the next run and never halfway through one. The feature service a
version is served on is the one its training read (the version's ``feature_service`` tag, written at
registration; the model's spec for versions registered before the tag existed). A service that does not
provide every input of the version's signature is an error no retry fixes (``SignatureMismatch``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from maestro_ml.contracts.models import MODELS, model_spec
from maestro_ml.registry import FEATURE_SERVICE_TAG, model_inputs
from maestro_ml.registry.aliases import CHAMPION
from maestro_ml.settings import Settings, get_settings

log = logging.getLogger(__name__)


class SignatureMismatch(ValueError):
    """The champion's signature names inputs its feature service does not provide."""


@dataclass(frozen=True)
class Champion:
    model: str
    version: str
    feature_service: str

    def as_dict(self) -> dict[str, str]:
        return {"model": self.model, "version": self.version, "feature_service": self.feature_service}


def resolve_champions(settings: Settings | None = None) -> dict[str, Champion]:
    """The version ``champion`` points at now, per model that has one."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    settings = settings or get_settings()
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    found: dict[str, Champion] = {}
    for model, spec in MODELS.items():
        try:
            mv = client.get_model_version_by_alias(spec.registered_name, CHAMPION)
        except MlflowException:
            continue
        service = (mv.tags or {}).get(FEATURE_SERVICE_TAG) or spec.feature_service
        found[model] = Champion(model, str(mv.version), service)
    return found


def load_champion(champion: Champion, settings: Settings | None = None) -> Any:
    """The champion's pyfunc, loaded from the registry by its resolved version."""
    import mlflow

    settings = settings or get_settings()
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    uri = f"models:/{model_spec(champion.model).registered_name}/{champion.version}"
    log.info("loading %s champion v%s (%s)", champion.model, champion.version, uri)
    return mlflow.pyfunc.load_model(uri)


def check_signature(champion: Champion, pyfunc: Any, service_features: list[str]) -> list[str]:
    """The champion's inputs, all of which ``service_features`` must provide; raises ``SignatureMismatch``."""
    inputs = model_inputs(pyfunc)
    missing = sorted(set(inputs) - set(service_features))
    if missing:
        raise SignatureMismatch(
            f"{champion.model} champion v{champion.version} needs {len(missing)} input(s) that feature service "
            f"{champion.feature_service!r} does not provide ({', '.join(missing[:8])}): serve it on the service it "
            "was trained on, or promote a version trained on this one")
    return inputs
