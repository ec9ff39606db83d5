"""The scores in the lake (one file per scoring hour) and in the online store (``task_recommendations_v1``).

* **Lake.** ``<lake>/scores/task_recommendations/<YYYY-MM-DDTHH>.parquet``, written atomically; a re-run of the
  hour replaces the file, so the table holds each hour once. The file also keeps a row for every task the
  previous scored hour served that is no longer open and unassigned, with empty recommendations: the lake
  table is exactly what was pushed.
* **Online.** Every run writes with its own event timestamp, the wall-clock time of the write, later than any
  earlier write. Feast's Redis store keeps a stored value whose timestamp is equal to or newer than the write's
  (SQLite always overwrites): a re-score after a rollback that reused the hour's timestamp would change nothing
  on Redis and everything on SQLite. An hour older than the newest scored one (a backfill) goes to the lake
  only: it never overwrites newer scores online.
"""

from __future__ import annotations

import logging
import posixpath
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.contracts.features import TIMESTAMP_COLUMN, arrow_schema
from maestro_ml.contracts.scores import SCORES_TABLE, SERVED_TABLE, TASK_RECOMMENDATIONS
from maestro_ml.settings import Settings, get_settings, join_uri

log = logging.getLogger(__name__)

_HOUR_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2})\.parquet$")


def hour_key(at: datetime) -> str:
    """The scoring hour's name: the hour that ends at ``at`` is scored as of ``at`` (``YYYY-MM-DDTHH`` of ``at``)."""
    return pd.Timestamp(at).tz_convert(UTC).strftime("%Y-%m-%dT%H")


def table_uri(settings: Settings) -> str:
    return join_uri(settings.scores_uri, SCORES_TABLE)


def hour_uri(settings: Settings, hour: str) -> str:
    return join_uri(table_uri(settings), f"{hour}.parquet")


def scored_hours(settings: Settings | None = None) -> list[str]:
    """The scoring hours in the lake, oldest first."""
    settings = settings or get_settings()
    names = [posixpath.basename(uri) for uri in storage.glob(join_uri(table_uri(settings), "*.parquet"))]
    return sorted(m[1] for name in names if (m := _HOUR_FILE.match(name)))


def read_hour(hour: str, settings: Settings | None = None) -> pd.DataFrame:
    settings = settings or get_settings()
    fs, path = storage.filesystem(hour_uri(settings, hour))
    with fs.open(path, "rb") as handle:
        return pq.read_table(handle).to_pandas()


def _previous_hour(hour: str, settings: Settings) -> str | None:
    earlier = [h for h in scored_hours(settings) if h < hour]
    return earlier[-1] if earlier else None


def write_timestamp(settings: Settings, now: datetime | None = None) -> pd.Timestamp:
    """Now, or just after the newest timestamp already written if the clock says otherwise (never equal)."""
    now_ts = pd.Timestamp(now or datetime.now(UTC)).tz_convert(UTC).floor("us")
    hours = scored_hours(settings)
    if hours:
        newest = read_hour(hours[-1], settings)[TIMESTAMP_COLUMN].max()
        if pd.notna(newest) and now_ts <= newest:
            now_ts = pd.Timestamp(newest) + pd.Timedelta(milliseconds=1)
    return now_ts


def with_departed(scores: pd.DataFrame, hour: str, settings: Settings) -> pd.DataFrame:
    """``scores`` plus a row with empty recommendations for each task the previous hour served that is not
    in ``scores``'s unassigned open tasks any more (assigned or closed since)."""
    previous = _previous_hour(hour, settings)
    if previous is None:
        return scores
    before = read_hour(previous, settings)
    served = before.loc[before["recommended_user_ids"].map(len) > 0, "task_id"]
    still = scores.loc[scores["assigned"] == 0, "task_id"]
    gone = sorted(set(served) - set(still) - set(scores["task_id"]))
    recommended_gone = sorted(set(served) & set(scores.loc[scores["assigned"] == 1, "task_id"]))
    if recommended_gone:
        log.info("%d tasks were assigned since %s: their recommendations are withdrawn", len(recommended_gone),
                 previous)
    if not gone:
        return scores
    log.info("%d tasks served at %s are closed now: written with empty recommendations", len(gone), previous)
    rows = pd.DataFrame({"task_id": gone, "open_task": 0, "assigned": 0})
    return pd.concat([scores, rows], ignore_index=True)


