"""The monitoring report: one self-contained HTML page per model and day, and a compact JSON summary beside it.

``render_report`` turns one monitoring run (``MonitoringInputs``: plain data, no Airflow) into ONE HTML
document that opens from a local disk or an S3 download with no network: no external script, style sheet
or font; the plots are matplotlib PNGs (the Agg canvas, no pyplot state) embedded as
``data:image/png;base64`` URIs; an optional Evidently report is embedded through ``<iframe srcdoc=...>``
(escaped), so its own scripts stay inside the page too (export it in Evidently's inline mode). Every string
that comes from data (feature names, rule details, skip reasons, the model name) goes through
``html.escape``.

The page, top to bottom: a summary box (retraining requested or not, and whether a cool-down suppressed it;
the rule outcomes; drifted features; skips), the feature-drift table and bar plot, prediction drift (table
and overlaid score histograms), realised performance per day (table and one line plot per metric, with the
champion's holdout figure and, for ``coverage_<level>``, the nominal level), then the Evidently report.

Drift "severity" is how far a feature is past its threshold, oriented so that >= 1 means "at or past it":
``value / threshold`` for a distance (Wasserstein, Jensen-Shannon, PSI), ``threshold / value`` for a p-value
(KS, chi-square, z), where a smaller value is the stronger evidence. Groups that are never counted (epoch
times) may pass 1 without being drifted; the table's ``drifted`` column is the verdict.

Realised performance: a frame with a ``day`` column, metric columns and count columns (``n_...``). A metric
takes its count from ``n_<metric>`` if present, else from the frame's only other count column (the ranker's
``n_decisions``, duration's ``n_completions``). A missing metric value (None/NaN) means too few outcomes:
it reads "insufficient (n=..)", never 0, and leaves a gap in the plot.

``write_report`` writes ``<reports_uri>/monitoring/<model>/<YYYY-MM-DD>.html`` and ``.json`` atomically
(``maestro_ml.storage``); a rerun replaces both.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from maestro_ml.monitoring.drift import P_VALUES
from maestro_ml.settings import join_uri
from maestro_ml.storage import write_bytes_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Bars in the feature-drift plot, and where severities are clipped there (a p-value of 0 has severity inf).
TOP_FEATURES = 30
SEVERITY_CLIP = 10.0
DAY_COLUMN = "day"
COUNT_PREFIX = "n_"
_COVERAGE = re.compile(r"^coverage_(\d+)$")

Predictions = Mapping[str, Sequence[float] | np.ndarray] | Sequence[float] | np.ndarray


@dataclass(frozen=True)
class MonitoringInputs:
    """One monitoring run of one model (its champion version) on one day.

    ``feature_drift`` and ``prediction_drift`` are ``monitoring.drift.feature_drift`` / ``prediction_drift``
    frames. ``reference_predictions`` / ``current_predictions`` are raw model outputs for the histograms: an
    array (one output, named "score") or a mapping output name -> array. ``realised`` is the per-day realised
    performance (module docstring); ``holdout`` the champion's holdout figures, metric -> value. ``rules`` are
    ``{"rule": str, "fired": bool, "detail": ...}``; ``retraining_suppressed`` says why a requested retraining
    was not started (a cool-down), None when it was not suppressed. ``skips`` are checks that did not run, as
    sentences ("realised performance: too few outcomes (12 < 30)").
    """

    model: str
    version: str
    run_date: date
    generated_at: datetime
    feature_drift: pd.DataFrame | None = None
    prediction_drift: pd.DataFrame | None = None
    reference_predictions: Predictions | None = None
    current_predictions: Predictions | None = None
    realised: pd.DataFrame | None = None
    holdout: Mapping[str, float] = field(default_factory=dict)
    rules: Sequence[Mapping[str, Any]] = ()
    retraining_requested: bool = False
    retraining_suppressed: str | None = None
    skips: Sequence[str] = ()
    evidently_html: str | None = None


# --------------------------------------------------------------------------- small helpers


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _finite(value: object) -> float | None:
    """A float, or None for None/NaN/inf/non-numbers (pandas NA included)."""
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _count(value: object) -> int | None:
    number = _finite(value)
    return None if number is None else int(number)


def _fmt(value: object, digits: int = 4) -> str:
    number = _finite(value)
    if number is None:
        return "&ndash;"
    if number == 0 or 1e-3 <= abs(number) < 1e6:
        return f"{number:.{digits}g}"
    return f"{number:.{max(digits - 1, 1)}e}"


def severity(statistic: str, value: float, threshold: float) -> float:
    """How far past its threshold a drift statistic is, >= 1 at or past it (module docstring); NaN if unknown."""
    if not (math.isfinite(value) and math.isfinite(threshold)):
        return float("nan")
    if statistic in P_VALUES:
        if value <= 0:
            return math.inf
        return threshold / value
    if threshold <= 0:
        return math.inf if value > 0 else float("nan")
    return value / threshold


def sorted_drift(report: pd.DataFrame) -> pd.DataFrame:
    """A drift frame with a ``severity`` column, drifted features first, then by severity (largest first)."""
    frame = report.copy()
    if frame.empty:
        frame["severity"] = pd.Series(dtype=float)
        return frame.reset_index(drop=True)
    frame["severity"] = [
        severity(str(s), float(v), float(t))
        for s, v, t in zip(
            frame["statistic"],
            pd.to_numeric(frame["value"], errors="coerce"),
            pd.to_numeric(frame["threshold"], errors="coerce"),
            strict=True,
        )
    ]
    key = frame["severity"].fillna(-math.inf)
    frame = frame.assign(_drifted=frame["drifted"].astype(bool), _key=key)
    frame = frame.sort_values(["_drifted", "_key", "feature"], ascending=[False, False, True], kind="stable")
    return frame.drop(columns=["_drifted", "_key"]).reset_index(drop=True)


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)  # laid out by tight_layout: one draw, not two
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)  # the Agg canvas, attached to this figure only: no pyplot, no global backend
    return fig


def _img(b64: str, alt: str) -> str:
    return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{b64}">'


def _plain(text: str) -> str:
    """A label matplotlib draws verbatim (no mathtext between dollar signs)."""
    return text.replace("$", r"\$")


def _predictions(values: Predictions | None) -> dict[str, np.ndarray]:
    if values is None:
        return {}
    if isinstance(values, Mapping):
        return {str(k): np.asarray(v, dtype=np.float64).ravel() for k, v in values.items()}
    return {"score": np.asarray(values, dtype=np.float64).ravel()}


# --------------------------------------------------------------------------- realised performance


@dataclass(frozen=True)
class _Realised:
    frame: pd.DataFrame  # sorted by day, ``day`` as datetime.date
    metrics: list[str]
    count_of: dict[str, str | None]  # metric -> its count column


def _realised(frame: pd.DataFrame | None) -> _Realised | None:
    if frame is None or DAY_COLUMN not in frame.columns:
        return None
    data = frame.copy()
    data[DAY_COLUMN] = pd.to_datetime(data[DAY_COLUMN]).dt.date
    data = data.sort_values(DAY_COLUMN, kind="stable").reset_index(drop=True)
    columns = [str(c) for c in data.columns if c != DAY_COLUMN]
    counts = [c for c in columns if c.startswith(COUNT_PREFIX)]
    metrics = [c for c in columns if not c.startswith(COUNT_PREFIX)]
    generic = [c for c in counts if c[len(COUNT_PREFIX):] not in metrics]
    count_of = {m: (f"{COUNT_PREFIX}{m}" if f"{COUNT_PREFIX}{m}" in counts else generic[0] if generic else None)
                for m in metrics}
    for m in metrics:
        data[m] = pd.to_numeric(data[m], errors="coerce")
    return _Realised(data, metrics, count_of)


def _nominal(metric: str) -> float | None:
    match = _COVERAGE.match(metric)
    return int(match.group(1)) / 100 if match else None


def _realised_cell(value: float | None, n: int | None) -> str:
    n_text = "?" if n is None else str(n)
    if value is None:
        return f'<span class="insufficient">insufficient (n={n_text})</span>'
    return f"{_fmt(value)} <small>(n={n_text})</small>" if n is not None else _fmt(value)


def _realised_value(r: _Realised, i: int, metric: str) -> tuple[float | None, int | None]:
    count_column = r.count_of[metric]
    n = _count(r.frame.at[i, count_column]) if count_column else None
    return _finite(r.frame.at[i, metric]), n


def _realised_plot(r: _Realised, holdout: Mapping[str, float]) -> str | None:
    plotted = [m for m in r.metrics if r.frame[m].notna().any()]
    if not plotted:
        return None
    from matplotlib.dates import AutoDateLocator, DateFormatter

    fig = _figure(7.5, 2.3 * len(plotted))
    days = pd.to_datetime(pd.Series(r.frame[DAY_COLUMN]))
    first = None
    for k, metric in enumerate(plotted, start=1):
        ax = fig.add_subplot(len(plotted), 1, k, sharex=first)
        first = first or ax
        ax.plot(days, r.frame[metric], marker="o", color="#1f77b4", label="realised")
        for n, day in enumerate(days[r.frame[metric].isna()]):  # too few outcomes: a gap, marked
            ax.axvline(day, color="#e6a100", alpha=0.5, linewidth=6, label="insufficient" if n == 0 else None)
        reference = _finite(holdout.get(metric))
        if reference is not None:
            ax.axhline(reference, color="#2ca02c", linestyle="--", label=f"holdout {reference:.3g}")
        nominal = _nominal(metric)
        if nominal is not None:
            ax.axhline(nominal, color="#7f7f7f", linestyle=":", label=f"nominal {nominal:g}")
        ax.set_title(_plain(metric), fontsize=10, loc="left")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    assert first is not None
    first.xaxis.set_major_locator(AutoDateLocator(minticks=2, maxticks=10, interval_multiples=True))
    first.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    if len(days) == 1:
        first.set_xlim(days.iloc[0] - pd.Timedelta(days=1), days.iloc[0] + pd.Timedelta(days=1))
    fig.autofmt_xdate()
    fig.tight_layout()
    return _png(fig)


def _realised_section(inputs: MonitoringInputs) -> str:
    r = _realised(inputs.realised)
    if r is None or r.frame.empty or not r.metrics:
        return '<h2>Realised performance</h2><p class="muted">No realised performance for this run.</p>'
    head = "".join(f"<th>{_e(m)}</th>" for m in r.metrics)
    holdout_row = "".join(f"<td>{_fmt(inputs.holdout.get(m))}</td>" for m in r.metrics)
    rows = []
    for i in range(len(r.frame)):
        cells = "".join(f"<td>{_realised_cell(*_realised_value(r, i, m))}</td>" for m in r.metrics)
        rows.append(f"<tr><td>{_e(r.frame.at[i, DAY_COLUMN])}</td>{cells}</tr>")
    plot = _realised_plot(r, inputs.holdout)
    return (
        "<h2>Realised performance</h2>"
        "<p class=\"muted\">Per day, from outcomes that have matured; \"insufficient\" means too few outcomes "
        "for a figure (n is how many there were).</p>"
        f"<table><thead><tr><th>day</th>{head}</tr></thead><tbody>"
        f"<tr class=\"holdout\"><td>champion holdout</td>{holdout_row}</tr>{''.join(rows)}</tbody></table>"
        + (_img(plot, "realised performance per day") if plot else "")
    )


# --------------------------------------------------------------------------- drift


def _drift_table(frame: pd.DataFrame) -> str:
    rows = []
    for row in frame.itertuples(index=False):
        drifted = bool(row.drifted)
        rows.append(
            f'<tr class="{"drifted" if drifted else ""}">'
            f"<td>{_e(row.feature)}</td><td>{_e(row.group)}</td><td>{_e(row.kind)}</td>"
            f"<td>{_e(row.statistic)}</td><td>{_fmt(row.value)}</td><td>{_fmt(row.threshold)}</td>"
            f"<td>{_fmt(row.severity, 3)}</td><td>{_fmt(row.psi, 3)}</td>"
            f"<td>{'<b>yes</b>' if drifted else 'no'}</td>"
            f"<td>{_e(row.n_reference)} / {_e(row.n_current)}</td>"
            f"<td>{_e(row.missing_reference)} / {_e(row.missing_current)}</td></tr>"
        )
    return (
        "<table><thead><tr><th>feature</th><th>group</th><th>kind</th><th>statistic</th><th>value</th>"
        "<th>threshold</th><th>severity</th><th>PSI</th><th>drifted</th><th>rows ref / cur</th>"
        f"<th>missing ref / cur</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _severity_plot(frame: pd.DataFrame) -> str | None:
    top = frame[frame["severity"].notna()].head(TOP_FEATURES)
    if top.empty:
        return None
    fig = _figure(7.5, 1.0 + 0.25 * len(top))
    ax = fig.add_subplot(1, 1, 1)
    values = np.minimum(top["severity"].to_numpy(dtype=np.float64), SEVERITY_CLIP)
    from matplotlib.patches import Patch

    # Red: drifted. Grey: past the threshold in a group never counted (epoch times). Blue: within it.
    colours = [
        "#d62728" if d else "#9e9e9e" if s >= 1 else "#1f77b4"
        for d, s in zip(top["drifted"].astype(bool), top["severity"], strict=True)
    ]
    positions = np.arange(len(top))[::-1]  # the most severe on top
    ax.barh(positions, values, color=colours)
    ax.set_yticks(positions, [_plain(str(f)) for f in top["feature"]], fontsize=8)
    threshold = ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="threshold")
    legend = [Patch(color="#d62728", label="drifted"), Patch(color="#9e9e9e", label="past, not counted"),
              Patch(color="#1f77b4", label="not drifted"), threshold]
    ax.set_xlabel(f"severity (value / threshold; threshold / value for p-values; clipped at {SEVERITY_CLIP:g})")
    ax.legend(handles=legend, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def _feature_drift_section(inputs: MonitoringInputs) -> str:
    if inputs.feature_drift is None:
        return '<h2>Feature drift</h2><p class="muted">No feature drift for this run.</p>'
    frame = sorted_drift(inputs.feature_drift)
    drifted = frame[frame["drifted"].astype(bool)]
    plot = _severity_plot(frame)
    return (
        "<h2>Feature drift</h2>"
        f"<p>{len(drifted)} of {len(frame)} features drifted. Drifted first, then by severity.</p>"
        + (_img(plot, f"drift severity per feature (top {TOP_FEATURES})") if plot else "")
        + _drift_table(frame)
    )


def _histogram_plot(reference: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray]) -> str | None:
    names = [n for n in reference if n in current] + [n for n in current if n not in reference]
    names += [n for n in reference if n not in current]
    names = [n for n in names if np.isfinite(reference.get(n, np.empty(0))).any()
             or np.isfinite(current.get(n, np.empty(0))).any()]
    if not names:
        return None
    fig = _figure(7.5, 2.5 * len(names))
    for k, name in enumerate(names, start=1):
        ax = fig.add_subplot(len(names), 1, k)
        ref = reference.get(name, np.empty(0))
        cur = current.get(name, np.empty(0))
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        both = np.concatenate([ref, cur])
        edges = np.histogram_bin_edges(both, bins=30).tolist()
        if ref.size:
            ax.hist(ref, bins=edges, density=True, histtype="stepfilled", alpha=0.5, color="#1f77b4", label=f"reference (n={ref.size})")
        if cur.size:
            ax.hist(cur, bins=edges, density=True, histtype="stepfilled", alpha=0.5, color="#ff7f0e", label=f"current (n={cur.size})")
        ax.set_title(_plain(name), fontsize=10, loc="left")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _prediction_drift_section(inputs: MonitoringInputs) -> str:
    parts = ["<h2>Prediction drift</h2>"]
    if inputs.prediction_drift is not None:
        frame = sorted_drift(inputs.prediction_drift)
        drifted = int(frame["drifted"].astype(bool).sum())
        parts.append(f"<p>{drifted} of {len(frame)} outputs drifted.</p>{_drift_table(frame)}")
    plot = _histogram_plot(_predictions(inputs.reference_predictions), _predictions(inputs.current_predictions))
    if plot:
        parts.append("<h3>Score distributions</h3>" + _img(plot, "score distributions, reference and current"))
    if len(parts) == 1:
        parts.append('<p class="muted">No prediction drift for this run.</p>')
    return "".join(parts)


# --------------------------------------------------------------------------- summary box and page


def _verdict(inputs: MonitoringInputs) -> tuple[str, str]:
    if inputs.retraining_requested and inputs.retraining_suppressed:
        return "suppressed", f"Retraining suppressed: {inputs.retraining_suppressed}"
    if inputs.retraining_requested:
        return "requested", "Retraining requested"
    return "none", "No retraining requested"


def _summary_box(inputs: MonitoringInputs) -> str:
    css, verdict = _verdict(inputs)
    rules = "".join(
        f'<tr class="{"fired" if r.get("fired") else ""}"><td>{_e(r.get("rule", ""))}</td>'
        f"<td>{'<b>fired</b>' if r.get('fired') else 'quiet'}</td><td>{_e(r.get('detail', ''))}</td></tr>"
        for r in inputs.rules
    )
    rules_html = (
        f"<table><thead><tr><th>rule</th><th>outcome</th><th>detail</th></tr></thead><tbody>{rules}</tbody></table>"
        if inputs.rules else '<p class="muted">No rule was evaluated.</p>'
    )
    drifted: list[str] = []
    if inputs.feature_drift is not None:
        drifted = [str(f) for f in sorted_drift(inputs.feature_drift).query("drifted")["feature"]]
    drifted_html = (
        f"<p><b>{len(drifted)} drifted feature{'s' if len(drifted) != 1 else ''}:</b> "
        + (", ".join(f"<code>{_e(f)}</code>" for f in drifted) or "none") + "</p>"
        if inputs.feature_drift is not None else ""
    )
    skips_html = (
        '<div class="skips"><b>Skipped:</b><ul>' + "".join(f"<li>{_e(s)}</li>" for s in inputs.skips) + "</ul></div>"
        if inputs.skips else ""
    )
    return (
        f'<div class="summary {css}"><p class="verdict">{_e(verdict)}</p>'
        f"{rules_html}{drifted_html}{skips_html}</div>"
    )


def _evidently_section(evidently_html: str | None) -> str:
    if not evidently_html:
        return ""
    return (
        "<h2>Evidently report</h2>"
        '<iframe class="evidently" title="Evidently report" sandbox="allow-scripts" '
        f'srcdoc="{html.escape(evidently_html, quote=True)}"></iframe>'
    )


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.muted, .meta { color: #666; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
th { background: #f4f4f4; }
tr.drifted td, tr.fired td { background: #fdecea; }
tr.holdout td { background: #eef6ee; font-style: italic; }
.insufficient { color: #a15c00; font-style: italic; }
.summary { border: 2px solid #888; border-radius: 6px; padding: 0.6em 1em; margin: 1em 0; }
.summary.requested { border-color: #d62728; background: #fff6f5; }
.summary.suppressed { border-color: #e6a100; background: #fffbf0; }
.summary.none { border-color: #2ca02c; background: #f5fbf5; }
.verdict { font-size: 1.3em; font-weight: bold; margin: 0.2em 0 0.5em; }
.skips { background: #fff8e1; border-left: 4px solid #e6a100; padding: 0.3em 0.8em; margin-top: 0.6em; }
img.plot { max-width: 100%; display: block; margin: 0.8em 0; }
iframe.evidently { width: 100%; height: 900px; border: 1px solid #ddd; }
code { background: #f4f4f4; padding: 0 3px; }
"""


