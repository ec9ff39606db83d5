"""maestro_ml's core runs outside Airflow (the training image, the simulator CLI): keep Airflow out of it.

The static import contracts (layers, no cycles, Airflow only in orchestration) are ``make lint``'s job
(``lint-imports``, also run by ``.ci/run``); this test imports every module for real.
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import maestro_ml

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")}
# Only the orchestration layer may import Airflow: it exists for DAG files.
ORCHESTRATION = "maestro_ml.orchestration"


def _modules() -> list[str]:
    return sorted(
        m.name for m in pkgutil.walk_packages(maestro_ml.__path__, "maestro_ml.")
        if m.name != ORCHESTRATION and not m.name.startswith(f"{ORCHESTRATION}.")
    )


def test_core_modules_do_not_import_airflow() -> None:
    probe = (
        "import importlib, json, sys\n"
        f"for name in {_modules()!r}:\n"
        "    if not name.endswith('__main__'):\n"
        "        importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
