"""Where the ingestion reads and stages: landing files, staging area and quarantine.

Landing (written by producers, gzip JSONL, raw and PII-bearing)::

    <landing>/events/dt=<YYYY-MM-DD>/hour=<HH>/*.jsonl.gz

Staging lives next to the raw data it came from, ``<landing>/_staging/ingest_events/<YYYYMMDDTHH>/``,
so data that still holds PII never touches the lake; a committed hour removes its staging folder.
Quarantine (also raw lines, access-restricted like landing)::

    <quarantine>/events/hour=<YYYYMMDDTHH>/quarantine-<token>.parquet
"""

from __future__ import annotations

import fnmatch
import posixpath
import uuid
from datetime import datetime

from maestro_ml import storage
from maestro_ml.lake import INGEST_DATASET, as_hour, hour_key
from maestro_ml.settings import Settings, get_settings, join_uri


def landing_hour_dir(landing_uri: str, hour: datetime | str) -> str:
    h = as_hour(hour)
    return join_uri(landing_uri, "events", f"dt={h:%Y-%m-%d}", f"hour={h:%H}")


def list_hour_files(landing_uri: str, hour: datetime | str) -> list[str]:
    """The landing files of one hour (``*.jsonl.gz``), sorted by name (that order is the dedupe order)."""
    fs, folder = storage.filesystem(landing_hour_dir(landing_uri, hour))
    try:
        names = fs.ls(folder, detail=False)  # one listing of the hour's folder: cheaper than a glob
    except FileNotFoundError:
        return []
    return sorted(
        storage.to_uri(fs, name) for name in names if fnmatch.fnmatchcase(posixpath.basename(name), "*.jsonl.gz")
    )


def staging_uri(hour: datetime | str, settings: Settings | None = None) -> str:
    """The staging folder of one ingest hour (in the raw zone, see the module docstring)."""
    settings = settings or get_settings()
    return join_uri(settings.landing_uri, "_staging", INGEST_DATASET, hour_key(hour))


def quarantine_dir(quarantine_uri: str, hour: datetime | str) -> str:
    return join_uri(quarantine_uri, "events", f"hour={hour_key(hour)}")


def quarantine_file_uri(quarantine_uri: str, hour: datetime | str, token: str) -> str:
    return join_uri(quarantine_dir(quarantine_uri, hour), f"quarantine-{token}.parquet")


def new_token() -> str:
    """A fresh run token: names every file one attempt writes, so attempts never collide."""
    return uuid.uuid4().hex[:16]
