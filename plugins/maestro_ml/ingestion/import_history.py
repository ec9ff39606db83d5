"""Import exported history: place each event in a landing folder near its time, then ingest those hours.

Live landing files hold the events of their hour, and the parser quarantines an event more than
``allowed_lateness_hours`` older than the hour it landed in (``absurd_timestamp``): right for
producers, wrong for a years-long tracker export dropped into one folder. This import reads the
export (gzip or plain JSON lines, one or more files, byte-order marks and CRLF allowed) and files
every line under the last hour (23:00 UTC) of its ``occurred_at``'s day, well inside the allowed
lateness, so a sparse history costs one gated commit per day with events, not one per hour
(``--per hour`` files each line under its own hour). A day whose last hour has not passed yet
goes by the hour, so no hour ahead of the live schedule is written. It then ingests exactly those
hours through the same path as a backfill (``steps.ingest_range``: row checks, PII masking, dedupe,
the GX gate before each hour's commit, the state) and the state gate. Nothing is dropped here:
the lines are copied byte for byte, so the parser still judges every one; a line whose hour
cannot be read (malformed JSON, no ``occurred_at``, one in the future) goes with the first placed
hour, where the parser quarantines it with its reason.

Placing is idempotent: an hour's import file is named after the import (``--name``, by default
a digest of the export's contents), so importing the same export again rewrites the same files
and re-ingests the same hours to the same lake. Hours that already hold live files keep them;
their commit is simply redone with the imported file beside them.

Run::

    python -m maestro_ml.ingestion.import_history export.jsonl.gz [more files] [--name NAME] [--per day|hour]
        [--place-only]

``--place-only`` stops after placing, for a backfill through Airflow instead (``ingest_events``
with ``start``/``end``, at most ``max_range_hours`` per run); the summary lists the ranges.
After an import, run ``build_features`` over the imported days (its ``start``/``end`` Params).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import logging
import sys
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from maestro_ml import storage
from maestro_ml.ingestion.decode import decompress, strip_line_boms
from maestro_ml.ingestion.layout import landing_hour_dir
from maestro_ml.lake import hour_key
from maestro_ml.settings import Settings, get_settings, join_uri

log = logging.getLogger(__name__)

USAGE_ERROR = 2
_DECODER = msgspec.json.Decoder()


class UnusableExport(ValueError):
    """The export cannot be imported as given (a usage error: no retry changes it)."""


@dataclass
class Placement:
    """Where an export's lines went: ``files`` maps each hour to the landing file written for it."""

    name: str
    lines: int = 0
    placed: int = 0
    unplaceable: int = 0
    files: dict[datetime, str] = field(default_factory=dict)

    @property
    def hours(self) -> list[datetime]:
        return sorted(self.files)

    def ranges(self, max_hours: int) -> list[tuple[str, str]]:
        """``ingest_events`` ``start``/``end`` pairs covering the placed hours, each at most ``max_hours`` long."""
        out: list[tuple[str, str]] = []
        start: datetime | None = None
        previous: datetime | None = None
        for hour in self.hours:
            if start is None or previous is None:
                start = hour
            elif hour - start >= timedelta(hours=max_hours):
                out.append((f"{start:%Y-%m-%dT%H}", f"{previous + timedelta(hours=1):%Y-%m-%dT%H}"))
                start = hour
            previous = hour
        if start is not None and previous is not None:
            out.append((f"{start:%Y-%m-%dT%H}", f"{previous + timedelta(hours=1):%Y-%m-%dT%H}"))
        return out


def read_export(uri: str) -> bytes:
    """The text of one export file: gzip (one or more members) or plain; byte-order marks removed."""
    raw = storage.read_bytes(uri)
    if raw[:2] == b"\x1f\x8b":
        text = decompress(raw)
        if text.unreadable is not None:
            raise UnusableExport(f"{uri}: {text.unreadable}")
        if text.truncated:  # the cut tail still goes in, to be quarantined as a bad line
            log.warning("%s: %s; the partial last line is imported as it is", uri, text.detail)
        raw = text.text + (b"\n" + text.tail if text.tail else b"")
    return strip_line_boms(raw)


def landing_hour(hour: datetime, per: str, now: datetime) -> datetime:
    """The landing hour of an event of ``hour``: its day's last hour once that has passed (``per="day"``)."""
    if per == "hour":
        return hour
    day_end = hour.replace(hour=23)
    return day_end if day_end + timedelta(hours=1) <= now else hour


