"""The state-merge rule: current-state tables (``events.STATE_SCHEMAS``) from events, last writer wins.

Each state table is split into column groups, and each group carries the event time that
set it. Folding events in keeps, per key and group, the candidate with the latest event time
(ties broken by the group's values, largest first), so the fold is idempotent and
order-independent: applying an hour twice, or hours out of order, gives the same state.
The lake owns this rule because its readers (``lake.read_state``) merge a table's base and
deltas with it; ingestion (``maestro_ml.ingestion.state``) writes those deltas.

========  ===========================  ==================================================
table     group (time column)          set by
========  ===========================  ==================================================
users     joined (``joined_at``)       ``user_joined``: team, hashes, seniority, capacity,
                                       time zone, skills
users     left (``left_at``)           ``user_left``
teams     ``first_seen_at`` (min),     any ``user_joined`` / ``project_created`` naming
          ``updated_at`` (max)         the team
projects  created (``created_at``)     ``project_created``
tasks     created (``created_at``)     ``task_created`` (its ``actor_id`` is the reporter)
tasks     status (``status_changed_at``) ``task_created`` (todo), ``task_status_changed``
                                       (to_status), ``task_completed`` (done),
                                       ``task_reopened`` (todo); equal times: the most
                                       advanced status in ``events.TASK_STATUSES`` wins
tasks     assignment (``assigned_at``) ``task_assigned``
tasks     completion (``completed_at``) ``task_completed`` (latest completion; a reopen
                                       changes ``status``, not ``completed_at``)
========  ===========================  ==================================================

``updated_at`` is the latest time of any group of the row. PII arrives hashed: the lake's
``user_joined.email`` / ``name`` (already keyed hashes) become ``email_hash`` / ``name_hash``.

Storage (``lake.state_dir``): each ingest hour writes one *delta* per table, the state rows
its own events give (``events_to_state``), replacing that hour's earlier delta; every
``COMPACT_AFTER`` hourly deltas are merged into one *run* file, and every ``RUNS_PER_BASE`` runs
into the table's *base* (``maestro_ml.ingestion.state``). Readers (``lake.read_state``) merge
base, runs and deltas with the same last-writer-wins rule (``merge_states``), which is
idempotent, so a delta merged twice (a kill during compaction) changes nothing. An hour
therefore costs its own size, not the state's. Every file is written atomically; a retry after
a kill simply re-applies the hour.

"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from maestro_ml.contracts import events

STATE_EVENT_TYPES: tuple[str, ...] = (
    "user_joined",
    "user_left",
    "project_created",
    "task_created",
    "task_status_changed",
    "task_completed",
    "task_reopened",
    "task_assigned",
)
_STATUS_RANK = "_status_rank"


@dataclass(frozen=True)
class Group:
    time: str
    values: tuple[str, ...]


GROUPS: dict[str, tuple[Group, ...]] = {
    "users": (
        Group(
            "joined_at",
            ("team_id", "email_hash", "name_hash", "seniority", "weekly_capacity_hours", "timezone", "skills"),
        ),
        Group("left_at", ()),
    ),
    "projects": (Group("created_at", ("team_id", "name", "priority", "deadline", "required_skills")),),
    "tasks": (
        Group(
            "created_at",
            (
                "project_id",
                "title",
                "priority",
                "estimated_hours",
                "due_at",
                "required_skills",
                "parent_task_id",
                "depends_on_task_id",
                "reporter_id",
            ),
        ),
        Group("status_changed_at", ("status",)),
        Group("assigned_at", ("assignee_id",)),
        Group("completed_at", ()),
    ),
}
KEYS = {"users": "user_id", "teams": "team_id", "projects": "project_id", "tasks": "task_id"}


def _const(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


def _candidates(name: str, group: Group, tables: dict[str, pa.Table]) -> list[pa.Table]:
    """Rows (key, *values, time) for one group from this batch of events."""
    schema = events.STATE_SCHEMAS[name]
    key = KEYS[name]
    fields = [schema.field(key), *(schema.field(v) for v in group.values), schema.field(group.time)]
    out_schema = pa.schema([pa.field(f.name, f.type) for f in fields])

    def build(event_type: str, mapping: dict[str, pa.Array | pa.ChunkedArray]) -> pa.Table | None:
        table = tables.get(event_type)
        if table is None or table.num_rows == 0:
            return None
        arrays = []
        for f in out_schema:
            value = mapping.get(f.name)
            if value is None:
                value = table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
            arrays.append(value.cast(f.type) if value.type != f.type else value)
        return pa.Table.from_arrays(arrays, schema=out_schema)

    specs: list[tuple[str, dict[str, pa.Array | pa.ChunkedArray]]] = []
    if name == "users" and group.time == "joined_at" and "user_joined" in tables:
        t = tables["user_joined"]
        specs.append(("user_joined", {"email_hash": t["email"], "name_hash": t["name"], "joined_at": t["occurred_at"]}))
    elif name == "users" and group.time == "left_at" and "user_left" in tables:
        specs.append(("user_left", {"left_at": tables["user_left"]["occurred_at"]}))
    elif name == "projects" and "project_created" in tables:
        specs.append(("project_created", {"created_at": tables["project_created"]["occurred_at"]}))
    elif name == "tasks" and group.time == "created_at" and "task_created" in tables:
        created = tables["task_created"]
        specs.append(("task_created", {"created_at": created["occurred_at"], "reporter_id": created["actor_id"]}))
    elif name == "tasks" and group.time == "status_changed_at":
        for event_type, status in (
            ("task_created", "todo"),
            ("task_status_changed", None),
            ("task_completed", "done"),
            ("task_reopened", "todo"),
        ):
            if event_type in tables:
                t = tables[event_type]
                value = t["to_status"] if status is None else _const(status, t.num_rows)
                specs.append((event_type, {"status": value, "status_changed_at": t["occurred_at"]}))
    elif name == "tasks" and group.time == "assigned_at" and "task_assigned" in tables:
        specs.append(("task_assigned", {"assigned_at": tables["task_assigned"]["occurred_at"]}))
    elif name == "tasks" and group.time == "completed_at" and "task_completed" in tables:
        specs.append(("task_completed", {"completed_at": tables["task_completed"]["occurred_at"]}))
    built = [build(event_type, mapping) for event_type, mapping in specs]
    return [t for t in built if t is not None]


def _with_rank(table: pa.Table) -> pa.Table:
    rank = pc.index_in(table["status"], value_set=pa.array(events.TASK_STATUSES))
    return table.append_column(_STATUS_RANK, rank)


def _sort_latest_first(table: pa.Table, key: str, group: Group) -> pa.Table:
    """Rows by key, then latest time first, then largest values first (used only on ties)."""
    tiebreak = [c for c in group.values if not pa.types.is_list(table.schema.field(c).type)]
    if group.time == "status_changed_at":
        table = _with_rank(table)
        tiebreak = [_STATUS_RANK, *tiebreak]
    sort_keys = [(key, "ascending", "at_end"), (group.time, "descending", "at_end")]
    sort_keys += [(c, "descending", "at_end") for c in tiebreak]
    ordered = table.take(pc.sort_indices(table, sort_keys=sort_keys))
    return ordered.drop_columns([_STATUS_RANK]) if _STATUS_RANK in ordered.column_names else ordered


def _latest(table: pa.Table, key: str, group: Group) -> pa.Table:
    """Per key, the row with the latest group time; equal times: largest values (deterministic)."""
    table = table.filter(pc.is_valid(table[group.time]))
    n = table.num_rows
    if n == 0:
        return table
    codes = table[key].combine_chunks().dictionary_encode().indices.to_numpy(zero_copy_only=False).astype(np.int64)
    times = table[group.time].combine_chunks().cast(pa.int64()).to_numpy(zero_copy_only=False)
    order = np.lexsort((-times, codes))  # by key, latest first
    sorted_codes, sorted_times = codes[order], times[order]
    first = np.ones(n, dtype=bool)
    first[1:] = sorted_codes[1:] != sorted_codes[:-1]
    winners = order[first]
    # A key whose latest time is shared by two rows is a tie: settle it on the values.
    tied = np.zeros(n, dtype=bool)
    tied[:-1] = first[:-1] & (sorted_codes[1:] == sorted_codes[:-1]) & (sorted_times[1:] == sorted_times[:-1])
    if not tied.any():
        return table.take(pa.array(winners))
    tied_codes = sorted_codes[tied]
    candidates = np.flatnonzero(np.isin(codes, tied_codes))
    top = dict(zip(sorted_codes[first].tolist(), sorted_times[first].tolist(), strict=True))
    candidates = candidates[times[candidates] == np.array([top[c] for c in codes[candidates].tolist()])]
    settled = _sort_latest_first(table.take(pa.array(candidates)), key, group)
    settled_keys = settled[key].combine_chunks()
    keep = np.ones(settled.num_rows, dtype=bool)
    if settled.num_rows > 1:
        keep[1:] = pc.not_equal(settled_keys.slice(1), settled_keys.slice(0, len(settled_keys) - 1)).to_numpy(
            zero_copy_only=False
        )
    untied = winners[~np.isin(codes[winners], tied_codes)]
    return pa.concat_tables([table.take(pa.array(untied)), settled.filter(pa.array(keep))])


def _latest_of(times: list[pa.Array | pa.ChunkedArray]) -> pa.Array | pa.ChunkedArray:
    """Element-wise max of timestamp columns, nulls skipped (the kernel has no tz-aware variant)."""
    if len(times) == 1:
        return times[0]
    as_int = [t.cast(pa.int64()) for t in times]
    return pc.max_element_wise(*as_int, skip_nulls=True).cast(events.TS)


def _project(name: str, group: Group, table: pa.Table) -> pa.Table:
    columns = [KEYS[name], *group.values, group.time]
    schema = events.STATE_SCHEMAS[name]
    return table.select(columns).cast(pa.schema([pa.field(c, schema.field(c).type) for c in columns]))


def _assemble(name: str, keys: pa.Array, winners: list[tuple[Group, pa.Table]]) -> pa.Table:
    schema = events.STATE_SCHEMAS[name]
    key = KEYS[name]
    arrays: dict[str, pa.Array | pa.ChunkedArray] = {key: keys}
    for group, winner in winners:
        positions = pc.index_in(keys, value_set=winner[key])
        for column in (*group.values, group.time):
            arrays[column] = winner[column].take(positions)
    arrays["updated_at"] = _latest_of([arrays[g.time] for g in GROUPS[name]])
    return pa.Table.from_arrays([arrays[f.name] for f in schema], schema=schema)


def _sorted(table: pa.Table, key: str) -> pa.Table:
    return table.take(pc.sort_indices(table[key])) if table.num_rows > 1 else table


def _unique_keys(arrays: list[pa.Array | pa.ChunkedArray]) -> pa.Array:
    chunks = [c for a in arrays for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])]
    keys = pc.unique(pa.chunked_array(chunks, pa.string()).combine_chunks())
    return keys.filter(pc.is_valid(keys))


def _teams_from(parts: list[pa.Table]) -> pa.Table:
    schema = events.STATE_SCHEMAS["teams"]
    parts = [p.select(["team_id", "first_seen_at", "updated_at"]).cast(schema) for p in parts if p.num_rows]
    if not parts:
        return schema.empty_table()
    grouped = pa.concat_tables(parts).group_by("team_id").aggregate([("first_seen_at", "min"), ("updated_at", "max")])
    grouped = grouped.rename_columns(["team_id", "first_seen_at", "updated_at"])
    return _sorted(pa.Table.from_arrays([grouped[f.name] for f in schema], schema=schema), "team_id")


def events_to_state(name: str, tables: dict[str, pa.Table]) -> pa.Table:
    """The state rows one batch of events alone gives (a delta): only the keys it touches, sorted by key."""
    schema = events.STATE_SCHEMAS[name]
    if name == "teams":
        parts = []
        for event_type in ("user_joined", "project_created"):
            t = tables.get(event_type)
            if t is not None and t.num_rows:
                t = t.filter(pc.is_valid(t["team_id"]))
                parts.append(
                    pa.Table.from_arrays(
                        [t["team_id"], t["occurred_at"], t["occurred_at"]],
                        names=["team_id", "first_seen_at", "updated_at"],
                    )
                )
        return _teams_from(parts)
    key = KEYS[name]
    winners: list[tuple[Group, pa.Table]] = []
    for group in GROUPS[name]:
        candidates = _candidates(name, group, tables)
        if candidates:
            rows = pa.concat_tables([c.cast(candidates[0].schema) for c in candidates])
        else:
            rows = _project(name, group, schema.empty_table())
        winners.append((group, _latest(rows, key, group)))
    keys = _unique_keys([w[key] for _, w in winners])
    return _sorted(_assemble(name, keys, winners), key) if len(keys) else schema.empty_table()


def _to_schema(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``; a column added to the contract since the file was written reads as nulls."""
    if table.schema.names != schema.names:
        table = pa.Table.from_arrays(
            [table[f.name] if f.name in table.column_names else pa.nulls(table.num_rows, f.type) for f in schema],
            names=schema.names)
    return table.cast(schema)


