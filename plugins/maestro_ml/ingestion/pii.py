"""PII masking: keyed hashes for identifying fields, scrubbing for everything else.

* ``events.PII_HASHED`` fields (``user_joined.email``, ``user_joined.name``) are replaced by
  ``HMAC-SHA256(key, value)`` as lowercase hex. Emails are hashed lowercased and stripped, names
  stripped with runs of whitespace collapsed, so the same person hashes the same way. The
  column keeps its name (the lake schema is the contract's); the ``users`` state table
  carries the values as ``email_hash`` / ``name_hash``.
* Every other string column (free text, names of projects, titles, statuses, time zones, and
  any string column added to the contract later) is scrubbed: emails become ``[EMAIL]`` and
  phone numbers ``[PHONE]``, with vectorised RE2 regexes (``pyarrow.compute``).
* Identifier columns (``event_id``, ``*_id``) are not scrubbed, so joins keep working. An
  identifier that nevertheless holds an email is replaced by ``pii:<hmac>`` (consistent across
  events, so it still joins) rather than written as is. The phone regex only matches where no
  letter, digit, ``_`` or ``-`` touches the number, so UUIDs and ids such as ``u_0012345678``
  quoted in free text are never mangled.

The phone regex knows international numbers (``+CC ...``), North-American forms
(``(555) 123-4567``, ``555-123-4567``, ``555.123.4567``, ``555-0100``), European national forms
with a trunk ``0`` (``030 1234567``, ``0171-1234567``, ``06 12 34 56 78``), bare runs of 10-15
digits, and an optional extension (``x123``). Dates, times, versions, IP addresses and short
numbers are left alone.
"""

from __future__ import annotations

import hashlib
import hmac
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from maestro_ml.contracts import events

EMAIL_TOKEN = "[EMAIL]"
PHONE_TOKEN = "[PHONE]"
ID_HASH_PREFIX = "pii:"

EMAIL_PATTERN = r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
_PHONE_BODY = (
    r"(?:"
    r"\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){2,5}"  # +1 555 123 4567, +44 20 7946 0958, +1-555-123-4567
    r"|\(\d{2,4}\)[ .\-]?\d{3,4}[ .\-]?\d{3,4}"  # (555) 123-4567
    r"|\d{3}[ .\-]\d{3}[ .\-]\d{4}"  # 555-123-4567, 555.123.4567, 555 123 4567
    r"|\d{3}[ .\-]\d{4}"  # 555-0100
    r"|0\d{1,4}[ /\-]\d{5,8}(?:[ \-]\d{2,6})?"  # 030 1234567, 0171-1234567
    r"|0\d(?:[ .]\d{2}){4}"  # 06 12 34 56 78
    r"|\d{10,15}"  # 5551234567
    r")"
    r"(?:[ ]?(?:x|ext\.?)[ ]?\d{1,5})?"  # extension
)
# Group 1 and 2 are the characters around the number, put back by the replacement: RE2 has
# no look-around, and they keep the regex off digits inside UUIDs and ids.
PHONE_PATTERN = r"(^|[^\w\-+])" + _PHONE_BODY + r"($|[^\w\-])"
_PHONE_REPLACEMENT = r"\1" + PHONE_TOKEN + r"\2"

# Below this many rows an hour is masked in one thread: starting threads would cost more.
PARALLEL_ROWS = 50_000

# Strings that are not free text and not scrubbed (ids get the identifier rule instead).
NOT_SCRUBBED = frozenset({"event_type"})


