"""Fixtures for the ingestion tests (test_ingestion_*.py); their plain helpers are in tests/ingestion_support.py.

``settings`` is visible to every test under tests/unit; a module that defines its own (test_lake.py) overrides it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.ingestion_support import KEY

from maestro_ml.settings import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAESTRO_PII_KEY", KEY)
    for name in ("MAESTRO_LAKE_URI", "MAESTRO_LANDING_URI", "MAESTRO_QUARANTINE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MAESTRO_DEDUPE_LOOKBACK_HOURS", "3")
    return load_settings()
