"""The DAG steps of the features domain as plain functions.

``build_features``: the days to rebuild (``rebuild_window``), compute, validate, publish.
The training DAGs: the time-split window (``training_window``), the point-in-time training sets
(``build_sets``) and their Great Expectations gate (``validate_sets``).

``compute_staged`` writes the computed tables to a staging folder private to the run, the
Great Expectations gate reads them from there, and only ``publish_staged`` touches the offline
store, one atomic file per (view, day). A failed gate therefore leaves the offline store exactly
as it was, and downstream (materialization) does not run.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.contracts.features import VIEWS
from maestro_ml.contracts.models import model_spec
from maestro_ml.evaluation.splits import split_bounds
from maestro_ml.features.compute import compute_features, load_inputs
from maestro_ml.features.offline import built_through, days_between, mark_built, to_arrow, write_days
from maestro_ml.features.training_sets import training_set
from maestro_ml.lake import as_hour, committed_hours, list_manifests
from maestro_ml.settings import Settings, day_start, get_settings, join_uri, to_utc
from maestro_ml.validation import raise_for_critical, validate_features
from maestro_ml.validation.gates import validate_training_sets

log = logging.getLogger(__name__)



def rebuild_window(
    *,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    hours: list[str] | None = None,
    settings: Settings | None = None,
) -> dict[str, str]:
    """The UTC days to (re)build, as ``{"start", "end"}`` ISO strings on day boundaries.

    An explicit ``start``/``end`` (manual runs) wins. Otherwise ``hours`` are the ingest hours that
    triggered the run (asset events): their days are rebuilt, reaching back by the allowed lateness
    because late events change earlier days. Without either, the days of the newest committed hour.
    """
    settings = settings or get_settings()
    if start is not None or end is not None:
        if start is None or end is None:
            raise ValueError("give both start and end, or neither")
        lo, hi = to_utc(start), to_utc(end)
    else:
        if not hours:
            manifests = list_manifests(settings.lake_uri)
            if not manifests:
                raise ValueError("nothing ingested yet: no committed ingest hour to build features for")
            hours = [manifests[-1]["hour"]]
        parsed = sorted(as_hour(h) for h in hours)
        lo = parsed[0] - timedelta(hours=settings.allowed_lateness_hours)
        hi = parsed[-1] + timedelta(hours=1)
    if hi <= lo:
        raise ValueError(f"empty window: start {lo.isoformat()} is not before end {hi.isoformat()}")
    lo = day_start(lo)
    hi = day_start(hi) if day_start(hi) == hi else day_start(hi) + timedelta(days=1)
    return {"start": lo.isoformat(), "end": hi.isoformat()}


def staging_uri(settings: Settings, token: str) -> str:
    """Where ``compute_features`` leaves a build for the gate and the publish: in the lake's store (readers
    skip ``_`` folders), never under ``MAESTRO_HOME``, because the next task may run on another worker."""
    return join_uri(settings.lake_uri, "_staging", "build_features", token)


def compute_staged(window: dict[str, str], settings: Settings | None = None) -> dict[str, Any]:
    """Compute every view for the window and stage it; returns the window, staged URIs, rows and timings."""
    settings = settings or get_settings()
    started = time.perf_counter()
    # Read before the inputs: an hour committed while they load is not claimed as seen.
    committed = committed_hours(settings.lake_uri)
    inputs = load_inputs(settings.lake_uri, window["start"], window["end"])
    loaded = time.perf_counter()
    frames = compute_features(inputs)
    computed = time.perf_counter()
    token = uuid.uuid4().hex[:12]
    staged = {}
    for name, frame in frames.items():
        uri = join_uri(staging_uri(settings, token), f"{name}.parquet")
        with storage.atomic_open(uri) as handle:
            pq.write_table(to_arrow(VIEWS[name], frame), handle)
        staged[name] = uri
    rows = {name: len(frame) for name, frame in frames.items()}
    log.info("computed features for [%s, %s): %s", window["start"], window["end"], rows)
    return {
        **window,
        "token": token,
        "staged": staged,
        "lake_through": committed[-1].isoformat() if committed else None,
        "rows": rows,
        "timings_s": {"load": round(loaded - started, 3), "compute": round(computed - loaded, 3)},
    }


def _read_staged(staged: dict[str, Any]) -> dict[str, Any]:
    tables = {}
    for name, uri in staged["staged"].items():
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            tables[name] = pq.read_table(handle)
    return tables


def validate_staged(staged: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The Great Expectations gate on the staged tables; raises ``DataValidationError`` on a critical failure."""
    settings = settings or get_settings()
    run_name = f"build_features-{staged['start'][:10]}-{staged['end'][:10]}"
    outcome = validate_features(_read_staged(staged), settings=settings, run_name=run_name)
    log.info("Great Expectations Data Docs for these features: %s", outcome.data_docs_path)
    raise_for_critical(outcome)
    return {**staged, "validation": {"data_docs_path": outcome.data_docs_path, "warnings": len(outcome.warnings)}}