def is_id_column(name: str) -> bool:
    return name == "event_id" or name.endswith("_id")


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, lowercase hex."""
    return hmac.digest(key, value.encode("utf-8"), hashlib.sha256).hex()


def normalise_email(value: str) -> str:
    return value.strip().lower()


def normalise_name(value: str) -> str:
    return " ".join(value.split())


_NORMALISERS = {"email": normalise_email, "name": normalise_name}


@dataclass
class MaskStats:
    hashed_values: int = 0
    emails_scrubbed: dict[str, int] = field(default_factory=dict)  # column -> cells changed
    phones_scrubbed: dict[str, int] = field(default_factory=dict)
    ids_pseudonymised: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "hashed_values": self.hashed_values,
            "emails_scrubbed": dict(sorted(self.emails_scrubbed.items())),
            "phones_scrubbed": dict(sorted(self.phones_scrubbed.items())),
            "ids_pseudonymised": dict(sorted(self.ids_pseudonymised.items())),
        }


def _as_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _mask(values: pa.Array) -> np.ndarray:
    result: np.ndarray = pc.fill_null(values, False).to_numpy(zero_copy_only=False)
    return result


def _hash_values(values: pa.Array, key: bytes, normalise: object = None) -> pa.Array:
    """Keyed hash of every non-null value, computed once per distinct value."""
    unique = pc.unique(values)
    plain = unique.to_pylist()
    norm = normalise if callable(normalise) else (lambda v: v)
    hashed = pa.array([None if v is None else keyed_hash(key, norm(v)) for v in plain], pa.string())
    return pc.take(hashed, pc.index_in(values, value_set=unique))


def _replace_where(column: pa.Array, hit: np.ndarray, pattern: str, replacement: str, passes: int = 1) -> pa.Array:
    rows = pa.array(hit)
    subset = pc.filter(column, rows)
    for _ in range(passes):
        subset = pc.replace_substring_regex(subset, pattern, replacement)
    return pc.replace_with_mask(column, rows, subset)


def scrub_text(column: pa.Array | pa.ChunkedArray, stats: MaskStats | None = None, name: str = "") -> pa.Array:
    """Emails -> ``[EMAIL]``, phone numbers -> ``[PHONE]`` in one string column (nulls stay null)."""
    array = _as_array(column)
    if array.null_count == len(array):
        return array
    has_at = _mask(pc.match_substring(array, "@"))
    if has_at.any():
        hit = has_at & _mask(pc.match_substring_regex(array, EMAIL_PATTERN))
        if hit.any():
            array = _replace_where(array, hit, EMAIL_PATTERN, EMAIL_TOKEN)
            if stats is not None:
                stats.emails_scrubbed[name] = stats.emails_scrubbed.get(name, 0) + int(hit.sum())
    hit = _mask(pc.match_substring_regex(array, PHONE_PATTERN))
    if hit.any():
        # Two passes: a number directly after another shares its delimiter with the first match.
        array = _replace_where(array, hit, PHONE_PATTERN, _PHONE_REPLACEMENT, passes=2)
        if stats is not None:
            stats.phones_scrubbed[name] = stats.phones_scrubbed.get(name, 0) + int(hit.sum())
    return array


def pseudonymise_ids(
    column: pa.Array | pa.ChunkedArray, key: bytes, stats: MaskStats | None = None, name: str = ""
) -> pa.Array | pa.ChunkedArray:
    """Identifiers that hold an email -> ``pii:<hmac>``; others unchanged.

    Ids are not checked for phone numbers: that would cost a regex pass over every id of every
    event, and generated ids (UUIDs, ``u_0042``) never are phone numbers.
    """
    if column.null_count == len(column):
        return column
    has_at = pc.match_substring(column, "@")
    if not pc.any(has_at).as_py():
        return column
    array = _as_array(column)
    hit = _mask(pc.match_substring(array, "@")) & _mask(pc.match_substring_regex(array, EMAIL_PATTERN))
    if not hit.any():
        return column
    rows = pa.array(hit)
    subset = pc.filter(array, rows)
    replaced = pa.array([ID_HASH_PREFIX + keyed_hash(key, v) for v in subset.to_pylist()], pa.string())
    if stats is not None:
        stats.ids_pseudonymised[name] = stats.ids_pseudonymised.get(name, 0) + int(hit.sum())
    return pc.replace_with_mask(array, rows, replaced)


def mask_table(event_type: str, table: pa.Table, key: bytes, stats: MaskStats | None = None) -> pa.Table:
    """Mask every string column of one event type's table; other columns pass through."""
    if not key:
        raise ValueError("the PII key is empty")
    stats = stats if stats is not None else MaskStats()
    if table.num_rows == 0:
        return table
    hashed = events.PII_HASHED.get(event_type, ())
    columns = []
    for index, name in enumerate(table.column_names):
        column = table.column(index)
        if not pa.types.is_string(column.type) or name in NOT_SCRUBBED:
            columns.append(column)
        elif name in hashed:
            values = _as_array(column)
            stats.hashed_values += len(values) - values.null_count
            columns.append(_hash_values(values, key, _NORMALISERS.get(name)))
        elif is_id_column(name):
            columns.append(pseudonymise_ids(column, key, stats, f"{event_type}.{name}"))
        else:
            columns.append(scrub_text(column, stats, f"{event_type}.{name}"))
    return pa.Table.from_arrays(columns, schema=table.schema)


def mask_tables(tables: dict[str, pa.Table], key: bytes, max_workers: int = 2) -> tuple[dict[str, pa.Table], MaskStats]:
    """``mask_table`` for every event type of an hour (types in parallel: the kernels release the GIL)."""
    if not key:
        raise ValueError("the PII key is empty")
    names = list(tables)
    per_type = [MaskStats() for _ in names]

    def one(i: int) -> pa.Table:
        return mask_table(names[i], tables[names[i]], key, per_type[i])

    if max_workers > 1 and len(names) > 1 and sum(t.num_rows for t in tables.values()) >= PARALLEL_ROWS:
        with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="ingest-mask") as pool:
            masked = list(pool.map(one, range(len(names))))
    else:
        masked = [one(i) for i in range(len(names))]
    stats = MaskStats()
    for part in per_type:
        stats.hashed_values += part.hashed_values
        stats.emails_scrubbed.update(part.emails_scrubbed)
        stats.phones_scrubbed.update(part.phones_scrubbed)
        stats.ids_pseudonymised.update(part.ids_pseudonymised)
    return dict(zip(names, masked, strict=True)), stats
