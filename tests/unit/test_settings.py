from __future__ import annotations

from datetime import UTC, datetime

import pytest

from maestro_ml.settings import get_settings, load_settings, parse_utc_hour


def test_defaults_live_under_maestro_home(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MAESTRO_HOME", str(tmp_path))
    s = load_settings()
    for uri in (s.landing_uri, s.lake_uri, s.quarantine_uri, s.truth_uri, s.reports_uri, s.feast_online_path):
        assert uri.startswith(str(tmp_path))
    assert s.compute == "local" and s.feast_env == "local"
    assert s.promotion_approval == "auto", "promotions are automatic unless approval is asked for"
    assert s.mlflow_tracking_uri.startswith("sqlite:///")


def test_environment_overrides_defaults(monkeypatch) -> None:
    monkeypatch.setenv("MAESTRO_LAKE_URI", "s3://bucket/lake")
    monkeypatch.setenv("MAESTRO_COMPUTE", "kubernetes")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    monkeypatch.setenv("MAESTRO_START_DATE", "2026-03-04T05:00:00Z")
    monkeypatch.setenv("MAESTRO_PROMOTION_APPROVAL", "required")
    get_settings.cache_clear()
    s = get_settings()
    assert s.lake_uri == "s3://bucket/lake"
    assert s.compute == "kubernetes"
    assert s.mlflow_tracking_uri == "http://mlflow:5000"
    assert s.start_date == datetime(2026, 3, 4, 5, tzinfo=UTC)
    assert s.promotion_approval == "required"


@pytest.mark.parametrize(("name", "value"), [
    ("MAESTRO_COMPUTE", "gpu"), ("MAESTRO_FEAST_ENV", "cloud"), ("MAESTRO_PROMOTION_APPROVAL", "yes"),
])
def test_invalid_switches_fail_loudly(monkeypatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        load_settings()


def test_pii_key_comes_only_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("MAESTRO_PII_KEY", raising=False)
    with pytest.raises(RuntimeError, match="MAESTRO_PII_KEY"):
        load_settings().pii_key()
    monkeypatch.setenv("MAESTRO_PII_KEY", "k")
    assert load_settings().pii_key() == b"k"


def test_parse_utc_hour() -> None:
    assert parse_utc_hour("2026-11-01T03:00:00+02:00") == datetime(2026, 11, 1, 1, tzinfo=UTC)
    assert parse_utc_hour("2026-11-01T03:00:00") == datetime(2026, 11, 1, 3, tzinfo=UTC)
    with pytest.raises(ValueError, match="hour"):
        parse_utc_hour("2026-11-01T03:30:00Z")
