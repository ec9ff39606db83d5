"""plugins/ holds the maestro_ml package, not Airflow plugins.

Airflow imports every .py file it finds under plugins/ as a top-level module named after the
file, which would shadow the standard library (``platform``) and load heavy code into every
Airflow process. plugins/.airflowignore must keep the package out of that scan.
"""

from __future__ import annotations

from pathlib import Path

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


def test_airflow_plugin_scan_skips_the_maestro_ml_package() -> None:
    from airflow._shared.module_loading import find_path_from_directory

    scanned = [Path(p) for p in find_path_from_directory(str(PLUGINS), ".airflowignore", "glob")]
    assert not [p for p in scanned if "maestro_ml" in p.parts]
    assert list((PLUGINS / "maestro_ml").rglob("*.py")), "the package itself must still be there"