def merge_states(name: str, parts: list[pa.Table]) -> pa.Table:
    """Last-writer-wins merge of state tables (a base and deltas, in any order, repeats allowed); sorted by key.

    Only the rows of the largest part (usually the base) whose keys appear in another part are
    re-decided; the rest are carried over.
    """
    schema = events.STATE_SCHEMAS[name]
    parts = sorted((_to_schema(p, schema) for p in parts if p is not None and p.num_rows), key=lambda p: -p.num_rows)
    if not parts:
        return schema.empty_table()
    key = KEYS[name]
    if len(parts) == 1:
        return _sorted(parts[0], key)
    if name == "teams":
        return _teams_from(parts)
    big, small = parts[0], parts[1:]
    touched = _unique_keys([p[key] for p in small])
    hit = pc.fill_null(pc.is_in(big[key], value_set=touched), False)
    carried = big.filter(pc.invert(hit))
    contested = [big.filter(hit), *small]
    winners = [
        (group, _latest(pa.concat_tables([_project(name, group, p) for p in contested]), key, group))
        for group in GROUPS[name]
    ]
    merged = _assemble(name, _unique_keys([p[key] for p in contested]), winners)
    return _sorted(pa.concat_tables([carried, merged]), key)


def fold(name: str, existing: pa.Table, tables: dict[str, pa.Table]) -> pa.Table:
    """The state table ``name`` after folding ``tables`` (event type -> lake rows) into ``existing``."""
    return merge_states(name, [existing, events_to_state(name, tables)])


SOURCES: dict[str, tuple[str, ...]] = {
    "users": ("user_joined", "user_left"),
    "teams": ("user_joined", "project_created"),
    "projects": ("project_created",),
    "tasks": ("task_created", "task_status_changed", "task_completed", "task_reopened", "task_assigned"),
}