def hour_of(line: bytes, latest: datetime) -> datetime | None:
    """The UTC hour of a line's ``occurred_at``; None when it has none that can be read, or one after ``latest``."""
    try:
        event = _DECODER.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError):
        return None
    occurred = event.get("occurred_at") if isinstance(event, dict) else None
    if not isinstance(occurred, str):
        return None
    try:
        moment = datetime.fromisoformat(occurred.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > latest:  # a future hour committed now would look like live data to the hourly schedule
        return None
    return moment.replace(minute=0, second=0, microsecond=0)


def default_name(texts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(hashlib.sha256(text).digest())
    return f"history-{digest.hexdigest()[:12]}"


def place(
    uris: Sequence[str], settings: Settings | None = None, *, name: str | None = None, per: str = "day"
) -> Placement:
    """Copy every line of the export files into a landing folder (one gzip file per hour; see the module doc)."""
    if per not in ("day", "hour"):
        raise UnusableExport(f"per={per!r}: use 'day' or 'hour'")
    settings = settings or get_settings()
    if not uris:
        raise UnusableExport("no export file given")
    texts = []
    for uri in uris:
        if not storage.exists(uri):
            raise UnusableExport(f"{uri}: no such file")
        texts.append(read_export(uri))
    placement = Placement(name=name or default_name(texts))
    if not placement.name.replace("-", "").replace("_", "").isalnum():
        raise UnusableExport(f"--name {placement.name!r}: use letters, digits, '-' and '_' only")
    by_hour: dict[datetime, list[bytes]] = {}
    unplaceable: list[bytes] = []
    now = datetime.now(UTC)
    latest = now + timedelta(minutes=settings.future_tolerance_minutes)
    for text in texts:
        for line in text.split(b"\n"):
            line = line.rstrip(b"\r")
            if not line.strip():
                continue
            placement.lines += 1
            hour = hour_of(line, latest)
            if hour is None:
                unplaceable.append(line)
            else:
                by_hour.setdefault(landing_hour(hour, per, now), []).append(line)
    if not by_hour:
        raise UnusableExport(
            f"none of the {placement.lines} line(s) has an occurred_at this import can read "
            "(an ISO-8601 time such as 2024-03-01T12:00:00Z): nothing to place"
        )
    placement.placed = sum(len(lines) for lines in by_hour.values())
    placement.unplaceable = len(unplaceable)
    if unplaceable:  # the parser quarantines them there, with their reason
        by_hour[min(by_hour)] = by_hour[min(by_hour)] + unplaceable
    for hour, lines in sorted(by_hour.items()):
        uri = join_uri(landing_hour_dir(settings.landing_uri, hour), f"{placement.name}.jsonl.gz")
        # Level 1 and mtime 0: fast, and the same export gives the same bytes.
        data = gzip.compress(b"\n".join(lines) + b"\n", compresslevel=1, mtime=0)
        storage.write_bytes_atomic(uri, data)
        placement.files[hour] = uri
    return placement


def ingest_placed(placement: Placement, settings: Settings | None = None) -> dict[str, Any]:
    """Ingest the placed hours oldest first, each through the GX gate before its commit, then the state gate."""
    from maestro_ml.ingestion.steps import ingest_range, validate_current_state

    settings = settings or get_settings()
    ingested = ingest_range(placement.hours, settings)
    ingested["state_validation"] = validate_current_state(ingested["hours"][-1], settings)
    return ingested


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m maestro_ml.ingestion.import_history",
        description="Place exported events in the landing folders of their own hours, then ingest those hours.",
    )
    parser.add_argument("exports", nargs="+", help="export files: JSON lines, gzip or plain (local paths or s3://)")
    parser.add_argument("--name", default=None,
                        help="the import's name, used for its landing files (default: a digest of the exports)")
    parser.add_argument("--per", choices=("day", "hour"), default="day",
                        help="land each day's events in its last hour (fewer commits), or each event in its own hour")
    parser.add_argument("--place-only", action="store_true", default=False,
                        help="only place the events; print the ingest_events ranges for a backfill through Airflow")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    settings = get_settings()
    try:
        placement = place(args.exports, settings, name=args.name, per=args.per)
    except (UnusableExport, OSError, zlib.error) as exc:
        print(f"import_history: {exc}", file=sys.stderr)
        return USAGE_ERROR
    summary: dict[str, Any] = {
        "name": placement.name,
        "lines": placement.lines,
        "placed": placement.placed,
        "unplaceable": placement.unplaceable,
        "hours": len(placement.hours),
        "first_hour": hour_key(placement.hours[0]),
        "last_hour": hour_key(placement.hours[-1]),
        "ingest_events_ranges": [{"start": s, "end": e} for s, e in placement.ranges(settings.max_range_hours)],
    }
    if not args.place_only:
        from maestro_ml.validation import DataValidationError

        try:
            ingested = ingest_placed(placement, settings)
        except DataValidationError as exc:  # the other hours are committed; these need a fix and a re-run
            print(json.dumps(summary, indent=2))
            print(f"import_history: {exc}", file=sys.stderr)
            return 1
        summary.update(rows_valid=ingested["rows_valid"], rows_quarantined=ingested["rows_quarantined"],
                       days=len(ingested["days"]), build_features={"start": ingested["days"][0],
                                                                   "end": _next_day(ingested["days"][-1])})
    print(json.dumps(summary, indent=2))
    return 0


def _next_day(day: str) -> str:
    return f"{datetime.fromisoformat(day) + timedelta(days=1):%Y-%m-%d}"


if __name__ == "__main__":
    raise SystemExit(main())
