"""Access to the Feast feature repo in ``include/feature_repo`` for the environment the settings select."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from maestro_ml import storage
from maestro_ml.settings import Settings, get_settings, join_uri

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
    export_feast_env(settings)
    _apply(settings)
    storage.write_bytes_atomic(marker, digest.encode())
    return True


def _apply(settings: Settings) -> None:
    """What ``feast apply`` does, in this process (a subprocess costs seconds of imports per apply).

    The definitions read the settings when imported, so they are imported afresh for each apply,
    from the repo folder as the CLI does, and the process's cwd, path and module cache are restored.
    """
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    repo = settings.feature_repo_dir

    def forget_definitions() -> None:
        for name, module in list(sys.modules.items()):
            if Path(getattr(module, "__file__", None) or "/").parent == repo:
                del sys.modules[name]

    cwd, path, bytecode = os.getcwd(), list(sys.path), sys.dont_write_bytecode
    forget_definitions()
    sys.path.insert(0, str(repo))
    try:
        apply_total(load_repo_config(repo, feature_store_yaml(settings)), repo, skip_source_validation=False)
    finally:
        os.chdir(cwd)
        sys.path[:] = path
        sys.dont_write_bytecode = bytecode
        forget_definitions()


def get_store(settings: Settings | None = None) -> FeatureStore:
    """A ``FeatureStore`` on the repo for the settings' environment (embedded or server-backed)."""
    from feast import FeatureStore

    settings = settings or get_settings()
    export_feast_env(settings)
    return FeatureStore(repo_path=str(settings.feature_repo_dir), fs_yaml_file=feature_store_yaml(settings))


def service_features(store: FeatureStore, service: str) -> list[str]:
    """The feature names a feature service provides online (names are unique across views)."""
    fs = store.get_feature_service(service)
    return [f.name for projection in fs.feature_view_projections for f in projection.features]
