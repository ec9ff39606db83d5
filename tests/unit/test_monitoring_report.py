"""maestro_ml.monitoring.report: the self-contained HTML report, its JSON summary and where both are written."""

from __future__ import annotations

import base64
import html
import json
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from maestro_ml.monitoring.drift import REPORT_COLUMNS
from maestro_ml.monitoring.report import (
    MonitoringInputs,
    render_report,
    report_uris,
    severity,
    sorted_drift,
    summary_json,
    write_report,
)

DAY = date(2024, 5, 14)


def _drift_row(feature: str, statistic: str, value: float, threshold: float, drifted: bool,
               group: str = "task_state") -> dict[str, object]:
    return {
        "feature": feature, "group": group, "kind": "numeric", "statistic": statistic, "value": value,
        "threshold": threshold, "drifted": drifted, "psi": 0.05, "n_reference": 200, "n_current": 50,
        "missing_reference": 0, "missing_current": 1,
    }


def _feature_drift() -> pd.DataFrame:
    rows = [
        _drift_row("queue_depth", "wasserstein", 0.05, 0.1, False),
        _drift_row("assignee_load", "wasserstein", 0.35, 0.1, True),
        _drift_row("priority", "ks", 0.001, 0.05, True),
        _drift_row("<b>evil</b>&name", "psi", 0.08, 0.2, False),
        _drift_row("created_unix", "wasserstein", 5.0, 0.1, False, group="timestamps"),
        _drift_row("empty_col", "psi", float("nan"), 0.2, False),
    ]
    return pd.DataFrame(rows, columns=list(REPORT_COLUMNS))


def _prediction_drift() -> pd.DataFrame:
    rows = [
        _drift_row("score", "wasserstein", 0.12, 0.1, True, group="predictions"),
        _drift_row("duration_p50", "wasserstein", 0.02, 0.1, False, group="predictions"),
    ]
    return pd.DataFrame(rows, columns=list(REPORT_COLUMNS))


def _ranker_realised() -> pd.DataFrame:
    return pd.DataFrame({
        "day": [date(2024, 5, 12), date(2024, 5, 13), date(2024, 5, 14)],
        "hit_at_1": [0.41, None, 0.38],
        "hit_at_5": [0.80, None, 0.77],
        "ndcg_at_5": [0.61, None, 0.58],
        "n_decisions": [140, 12, 133],
    })


def _inputs(**overrides: object) -> MonitoringInputs:
    rng = np.random.default_rng(0)
    values: dict[str, object] = {
        "model": "assignee_ranker",
        "version": "7",
        "run_date": DAY,
        "generated_at": datetime(2024, 5, 15, 2, 30, tzinfo=UTC),
        "feature_drift": _feature_drift(),
        "prediction_drift": _prediction_drift(),
        "reference_predictions": {"score": rng.normal(0, 1, 200), "duration_p50": rng.gamma(2, 3, 200)},
        "current_predictions": {"score": rng.normal(0.5, 1, 50), "duration_p50": rng.gamma(2, 3, 50)},
        "realised": _ranker_realised(),
        "holdout": {"hit_at_1": 0.43, "ndcg_at_5": 0.62},
        "rules": [
            {"rule": "feature drift: >= 2 features on 3 days", "fired": True, "detail": "since 2024-05-14"},
            {"rule": "realised hit@1 below holdout - 0.05", "fired": False, "detail": {"value": 0.38}},
        ],
        "retraining_requested": True,
        "skips": ["realised performance: too few outcomes (12 < 30) on 2024-05-13"],
    }
    values.update(overrides)
    return MonitoringInputs(**values)  # type: ignore[arg-type]


def _unplotted(**overrides: object) -> MonitoringInputs:
    """Inputs with nothing to plot: for tests about text, which need not pay for matplotlib."""
    values: dict[str, object] = {"reference_predictions": None, "current_predictions": None, "realised": None}
    values.update(overrides)
    return _inputs(feature_drift=None, **values)


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(_inputs())