def publish_staged(validated: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Replace the window's day partitions of every view with the validated tables, then drop the staging."""
    settings = settings or get_settings()
    days = days_between(to_utc(validated["start"]), to_utc(validated["end"]))
    written = {}
    for name, table in _read_staged(validated).items():
        written[name] = write_days(settings.features_uri, name, table.to_pandas(), days)
    through = validated.get("lake_through")
    mark_built(settings.features_uri, days, to_utc(through) if through else None)
    storage.remove(staging_uri(settings, validated["token"]), recursive=True)
    return {
        "start": validated["start"],
        "end": validated["end"],
        "rows": validated["rows"],
        "days": [d.isoformat() for d in days],
        "written": written,
    }


def build_features(
    start: datetime | str, end: datetime | str, settings: Settings | None = None, *, validate: bool = True
) -> dict[str, Any]:
    """Compute, validate and publish the features of the days in ``[start, end)`` in this process."""
    settings = settings or get_settings()
    window = rebuild_window(start=start, end=end, settings=settings)
    staged = compute_staged(window, settings)
    if validate:
        staged = validate_staged(staged, settings)
    return publish_staged(staged, settings)


# --------------------------------------------------------------------------- training sets (the training DAGs)


def training_window(
    *, end: datetime | str, train_days: float, valid_days: float, test_days: float
) -> dict[str, str]:
    """Time-based split ending at ``end``: train on the past, validate and test on the later days."""
    stop = to_utc(end)
    start = stop - timedelta(days=train_days + valid_days + test_days)
    bounds = split_bounds(start, stop, valid_days, test_days)
    return {
        "train_start": bounds.train_start.isoformat(),
        "valid_start": bounds.valid_start.isoformat(),
        "test_start": bounds.test_start.isoformat(),
        "end": bounds.end.isoformat(),
    }


def features_missing(window: dict[str, str], settings: Settings | None = None) -> str | None:
    """What a training window still lacks before its sets can be built, or None when it is ready.

    Ready means the lake is committed through the window's last hour and every day of the window
    that has data was published from a lake holding all of that day's hours in the window. A weekly
    run that fires before the catch-up (``make up``) or before the last hour of the week lands
    waits for this instead of training on a partial week.
    """
    settings = settings or get_settings()
    end = to_utc(window["end"])
    committed = committed_hours(settings.lake_uri)
    if not committed or committed[-1] < end - timedelta(hours=1):
        newest = committed[-1].isoformat() if committed else "no hour yet"
        return f"the lake is committed through {newest}; the window ends at {end.isoformat()}"
    # Days before the first committed hour have no data to build.
    first = max(to_utc(window["train_start"]), day_start(committed[0]))
    for day in days_between(first, end):
        day_end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        needed = min(day_end, end) - timedelta(hours=1)
        seen = built_through(settings.features_uri, day)
        if seen is None:
            return f"the features of {day.isoformat()} are not built yet"
        if seen < needed:
            return (f"the features of {day.isoformat()} were built from the lake through {seen.isoformat()}, "
                    f"before {needed.isoformat()} was ingested")
    return None


def sets_uri(settings: Settings, model: str, run_key: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_key)
    return join_uri(settings.lake_uri, "training_sets", model, safe)


def build_sets(
    model: str, window: dict[str, str], run_key: str, *, max_rows: int | None = None, add_chosen: bool = False,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Build and write the train/valid/test sets of ``model`` (atomic Parquet files, one per split).

    ``add_chosen`` adds each decision's assignee to the *training* candidates when the candidate rule
    missed them; validation and test never get it, so their scores count those misses.
    """
    settings = settings or get_settings()
    spec = model_spec(model)
    kind = spec.training_set
    bounds = {
        "train": (window["train_start"], window["valid_start"]),
        "valid": (window["valid_start"], window["test_start"]),
        "test": (window["test_start"], window["end"]),
    }
    out: dict[str, Any] = {"model": model, "kind": kind, "window": window, "uris": {}, "rows": {}, "groups": {}}
    for split, (lo, hi) in bounds.items():
        frame = training_set(kind, lo, hi, settings=settings, feature_service=spec.feature_service,
                             max_rows=max_rows if split == "train" else None, add_chosen=add_chosen and split == "train")
        uri = join_uri(sets_uri(settings, model, run_key), f"{split}.parquet")
        with storage.atomic_open(uri) as handle:
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), handle)
        out["uris"][split] = uri
        out["rows"][split] = len(frame)
        out["groups"][split] = int(frame["decision_id"].nunique())
        log.info("%s %s set: %d rows, %d decisions -> %s", model, split, len(frame), out["groups"][split], uri)
    return out


def validate_sets(sets: dict[str, Any], *, min_groups: int = 20, settings: Settings | None = None) -> dict[str, Any]:
    """The Great Expectations gate on every split; raises ``DataValidationError`` on a critical failure."""
    settings = settings or get_settings()
    frames = {}
    for split, uri in sets["uris"].items():
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            frames[split] = pq.read_table(handle).to_pandas()
    # The run's min_groups, but never below what the trainer itself needs (one floor for both).
    floor = model_spec(sets["model"]).floor
    outcome = validate_training_sets(frames, sets["kind"],
                                     min_groups={s: max(min_groups, floor.for_split(s)) for s in frames},
                                     settings=settings, run_name=f"training_sets-{sets['model']}")
    log.info("Great Expectations Data Docs for these training sets: %s", outcome.data_docs_path)
    raise_for_critical(outcome)
    return {**sets, "validation": {"data_docs_path": outcome.data_docs_path, "warnings": len(outcome.warnings)}}


