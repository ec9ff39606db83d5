"""The committed feature catalog is what the Feast definitions generate: a stale catalog fails here."""

from __future__ import annotations

from maestro_ml.features import catalog


def test_the_committed_catalog_matches_the_definitions() -> None:
    assert catalog.CATALOG_PATH.exists(), "run: python -m maestro_ml.features.catalog"
    assert catalog.CATALOG_PATH.read_text() == catalog.render(), (
        "docs/feature_catalog.md is stale: run `PYTHONPATH=plugins .venv/bin/python -m maestro_ml.features.catalog`"
    )


def test_the_catalog_lists_every_view_service_and_feature() -> None:
    from maestro_ml.contracts.features import VIEWS

    text = catalog.render()
    for view in VIEWS.values():
        assert f"### `{view.name}`" in text
        for feature in view.features:
            assert f"| `{feature.name}` |" in text
    for name in ("task_urgency_features", "user_capacity_features", "task_assignment_v1", "task_duration_v1"):
        assert f"### `{name}`" in text
    assert "TTL: 2 d" in text