def _text(document: str) -> str:
    """The document's visible text, roughly: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", " ", document))


def test_the_document_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.IGNORECASE)
    assert "<script src" not in page.lower()
    assert "<link" not in page.lower()
    assert "@import" not in page
    assert "url(http" not in page


def test_it_embeds_the_plots_as_base64_pngs(page: str) -> None:
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3  # drift severity, score distributions, realised performance
    for b64 in images:
        assert base64.b64decode(b64).startswith(b"\x89PNG\r\n\x1a\n")


def test_it_names_each_drifted_feature_and_its_figures(page: str) -> None:
    text = _text(page)
    for feature in ("assignee_load", "priority", "score"):
        assert feature in text
    assert "0.35" in text and "0.001" in text  # the statistics
    assert "3.5" in text and "50" in text  # severities: 0.35 / 0.1, 0.05 / 0.001
    assert "2 of 6 features drifted" in text
    assert "Retraining requested" in text
    assert "feature drift: >= 2 features on 3 days" in text
    assert "too few outcomes (12 < 30)" in text


def test_drifted_features_come_first_then_by_severity() -> None:
    frame = sorted_drift(_feature_drift())
    assert list(frame["feature"]) == [
        "priority", "assignee_load", "created_unix", "queue_depth", "<b>evil</b>&name", "empty_col",
    ]
    assert frame["severity"].iloc[0] == pytest.approx(50.0)
    assert severity("ks", 0.05, 0.05) == pytest.approx(1.0)
    assert severity("wasserstein", 0.0, 0.1) == 0.0
    assert severity("ks", 0.0, 0.05) == float("inf")


def test_a_missing_metric_reads_insufficient_with_its_count_never_zero(page: str) -> None:
    text = _text(page)
    assert "insufficient (n=12)" in text
    day_row = re.search(r"<tr><td>2024-05-13</td>(.*?)</tr>", page)
    assert day_row is not None
    cells = re.findall(r"<td>(.*?)</td>", day_row.group(1))
    assert len(cells) == 3 and all("insufficient (n=12)" in c for c in cells)
    assert not any(re.search(r"(^|>)\s*0(\.0*)?\s*(<|$)", c) for c in cells)
    assert "0.41" in text and "(n=140)" in text


def test_duration_metrics_take_their_own_counts_and_nominal_levels() -> None:
    realised = pd.DataFrame({
        "day": pd.to_datetime(["2024-05-13", "2024-05-14"]),
        "mae_hours": [3.2, np.nan],
        "coverage_80": [0.78, np.nan],
        "coverage_90": [0.91, np.nan],
        "n_completions": [64, 7],
    })
    inputs = _inputs(realised=realised, holdout={"mae_hours": 3.0}, feature_drift=None, prediction_drift=None,
                     reference_predictions=None, current_predictions=None)
    text = _text(render_report(inputs))
    assert text.count("insufficient (n=7)") == 3
    assert "3.2" in text and "(n=64)" in text
    assert "No feature drift for this run" in text
    summary = summary_json(inputs)
    day = summary["realised"]["days"][1]
    assert day["day"] == "2024-05-14"
    assert day["metrics"]["coverage_80"] == {"value": None, "n": 7, "insufficient": True}


def test_it_escapes_html_in_feature_names_and_strings() -> None:
    inputs = _inputs(
        model="ranker<script>alert(1)</script>",
        skips=['<img src="x" onerror="alert(2)">'],
        rules=[{"rule": "<i>rule</i>", "fired": False, "detail": "a & b"}],
    )
    page = render_report(inputs)
    assert "<b>evil</b>" not in page
    assert "&lt;b&gt;evil&lt;/b&gt;&amp;name" in page
    assert "<script>" not in page
    assert '<img src="x"' not in page
    assert "<i>rule</i>" not in page and "a &amp; b" in page


def test_the_evidently_report_is_embedded_escaped_in_srcdoc() -> None:
    evidently = '<html><body><div id="x" class=\'y\'>A & B</div><script>var z = "</div>";</script></body></html>'
    page = render_report(_unplotted(evidently_html=evidently))
    match = re.search(r'<iframe [^>]*srcdoc="([^"]*)"', page)
    assert match is not None
    assert html.unescape(match.group(1)) == evidently
    assert "<script>" not in page  # only inside the escaped attribute


def test_a_cool_down_that_suppresses_retraining_is_said() -> None:
    text = _text(render_report(_unplotted(retraining_suppressed="cool-down: retrained 2024-05-12 (2 < 7 days)")))
    assert "Retraining suppressed: cool-down: retrained 2024-05-12 (2 < 7 days)" in text
    quiet = _text(render_report(_unplotted(retraining_requested=False, skips=())))
    assert "No retraining requested" in quiet and "Skipped" not in quiet


def test_a_run_with_nothing_but_its_identity_renders() -> None:
    inputs = MonitoringInputs(model="duration_model", version="3", run_date=DAY,
                              generated_at=datetime(2024, 5, 15, tzinfo=UTC))
    page = render_report(inputs)
    assert "duration_model" in page and "data:image/png" not in page
    assert json.loads(json.dumps(summary_json(inputs)))["feature_drift"] is None


def test_summary_json_is_json_serializable_and_compact() -> None:
    summary = summary_json(_inputs())
    encoded = json.dumps(summary, allow_nan=False)  # no default=: plain types only, no NaN
    assert json.loads(encoded) == summary
    assert summary["model"] == "assignee_ranker" and summary["version"] == "7" and summary["date"] == "2024-05-14"
    assert summary["feature_drift"] == {"features": 6, "drifted_count": 2, "drifted": ["priority", "assignee_load"]}
    assert summary["prediction_drift"]["drifted"] == ["score"]
    day = summary["realised"]["days"][1]["metrics"]
    assert day["hit_at_1"] == {"value": None, "n": 12, "insufficient": True}
    assert summary["realised"]["days"][0]["metrics"]["hit_at_1"] == {"value": 0.41, "n": 140, "insufficient": False}
    assert summary["rules"][0]["fired"] is True and summary["rules"][1]["detail"] == {"value": 0.38}
    assert summary["retraining_requested"] is True and summary["retraining_suppressed"] is None
    assert summary["skips"] == ["realised performance: too few outcomes (12 < 30) on 2024-05-13"]


def test_it_writes_both_files_atomically_at_the_documented_paths(tmp_path: Path) -> None:
    inputs = _inputs()
    reports = str(tmp_path / "reports")
    uris = write_report("<html>first</html>", summary_json(inputs), reports, "assignee_ranker", DAY)
    folder = tmp_path / "reports" / "monitoring" / "assignee_ranker"
    assert uris == {"html": str(folder / "2024-05-14.html"), "json": str(folder / "2024-05-14.json")}
    assert sorted(os.listdir(folder)) == ["2024-05-14.html", "2024-05-14.json"]  # no temporary left behind
    assert (folder / "2024-05-14.html").read_text() == "<html>first</html>"
    assert json.loads((folder / "2024-05-14.json").read_text())["model"] == "assignee_ranker"


def test_a_second_write_replaces_both_files(tmp_path: Path) -> None:
    reports = f"file://{tmp_path}/reports/"
    first = write_report("<html>one</html>", {"run": 1}, reports, "m", DAY)
    second = write_report("<html>two</html>", {"run": 2}, reports, "m", DAY)
    assert first == second == report_uris(reports, "m", DAY)
    folder = tmp_path / "reports" / "monitoring" / "m"
    assert sorted(os.listdir(folder)) == ["2024-05-14.html", "2024-05-14.json"]
    assert (folder / "2024-05-14.html").read_text() == "<html>two</html>"
    assert json.loads((folder / "2024-05-14.json").read_text()) == {"run": 2}


def test_a_summary_that_is_not_json_leaves_the_previous_report_untouched(tmp_path: Path) -> None:
    write_report("<html>old</html>", {"run": 1}, str(tmp_path), "m", DAY)
    with pytest.raises((TypeError, ValueError)):
        write_report("<html>new</html>", {"bad": float("nan")}, str(tmp_path), "m", DAY)
    folder = tmp_path / "monitoring" / "m"
    assert (folder / "2024-05-14.html").read_text() == "<html>old</html>"
    assert sorted(os.listdir(folder)) == ["2024-05-14.html", "2024-05-14.json"]


@pytest.mark.parametrize("model", ["", "..", "a/b"])
def test_a_model_name_must_be_one_path_segment(tmp_path: Path, model: str) -> None:
    with pytest.raises(ValueError, match="path segment"):
        report_uris(str(tmp_path), model, DAY)
