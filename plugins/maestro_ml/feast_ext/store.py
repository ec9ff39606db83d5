"""Access to the Feast feature repo in ``include/feature_repo`` for the environment the settings select."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from maestro_ml import storage
from maestro_ml.settings import PLUGINS_DIR, Settings, get_settings, join_uri

if TYPE_CHECKING:
    from feast import FeatureStore

YAML_BY_ENV = {"local": "feature_store.yaml", "server": "feature_store.server.yaml"}


def feature_store_yaml(settings: Settings | None = None) -> Path:
    settings = settings or get_settings()
    return settings.feature_repo_dir / YAML_BY_ENV[settings.feast_env]


def export_feast_env(settings: Settings | None = None) -> dict[str, str]:
    """Put the settings Feast's YAML refers to into the environment (Feast expands ``${VAR}`` in it)."""
    settings = settings or get_settings()
    # Names of their own, never the ones settings read: exporting must not pin this process's settings.
    values = {
        "FEAST_YAML_REGISTRY_PATH": settings.feast_registry_path,
        "FEAST_YAML_ONLINE_PATH": settings.feast_online_path,
        "FEAST_YAML_REGISTRY_SQL_URI": settings.feast_registry_sql_uri,
        "FEAST_YAML_REDIS_CONNECTION": settings.redis_connection_string,
        "FEAST_YAML_PROJECT": settings.feast_project,
    }
    os.environ.update(values)
    for path in (settings.feast_registry_path, settings.feast_online_path):
        if storage.is_local(path):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return values


def definitions_digest(settings: Settings | None = None) -> str:
    """Digest of the repo's definitions and the chosen YAML: apply is needed only when it changes."""
    settings = settings or get_settings()
    digest = hashlib.sha256()
    files = sorted(settings.feature_repo_dir.glob("*.py")) + [feature_store_yaml(settings)]
    for path in files:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for value in (settings.feast_registry_path, settings.feast_registry_sql_uri, settings.features_uri,
                  settings.feast_project):
        digest.update(value.encode() + b"\0")
    return digest.hexdigest()


def _applied_marker(settings: Settings) -> str:
    return join_uri(settings.home, "feast", f"applied-{settings.feast_env}.sha256")


def apply_if_changed(settings: Settings | None = None, *, force: bool = False) -> bool:
    """Run ``feast apply`` when the definitions changed since the last apply. Returns whether it ran."""
    settings = settings or get_settings()
    digest = definitions_digest(settings)
    marker = _applied_marker(settings)
    if not force and storage.exists(marker) and storage.read_bytes(marker).decode() == digest:
        return False
    env = {**os.environ, **export_feast_env(settings)}
    # The definitions import maestro_ml (the feature contract, the settings): put the package on the path.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PLUGINS_DIR), env.get("PYTHONPATH", "")) if p)
    subprocess.run(
        [sys.executable, "-m", "feast.cli.cli", "-c", str(settings.feature_repo_dir), "-f",
         str(feature_store_yaml(settings)), "apply"],
        check=True,
        env=env,
    )
    storage.write_bytes_atomic(marker, digest.encode())
    return True


def get_store(settings: Settings | None = None) -> FeatureStore:
    """A ``FeatureStore`` on the repo for the settings' environment (embedded or server-backed)."""
    from feast import FeatureStore

    settings = settings or get_settings()
    export_feast_env(settings)
    return FeatureStore(repo_path=str(settings.feature_repo_dir), fs_yaml_file=feature_store_yaml(settings))
