"""The serving aliases of a registered model, moved by check-and-set under a lock.

``champion`` serves; ``previous_champion`` is the version it replaced (the target of a rollback);
``challenger`` is the newest trained version (set by the training DAGs). MLflow moves one alias in one
call and an alias names one version, so the registry can never hold two champions; the order of the
writes (first ``previous_champion``, then ``champion``) means it is never without one once it had one.

A move is decided on the state read when the deciding run started (``expected``). Under an exclusive
lock it re-reads the aliases and refuses (``AliasChanged``) if the champion moved in the meantime: a
second promotion racing the first, or a rollback, never gets overwritten by a decision taken on stale
state. The lock is a file lock under ``MAESTRO_HOME`` (one host: ``make up``, ``make demo``, tests);
the ``promote_models`` DAG also runs one at a time (``max_active_runs=1``), which covers the cluster.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from maestro_ml.contracts.models import model_spec
from maestro_ml.registry import CHALLENGER
from maestro_ml.settings import Settings, get_settings

log = logging.getLogger(__name__)

CHAMPION = "champion"
PREVIOUS_CHAMPION = "previous_champion"


class AliasChanged(RuntimeError):
    """The champion moved after the deciding run read it: the decision is stale and nothing was changed."""


class NothingToRollBack(ValueError):
    """A rollback needs a ``previous_champion``; none exists (no promotion has replaced a champion yet)."""


@dataclass(frozen=True)
class AliasState:
    champion: str | None
    previous_champion: str | None
    challenger: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {CHAMPION: self.champion, PREVIOUS_CHAMPION: self.previous_champion, CHALLENGER: self.challenger}


def _client(settings: Settings) -> MlflowClient:
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri)


def _alias(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def alias_state(model: str, settings: Settings | None = None) -> AliasState:
    """The versions the serving aliases point at now (None: the alias is not set)."""
    settings = settings or get_settings()
    client = _client(settings)
    name = model_spec(model).registered_name
    return AliasState(_alias(client, name, CHAMPION), _alias(client, name, PREVIOUS_CHAMPION),
                      _alias(client, name, CHALLENGER))


@contextlib.contextmanager
def registry_lock(model: str, settings: Settings | None = None) -> Iterator[None]:
    """Exclusive, blocking, per model: the alias moves of every process on this host take turns."""
    settings = settings or get_settings()
    path = Path(settings.home, "locks", f"registry-{model}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check(model: str, now: AliasState, expected: AliasState) -> None:
    if now.champion != expected.champion:
        raise AliasChanged(
            f"{model}: the champion moved from version {expected.champion} to {now.champion} since this run read it; "
            "nothing was changed. Re-run the promotion to decide on the current champion."
        )


def promote(model: str, version: str, expected: AliasState, settings: Settings | None = None) -> AliasState:
    """Point ``champion`` at ``version`` and ``previous_champion`` at the version it replaces.

    Promoting the version that already is the champion changes nothing (a re-run is a no-op).
    """
    settings = settings or get_settings()
    name = model_spec(model).registered_name
    client = _client(settings)
    with registry_lock(model, settings):
        now = alias_state(model, settings)
        if now.champion == str(version):
            return now
        _check(model, now, expected)
        client.get_model_version(name, str(version))  # raises for a version that does not exist
        if now.champion is not None:
            client.set_registered_model_alias(name, PREVIOUS_CHAMPION, now.champion)
        client.set_registered_model_alias(name, CHAMPION, str(version))
        log.info("%s: champion %s -> %s", name, now.champion, version)
        return alias_state(model, settings)


def rollback(model: str, expected: AliasState, settings: Settings | None = None) -> AliasState:
    """Point ``champion`` back at ``previous_champion``; the version rolled away from becomes the previous one."""
    settings = settings or get_settings()
    name = model_spec(model).registered_name
    client = _client(settings)
    with registry_lock(model, settings):
        now = alias_state(model, settings)
        _check(model, now, expected)
        if now.previous_champion is None or now.champion is None:
            raise NothingToRollBack(f"{name} has no previous_champion to roll back to (champion: {now.champion})")
        back, away = now.previous_champion, now.champion
        client.set_registered_model_alias(name, CHAMPION, back)
        client.set_registered_model_alias(name, PREVIOUS_CHAMPION, away)
        log.info("%s: rolled back champion %s -> %s", name, away, back)
        return alias_state(model, settings)