def to_table(scores: pd.DataFrame, hour: str, written_at: pd.Timestamp) -> pa.Table:
    """The hour's rows in the contract's Arrow schema (``TASK_RECOMMENDATIONS``)."""
    frame = scores.copy()
    frame["scoring_hour"] = hour
    frame[TIMESTAMP_COLUMN] = written_at
    for column in ("recommended_user_ids", "recommended_scores", "recommendation_reasons"):
        frame[column] = [list(v) if isinstance(v, (list, np.ndarray)) else [] for v in frame[column]]
    for column in ("open_task", "assigned", "features_missing"):
        frame[column] = frame[column].fillna(0).astype("int64")
    schema = arrow_schema(TASK_RECOMMENDATIONS)
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def write_scores(scores: pd.DataFrame, at: datetime, settings: Settings | None = None,
                 now: datetime | None = None) -> dict[str, Any]:
    """Write the hour's scores (with the departed tasks) atomically to the lake; returns where and what."""
    settings = settings or get_settings()
    hour = hour_key(at)
    written_at = write_timestamp(settings, now)
    table = to_table(with_departed(scores, hour, settings), hour, written_at)
    uri = hour_uri(settings, hour)
    with storage.atomic_open(uri) as handle:
        pq.write_table(table, handle)
    newest = scored_hours(settings)[-1]
    opened = _column_sum(table, "open_task")
    log.info("wrote %d rows (%d open tasks) for %s to %s", table.num_rows, opened, hour, uri)
    return {"hour": hour, "uri": uri, "rows": table.num_rows, "open_tasks": opened,
            "written_at": written_at.isoformat(), "newest": hour >= newest}


def _column_sum(table: pa.Table, column: str) -> int:
    import pyarrow.compute as pc

    return int(pc.sum(table[column]).as_py() or 0)


def push_scores(hour: str, store: Any, settings: Settings | None = None) -> dict[str, Any]:
    """Push the hour's lake file to the online store, unless a newer hour is already scored (a backfill)."""
    settings = settings or get_settings()
    newest = scored_hours(settings)[-1]
    if hour < newest:
        log.info("%s is older than the newest scored hour %s: kept in the lake, not pushed online", hour, newest)
        return {"hour": hour, "pushed": 0, "skipped": f"newer scores online ({newest})"}
    frame = read_hour(hour, settings)
    store.write_to_online_store(TASK_RECOMMENDATIONS.name, frame)
    log.info("pushed %d rows of %s to the online store (%s)", len(frame), hour, TASK_RECOMMENDATIONS.name)
    return {"hour": hour, "pushed": len(frame)}


# At most this many served rows per model and hour are kept for monitoring (a seeded sample of whole rows).
SERVED_SAMPLE_ROWS = 20_000


def served_uri(settings: Settings, model: str, hour: str) -> str:
    return join_uri(settings.scores_uri, SERVED_TABLE, model, f"{hour}.parquet")


def write_served(kept: dict[str, list[pd.DataFrame]], hour: str, settings: Settings | None = None,
                 sample_rows: int = SERVED_SAMPLE_ROWS) -> dict[str, int]:
    """What each model was served this hour (its inputs and prediction per row; a seeded sample of at most
    ``sample_rows``), one file per model and hour, atomically; ``monitor_models`` compares it with training."""
    settings = settings or get_settings()
    written = {}
    for model, parts in kept.items():
        if not parts:
            continue
        frame = pd.concat(parts, ignore_index=True)
        if len(frame) > sample_rows:
            seed = int(pd.Timestamp(hour + ":00", tz="UTC").timestamp()) % (2**32)
            frame = frame.sample(n=sample_rows, random_state=seed).sort_index().reset_index(drop=True)
        frame.insert(0, "scoring_hour", hour)
        with storage.atomic_open(served_uri(settings, model, hour)) as handle:
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), handle)
        written[model] = len(frame)
    return written


def _served_uris(model: str, start: datetime, end: datetime, settings: Settings) -> list[str]:
    lo, hi = hour_key(start), hour_key(end)
    uris = storage.glob(join_uri(settings.scores_uri, SERVED_TABLE, model, "*.parquet"))
    return [uri for uri in sorted(uris)
            if (match := _HOUR_FILE.match(posixpath.basename(uri))) and lo <= match[1] < hi]


def read_served(model: str, start: datetime, end: datetime, settings: Settings | None = None) -> pd.DataFrame:
    """The served rows of ``model`` for the scoring hours in ``[start, end)`` (empty when none were kept)."""
    settings = settings or get_settings()
    frames = []
    for uri in _served_uris(model, start, end, settings):
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            frames.append(pq.read_table(handle).to_pandas())
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def served_row_count(model: str, start: datetime, end: datetime, settings: Settings | None = None) -> int:
    """How many served rows of ``model`` were kept for ``[start, end)``, from the files' footers alone."""
    settings = settings or get_settings()
    total = 0
    for uri in _served_uris(model, start, end, settings):
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total
