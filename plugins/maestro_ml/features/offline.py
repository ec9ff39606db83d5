"""The offline feature tables: one directory per view, one Parquet file per UTC day, replaced atomically.

Layout: ``<features_uri>/<view>/<YYYY-MM-DD>.parquet`` holds the view's rows with
``event_timestamp`` on that day. Feast's file offline store reads the directory (``data_sources.py``).
``<features_uri>/_built/<YYYY-MM-DD>.json`` records the newest committed lake hour each day was
computed from, so a training can tell a day built from complete data from one built too early.

A day's file is a pure function of the committed events up to that day's end (rows at time t use
events up to t only), so rewriting it is idempotent: a re-run, a retry or a later run that
recomputes the day writes the same rows plus whatever late events added. Each file is written to a
hidden temporary sibling and renamed, so readers never see half a file; a killed build leaves
every day either old or new, and its retry completes the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.contracts.features import TIMESTAMP_COLUMN, VIEWS, View, arrow_schema
from maestro_ml.settings import day_start, join_uri, to_utc


def view_uri(features_uri: str, view: str) -> str:
    if view not in VIEWS:
        raise KeyError(f"unknown feature view {view!r}; known: {sorted(VIEWS)}")
    return join_uri(features_uri, view)


def partition_uri(features_uri: str, view: str, day: date) -> str:
    return join_uri(view_uri(features_uri, view), f"{day.isoformat()}.parquet")


def built_uri(features_uri: str, day: date) -> str:
    """Where a day's build record lives: which lake hours the day's features were computed from."""
    return join_uri(features_uri, "_built", f"{day.isoformat()}.json")


def mark_built(features_uri: str, days: Iterable[date], lake_through: datetime | None) -> None:
    """Record that ``days`` were published from a lake committed through the hour ``lake_through``."""
    record = {"lake_through": lake_through.isoformat() if lake_through else None}
    for day in days:
        storage.write_json_atomic(built_uri(features_uri, day), {"day": day.isoformat(), **record})


def built_through(features_uri: str, day: date) -> datetime | None:
    """The newest lake hour the day's published features saw, or None if the day was never built."""
    uri = built_uri(features_uri, day)
    if not storage.exists(uri):
        return None
    through = storage.read_json(uri).get("lake_through")
    return to_utc(through) if through else None


def days_between(start: datetime, end: datetime) -> list[date]:
    """The UTC days that ``[start, end)`` touches."""
    first = day_start(start)
    days = []
    while first < end:
        days.append(first.date())
        first += timedelta(days=1)
    return days


def to_arrow(view: View, frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame[view.columns], preserve_index=False)
    return table.cast(arrow_schema(view))


def write_days(features_uri: str, view_name: str, frame: pd.DataFrame, days: Iterable[date]) -> dict[str, int]:
    """Replace the view's partition of each day in ``days`` with ``frame``'s rows of that day.

    A day without rows loses its file (the recomputation found nothing there). Returns rows per
    written day (ISO date -> rows).
    """
    view = VIEWS[view_name]
    table = to_arrow(view, frame)
    stamps = frame[TIMESTAMP_COLUMN]
    written: dict[str, int] = {}
    for day in days:
        lo = pd.Timestamp(day, tz="UTC")
        mask = ((stamps >= lo) & (stamps < lo + pd.Timedelta(days=1))).to_numpy()
        part = table.filter(pa.array(mask))
        uri = partition_uri(features_uri, view_name, day)
        if part.num_rows == 0:
            storage.remove(uri)
        else:
            with storage.atomic_open(uri) as handle:
                pq.write_table(part, handle, compression="zstd")
        written[day.isoformat()] = part.num_rows
    return written


def read_view(
    features_uri: str, view_name: str, start: datetime | None = None, end: datetime | None = None
) -> pd.DataFrame:
    """The view's rows with ``start <= event_timestamp < end`` (either bound optional), as written."""
    return read_partitions(view_uri(features_uri, view_name), arrow_schema(VIEWS[view_name]), start, end)


def read_partitions(
    directory: str,
    schema: pa.Schema,
    start: datetime | None = None,
    end: datetime | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Rows of one view directory (a file per day) with ``start <= event_timestamp < end``; only those days are read."""
    files = sorted(storage.glob(join_uri(directory, "*.parquet")))
    if start is not None or end is not None:
        lo = day_start(start).date() if start else date.min
        hi = end.astimezone(UTC).date() if end else date.max
        files = [f for f in files if lo <= date.fromisoformat(f.rsplit("/", 1)[-1][:10]) <= hi]
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    tables = []
    for uri in files:
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as handle:
            tables.append(pq.read_table(handle, columns=columns))
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    frame = table.to_pandas()
    frame[TIMESTAMP_COLUMN] = frame[TIMESTAMP_COLUMN].astype("datetime64[ns, UTC]")
    if start is not None:
        frame = frame[frame[TIMESTAMP_COLUMN] >= pd.Timestamp(start)]
    if end is not None:
        frame = frame[frame[TIMESTAMP_COLUMN] < pd.Timestamp(end)]
    return frame.reset_index(drop=True)