def render_report(inputs: MonitoringInputs) -> str:
    """The whole monitoring report for one model and day, as one self-contained HTML document."""
    title = f"Monitoring: {inputs.model} v{inputs.version}, {inputs.run_date.isoformat()}"
    body = "".join([
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Model <code>{_e(inputs.model)}</code>, champion version <code>{_e(inputs.version)}'
        f"</code>, run date {_e(inputs.run_date.isoformat())}; generated {_e(inputs.generated_at.isoformat())}.</p>",
        _summary_box(inputs),
        _feature_drift_section(inputs),
        _prediction_drift_section(inputs),
        _realised_section(inputs),
        _evidently_section(inputs.evidently_html),
    ])
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>\n<body>{body}</body></html>\n"
    )


# --------------------------------------------------------------------------- summary JSON and writing


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN/inf -> None, dates as ISO strings, the rest as str."""
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite(value)
    if isinstance(value, datetime | date | pd.Timestamp):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset | np.ndarray):
        return [_jsonable(v) for v in value]
    if value is pd.NaT or value is pd.NA:
        return None
    return str(value)


def _drift_rows(report: pd.DataFrame) -> list[dict[str, Any]]:
    frame = sorted_drift(report)
    keep = ["feature", "group", "statistic", "value", "threshold", "severity", "drifted", "psi"]
    return [_jsonable({k: getattr(row, k) for k in keep}) for row in frame.itertuples(index=False)]


def summary_json(inputs: MonitoringInputs) -> dict[str, Any]:
    """The compact, JSON-serialisable summary written beside the report (plain types only; NaN -> None)."""
    summary: dict[str, Any] = {
        "model": inputs.model,
        "version": str(inputs.version),
        "date": inputs.run_date.isoformat(),
        "generated_at": inputs.generated_at.isoformat(),
    }
    if inputs.feature_drift is not None:
        frame = sorted_drift(inputs.feature_drift)
        drifted = [str(f) for f in frame.loc[frame["drifted"].astype(bool), "feature"]]
        summary["feature_drift"] = {"features": len(frame), "drifted_count": len(drifted), "drifted": drifted}
    else:
        summary["feature_drift"] = None
    if inputs.prediction_drift is not None:
        rows = _drift_rows(inputs.prediction_drift)
        summary["prediction_drift"] = {
            "drifted": [r["feature"] for r in rows if r["drifted"]],
            "outputs": rows,
        }
    else:
        summary["prediction_drift"] = None
    r = _realised(inputs.realised)
    if r is not None:
        days = []
        for i in range(len(r.frame)):
            metrics = {}
            for m in r.metrics:
                value, n = _realised_value(r, i, m)
                metrics[m] = {"value": value, "n": n, "insufficient": value is None}
            days.append({"day": r.frame.at[i, DAY_COLUMN].isoformat(), "metrics": metrics})
        summary["realised"] = {"days": days}
    else:
        summary["realised"] = None
    summary["holdout"] = _jsonable(dict(inputs.holdout))
    summary["rules"] = [
        {"rule": str(rule.get("rule", "")), "fired": bool(rule.get("fired", False)),
         "detail": _jsonable(rule.get("detail"))}
        for rule in inputs.rules
    ]
    summary["retraining_requested"] = bool(inputs.retraining_requested)
    summary["retraining_suppressed"] = inputs.retraining_suppressed
    summary["skips"] = [str(s) for s in inputs.skips]
    result: dict[str, Any] = _jsonable(summary)
    return result


def report_uris(reports_uri: str, model: str, day: date) -> dict[str, str]:
    """Where ``write_report`` puts a model's report for a day: ``{"html": ..., "json": ...}``."""
    if not model or model in (".", "..") or "/" in model or "\\" in model:
        raise ValueError(f"model name {model!r} cannot be a path segment")
    base = join_uri(reports_uri, "monitoring", model, day.isoformat())
    return {"html": f"{base}.html", "json": f"{base}.json"}


def write_report(html: str, summary: Mapping[str, Any], reports_uri: str, model: str, day: date) -> dict[str, str]:
    """Write the report and its summary to ``<reports_uri>/monitoring/<model>/<YYYY-MM-DD>.html`` / ``.json``.

    Each file is written atomically (readers see the old file or the new one, never a part), and a rerun
    replaces both. Both are encoded before either is written, so a summary that is not JSON fails without
    touching the previous report. Returns ``{"html": uri, "json": uri}``.
    """
    uris = report_uris(reports_uri, model, day)
    html_bytes = html.encode("utf-8")
    json_bytes = json.dumps(summary, indent=2, sort_keys=True, allow_nan=False).encode("utf-8")
    write_bytes_atomic(uris["html"], html_bytes)
    write_bytes_atomic(uris["json"], json_bytes)
    return uris
