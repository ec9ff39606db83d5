"""maestro_ml.feast_ext against stock Feast on the same data: same online values, same stored bytes.

Real Feast, real SQLite files and the local Redis (skipped with a reason when it is unreachable). A throwaway
repo holds two feature views over Parquet: floats with nulls, int64 with nulls, strings, float lists, float32,
int32, bool and a field mapping; entities have several rows (latest wins), rows fall outside the window and on
its bounds. The stock path (``LocalComputeEngine`` + stock store) is the reference for everything else.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
from feast.infra.common.materialization_job import MaterializationTask
from feast.types import Array, Bool, Float32, Float64, Int32, Int64, String

from maestro_ml.feast_ext import (
    ENGINE_TYPE,
    REDIS_STORE_TYPE,
    SQLITE_STORE_TYPE,
    MaestroComputeEngine,
    materialize_window,
)
from maestro_ml.feast_ext import encoding as enc
from maestro_ml.feast_ext.engine import window_chunks

T0 = datetime(2026, 11, 1, tzinfo=UTC)
START, END = T0, T0 + timedelta(days=2)
N_ENTITIES = 1500
FLOATS = [f"f{i}" for i in range(10)]
REDIS_URL = os.environ.get("MAESTRO_TEST_REDIS", "127.0.0.1:6379")

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING)


# --------------------------------------------------------------------------------------------- fixtures


def _write_data(root: Path) -> None:
    """~5k rows: 1-5 rows per entity spread over [T0 - 1d, T0 + 3d], so some fall outside the window."""
    rng = np.random.default_rng(7)
    ids, stamps = [], []
    for i in range(N_ENTITIES):
        count = int(rng.integers(1, 6))
        seconds = rng.choice(4 * 86400, size=count, replace=False) - 86400
        ids += [f"u{i:05d}"] * count
        stamps += [T0 + timedelta(seconds=int(s), microseconds=int(rng.integers(0, 10**6))) for s in seconds]
    # Rows exactly on the window bounds and on 12-hour chunk boundaries.
    for i, at in enumerate([START, END, T0 + timedelta(hours=12), T0 + timedelta(hours=24)]):
        ids.append(f"u{N_ENTITIES + i:05d}")
        stamps.append(at)
    created = [s + timedelta(seconds=1) for s in stamps]
    base = len(ids)  # user_misc has no created timestamp, so it gets no event-time ties (their order is arbitrary)
    # Same event time twice: the later created timestamp must win (the stock dedup's tie-break).
    for i in range(3):
        at = T0 + timedelta(hours=30 + i)
        ids += [f"u{i:05d}", f"u{i:05d}"]
        stamps += [at, at]
        created += [at + timedelta(seconds=5), at + timedelta(seconds=2)]
    n = len(ids)

    def nullable(values: list[Any], rate: float) -> list[Any]:
        mask = rng.random(n) < rate
        return [None if m else v for v, m in zip(values, mask, strict=True)]

    stats = {
        "user_id": pa.array(ids),
        "event_timestamp": pa.array(stamps, pa.timestamp("us", tz="UTC")),
        "created": pa.array(created, pa.timestamp("us", tz="UTC")),
        **{name: pa.array(nullable(rng.normal(size=n).tolist(), 0.05), pa.float64()) for name in FLOATS},
        "count": pa.array(nullable(rng.integers(-(2**40), 2**40, n).tolist(), 0.1), pa.int64()),
        "label": pa.array(nullable([f"label-{v}-é" * int(v % 3 + 1) for v in rng.integers(0, 50, n)], 0.1)),
        "emb": pa.array(
            nullable([rng.random(int(rng.integers(0, 4))).astype(np.float32).tolist() for _ in range(n)], 0.1),
            pa.list_(pa.float32()),
        ),
    }
    pq.write_table(pa.table(stats), root / "stats.parquet")
    # The same rows as build_features lays a view out: one file per day, beside a file that is not data.
    by_day = root / "stats_by_day"
    by_day.mkdir()
    (by_day / "_built.json").write_text("{}")
    table = pa.table(stats)
    days = pc.strftime(table["event_timestamp"], format="%Y-%m-%d").to_pylist()
    for day in sorted(set(days)):
        pq.write_table(table.filter(pa.array([d == day for d in days])), by_day / f"{day}.parquet")
    misc = {
        "user_id": pa.array(ids),
        "event_timestamp": pa.array(stamps, pa.timestamp("ns", tz="UTC")),
        "ratio_raw": pa.array(nullable(rng.random(n).astype(np.float32).tolist(), 0.05), pa.float32()),
        "rank": pa.array(nullable(rng.integers(-1000, 1000, n).tolist(), 0.05), pa.int32()),
        "flag": pa.array(nullable((rng.random(n) < 0.5).tolist(), 0.05), pa.bool_()),
    }
    pq.write_table(pa.table(misc).slice(0, base), root / "misc.parquet")


def _views(root: Path, stats_by_day: bool = False) -> list[FeatureView]:
    stats_path = root / ("stats_by_day" if stats_by_day else "stats.parquet")
    stats = FeatureView(
        name="user_stats",
        entities=[user],
        ttl=timedelta(days=30),
        schema=[Field(name=n, dtype=Float64) for n in FLOATS]
        + [Field(name="count", dtype=Int64), Field(name="label", dtype=String), Field(name="emb", dtype=Array(Float32))],
        source=FileSource(
            path=str(stats_path), timestamp_field="event_timestamp", created_timestamp_column="created"
        ),
    )
    misc = FeatureView(
        name="user_misc",
        entities=[user],
        ttl=timedelta(days=30),
        schema=[Field(name="ratio", dtype=Float32), Field(name="rank", dtype=Int32), Field(name="flag", dtype=Bool)],
        source=FileSource(
            path=str(root / "misc.parquet"), timestamp_field="event_timestamp", field_mapping={"ratio_raw": "ratio"}
        ),
    )
    return [stats, misc]


FEATURE_REFS = [f"user_stats:{n}" for n in FLOATS + ["count", "label", "emb"]] + [
    "user_misc:ratio",
    "user_misc:rank",
    "user_misc:flag",
]
ENTITY_ROWS = [{"user_id": f"u{i:05d}"} for i in range(N_ENTITIES + 4)]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("feast_ext")
    _write_data(root)
    return root


StoreFactory = Callable[..., FeatureStore]


@pytest.fixture(scope="module")
def redis_url() -> str:
    import redis

    host, _, port = REDIS_URL.partition(":")
    try:
        redis.Redis(host=host, port=int(port or 6379), socket_connect_timeout=2).ping()
    except Exception as exc:  # any connection problem means there is no Redis to test against
        pytest.skip(f"Redis at {REDIS_URL} is unreachable: {exc}")
    return REDIS_URL


@pytest.fixture(scope="module")
def make_store(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreFactory]:
    """Builds applied stores; Redis ones get a unique project whose keys are deleted at the end."""
    projects: list[str] = []

    def factory(
        backend: str, *, engine: bool, store: bool, name: str, store_options: dict[str, Any] | None = None,
        stats_by_day: bool = False, **engine_options: Any,
    ) -> FeatureStore:
        root = tmp_path_factory.mktemp(name)
        online: dict[str, Any]
        if backend == "sqlite":
            project = "maestro_test"
            online = {"type": SQLITE_STORE_TYPE if store else "sqlite", "path": str(root / "online.db")}
        else:
            project = f"maestro_test_{uuid.uuid4().hex[:12]}"
            projects.append(project)
            online = {"type": REDIS_STORE_TYPE if store else "redis", "connection_string": REDIS_URL}
            online["key_ttl_seconds"] = 3600
        online.update(store_options or {})
        config = RepoConfig(
            project=project,
            provider="local",
            registry=str(root / "registry.db"),
            online_store=online,
            offline_store={"type": "file"},
            batch_engine={"type": ENGINE_TYPE, **engine_options} if engine else "local",
            entity_key_serialization_version=3,
        )
        fs = FeatureStore(config=config)
        fs.apply([user, *_views(data_root, stats_by_day)])
        return fs

    yield factory
    if projects:
        client = _redis()
        for project in projects:
            client.delete(*_redis_keys(project))


def online(fs: FeatureStore) -> dict[str, list[Any]]:
    return fs.get_online_features(features=FEATURE_REFS, entity_rows=ENTITY_ROWS).to_dict(
        include_event_timestamps=True
    )


def sqlite_rows(fs: FeatureStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored row of both tables, exactly as SQLite holds them."""
    conn = sqlite3.connect(fs.config.online_store.path)
    try:
        return {
            view: conn.execute(
                f'SELECT entity_key, feature_name, value, value_text, event_ts, created_ts, typeof(event_ts) '
                f'FROM "{fs.project}_{view}" ORDER BY entity_key, feature_name'
            ).fetchall()
            for view in ("user_stats", "user_misc")
        }
    finally:
        conn.close()


def _redis() -> Any:
    import redis

    host, _, port = REDIS_URL.partition(":")
    return redis.Redis(host=host, port=int(port or 6379))


def _redis_keys(project: str) -> list[bytes]:
    """The Redis key of every entity in the data: serialized entity key + project (the stock layout)."""
    ids = {"user_id": pa.array([row["user_id"] for row in ENTITY_ROWS])}
    return [k + project.encode() for k in enc.reference_entity_keys(ids, {"user_id": ValueType.STRING}, 3)]


def redis_hashes(fs: FeatureStore) -> dict[bytes, dict[bytes, bytes]]:
    """Every entity hash of the store's project, keyed without the project suffix."""
    keys = _redis_keys(fs.project)
    with _redis().pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
            pipe.ttl(key)
        replies = pipe.execute()
    out = {}
    for key, hashes, ttl in zip(keys, replies[::2], replies[1::2], strict=True):
        if hashes:
            assert 0 < ttl <= 3600, "key_ttl_seconds must be applied like the stock writer does"
            out[key[: -len(fs.project)]] = hashes
    return out


def stored(fs: FeatureStore, backend: str) -> Any:
    return sqlite_rows(fs) if backend == "sqlite" else redis_hashes(fs)


@pytest.fixture(scope="module")
def stock(make_store: StoreFactory) -> Callable[[str], tuple[Any, Any]]:
    """The stock result per backend (online dict, stored data), materialized once per module."""
    cache: dict[str, tuple[Any, Any]] = {}

    def get(backend: str) -> tuple[Any, Any]:
        if backend not in cache:
            fs = make_store(backend, engine=False, store=False, name=f"stock_{backend}")
            fs.materialize(START, END)
            cache[backend] = (online(fs), stored(fs, backend))
        return cache[backend]

    return get


BACKENDS = ["sqlite", "redis"]


def _needs(backend: str, request: pytest.FixtureRequest) -> None:
    if backend == "redis":
        request.getfixturevalue("redis_url")


# --------------------------------------------------------------------------------------------- equality


@pytest.mark.parametrize("backend", BACKENDS)
def test_bulk_path_matches_stock(backend: str, make_store: StoreFactory, stock: Any, request: Any) -> None:
    _needs(backend, request)
    expected_online, expected_stored = stock(backend)
    fs = make_store(backend, engine=True, store=True, name=f"bulk_{backend}")
    result = materialize_window(fs, START, END)

    assert set(result) == {"user_misc", "user_stats"}
    assert all(r["path"] == "bulk" and r["rows"] and r["chunks"] == 1 for r in result.values()), result
    assert online(fs) == expected_online
    assert stored(fs, backend) == expected_stored

    materialize_window(fs, START, END)  # idempotent
    assert online(fs) == expected_online
    assert stored(fs, backend) == expected_stored
    # The data exercises what it should: real values, nulls, and entities with nothing in the window.
    f0 = expected_online["f0"]
    assert sum(v is not None for v in f0) > N_ENTITIES // 2 and None in f0
    assert any(v is None for v in expected_online["label"]) and any(v for v in expected_online["emb"])


@pytest.mark.parametrize(("backend", "engine", "store"), [("sqlite", False, True), ("sqlite", True, False),
                                                          ("redis", False, True), ("redis", True, False)])
def test_mixed_paths_match_stock(
    backend: str, engine: bool, store: bool, make_store: StoreFactory, stock: Any, request: Any
) -> None:
    """Stock engine + Maestro store (proto ``online_write_batch``) and Maestro engine + stock store."""
    _needs(backend, request)
    expected_online, expected_stored = stock(backend)
    fs = make_store(backend, engine=engine, store=store, name=f"mixed_{backend}_{engine}_{store}")
    result = materialize_window(fs, START, END, views=["user_stats", "user_misc"])
    assert {r["path"] for r in result.values()} == {"proto" if engine else "stock"}
    assert online(fs) == expected_online
    assert stored(fs, backend) == expected_stored


@pytest.mark.parametrize("backend", BACKENDS)
def test_chunked_window_gives_the_same_result(
    backend: str, make_store: StoreFactory, stock: Any, request: Any
) -> None:
    """12-hour chunks and 700-row write batches: same result as stock over the whole window."""
    _needs(backend, request)
    expected_online, expected_stored = stock(backend)
    fs = make_store(backend, engine=True, store=True, name=f"chunked_{backend}", window_chunk_hours=12,
                    write_batch_rows=700)
    result = materialize_window(fs, START, END)
    assert all(r["chunks"] == 4 for r in result.values()), result
    assert online(fs) == expected_online
    assert stored(fs, backend) == expected_stored


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_to_online_store_matches_stock(
    backend: str, make_store: StoreFactory, data_root: Path, request: Any
) -> None:
    """``FeatureStore.write_to_online_store`` (proto rows through ``online_write_batch``), nulls included.

    The rows hold several unordered rows per entity: stock SQLite keeps the last one written, which the
    Maestro store reproduces with ``keep_newer: false``; both Redis stores keep the newest.
    """
    _needs(backend, request)
    frame = pq.read_table(data_root / "stats.parquet").slice(0, 400).to_pandas()
    options = {"keep_newer": False} if backend == "sqlite" else {}
    results = []
    for store in (False, True):
        fs = make_store(backend, engine=False, store=store, name=f"push_{backend}_{store}",
                        store_options=options if store else None)
        fs.write_to_online_store("user_stats", frame)
        results.append((online(fs), stored(fs, backend)))
    assert results[0] == results[1]
    assert sum(v is not None for v in results[0][0]["f0"]) > 50


def test_pull_latest_strategy_matches_stock_except_created_timestamp_ties(
    make_store: StoreFactory, stock: Any
) -> None:
    """``pull: latest`` (the offline store's ``pull_latest_from_table_or_query``), chunked.

    Feast's file (Dask) offline store does not reliably break event-time ties by created timestamp in
    ``pull_latest`` (it sorts twice without a stable sort; here it keeps the older created row of u00001),
    while the stock engine's own dedup does. That is why ``pull: auto`` reads with ``pull_all`` on that store.
    Everything but the three tie entities must match.
    """
    expected_online, expected_stored = stock("sqlite")
    fs = make_store("sqlite", engine=True, store=True, name="pull_latest", window_chunk_hours=12, pull="latest")
    materialize_window(fs, START, END)
    ties = {f"u{i:05d}" for i in range(3)}
    assert _without(online(fs), ties) == _without(expected_online, ties)
    tie_keys = {k for k in _redis_keys("") if k[-6:].decode() in ties}
    got, want = stored(fs, "sqlite"), expected_stored
    assert {v: [r for r in rows if r[0] not in tie_keys] for v, rows in got.items()} == {
        v: [r for r in rows if r[0] not in tie_keys] for v, rows in want.items()
    }


def _without(result: dict[str, list[Any]], ids: set[str]) -> dict[str, list[Any]]:
    keep = [i for i, uid in enumerate(result["user_id"]) if uid not in ids]
    return {name: [values[i] for i in keep] for name, values in result.items()}


@pytest.mark.parametrize(
    ("backend", "store_options"), [("sqlite", {}), ("redis", {}), ("redis", {"use_lua": False})], ids=str
)
def test_older_window_after_newer_does_not_overwrite(
    backend: str, store_options: dict[str, Any], make_store: StoreFactory, stock: Any, request: Any
) -> None:
    """Newer-wins: the second, older window only fills entities the newer one did not have.

    Stock Redis behaves the same way. Stock SQLite would roll those entities back to the older values; the
    Maestro SQLite store does not unless ``keep_newer: false`` is set. ``use_lua: false`` covers the Redis
    pipelined path (Redis Cluster, old event times, huge cells).
    """
    _needs(backend, request)
    expected_online, expected_stored = stock(backend)
    fs = make_store(backend, engine=True, store=True, name=f"order_{backend}", store_options=store_options)
    middle = START + timedelta(days=1)
    materialize_window(fs, middle, END)
    materialize_window(fs, START, middle)
    assert online(fs) == expected_online
    assert stored(fs, backend) == expected_stored


# --------------------------------------------------------------------------------------------- units


def test_encoders_match_feast_reference_on_edge_values() -> None:
    import feast.infra.online_stores.sqlite  # noqa: F401  (registers Feast's sqlite3 datetime adapter)

    columns = [
        (pa.array([0.0, -0.0, 1.5, None, float("inf"), float("nan"), 5e-324, 1e16, 1e-5], pa.float64()),
         ValueType.DOUBLE),
        (pa.array([0.0, 0.1, None, -3.25, 3.4e38, float("nan")], pa.float32()), ValueType.FLOAT),
        (pa.array([0, 1, -1, 127, 128, 300, -(2**63), 2**63 - 1], pa.int64()), ValueType.INT64),
        (pa.array([0, None, -5, 2**20, None, 2**53 + 1], pa.int64()), ValueType.INT64),
        (pa.array([0, -1, -(2**31), 2**31 - 1, None], pa.int32()), ValueType.INT32),
        (pa.array(["", "a", None, "é漢字", "x" * 200, "y" * 20_000]), ValueType.STRING),
        (pa.array([[1.0, 2.5], None, [], [3.5]], pa.list_(pa.float32())), ValueType.FLOAT_LIST),
        (pa.array([True, None, False]), ValueType.BOOL),
    ]
    for column, value_type in columns:
        feature = enc.encode_feature("x", column, value_type)
        cells, texts = enc.reference_feature(column.to_numpy(zero_copy_only=False), value_type)
        assert feature.cells.as_list() == cells, value_type
        assert [bytes(b) for b in feature.cells.as_bytearrays()] == cells, value_type
        assert feature.texts() == texts, value_type

    stamps = [datetime(1969, 12, 31, 23, 59, 59, 500_000, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
              datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC), datetime(2026, 5, 1, 3, 4, 5, 123_456, tzinfo=UTC),
              datetime(2262, 1, 1, tzinfo=UTC)]
    us = enc.timestamps_to_us(pa.array(stamps, pa.timestamp("ns", tz="UTC")))
    adapter = sqlite3.adapters[(datetime, sqlite3.PrepareProtocol)]
    assert enc.sqlite_timestamps(us) == [adapter(s.replace(tzinfo=None)) for s in stamps]
    cells_ts, _, _ = enc.redis_timestamps(us)
    assert cells_ts.as_list() == [enc._timestamp_proto(v) for v in us.tolist()]
    randoms = np.random.default_rng(1).integers(-(2**40), 2**42, 20_000)
    assert enc.redis_timestamps(randoms)[0].as_list() == [enc._timestamp_proto(v) for v in randoms.tolist()]

    for column, value_type in [(pa.array(["u1", "ü2", "x" * 300]), ValueType.STRING),
                               (pa.array([1, -5, 2**40]), ValueType.INT64)]:
        cols, keys = {"k": column}, {"k": value_type}
        assert enc.encode_entity_keys(cols, keys, 3) == enc.reference_entity_keys(cols, keys, 3)


def test_window_chunks_cover_the_window_oldest_first() -> None:
    chunks = window_chunks(START, END, timedelta(hours=5))
    assert chunks[0][0] == START and chunks[-1][1] == END and len(chunks) == 10 and chunks[-1][0] < END
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
    assert window_chunks(START, END, None) == [(START, END)]
    assert window_chunks(START, END, timedelta(days=3)) == [(START, END)]


def test_materialize_window_rejects_naive_or_reversed_windows(make_store: StoreFactory) -> None:
    fs = make_store("sqlite", engine=True, store=True, name="validate")
    with pytest.raises(ValueError, match="naive"):
        materialize_window(fs, datetime(2026, 11, 1), END)
    with pytest.raises(ValueError, match="after"):
        materialize_window(fs, END, START)


@pytest.mark.parametrize("chunk_hours", [0, 12])
def test_a_source_with_a_file_per_day_gives_what_stock_gives_from_one_file(
    chunk_hours: int, make_store: StoreFactory, stock: Any
) -> None:
    expected_online, expected_stored = stock("sqlite")
    fs = make_store("sqlite", engine=True, store=True, name=f"by_day_{chunk_hours}", stats_by_day=True,
                    window_chunk_hours=chunk_hours)
    from maestro_ml.feast_ext.engine import day_files

    assert day_files(fs.get_feature_view("user_stats").batch_source) is not None, "the day path is taken"
    materialize_window(fs, START, END)
    assert online(fs) == expected_online
    assert stored(fs, "sqlite") == expected_stored


def test_only_the_days_of_the_window_are_read(tmp_path: Path) -> None:
    from maestro_ml.feast_ext.engine import day_files, read_days

    folder = tmp_path / "view"
    folder.mkdir()
    at = [T0 + timedelta(hours=h) for h in (0, 23, 24, 47)]
    for day in ("2026-11-01", "2026-11-02"):
        rows = [t for t in at if t.strftime("%Y-%m-%d") == day]
        pq.write_table(pa.table({"user_id": [f"u{t.hour}" for t in rows],
                                 "event_timestamp": pa.array(rows, pa.timestamp("us", tz="UTC"))}), folder / f"{day}.parquet")
    (folder / "2019-01-01.parquet").write_bytes(b"not parquet: reading it would fail")
    source = FileSource(path=str(folder), timestamp_field="event_timestamp")
    files = day_files(source)
    assert files is not None and len(files) == 3
    window = read_days(files, ["user_id", "event_timestamp"], "event_timestamp", T0 + timedelta(hours=23), T0 + timedelta(hours=24))
    assert sorted(window["user_id"].to_pylist()) == ["u0", "u23"]  # both bounds inclusive, as the Dask store's
    (folder / "notes.txt").write_text("a file of another name: the source is read by Feast")
    assert day_files(source) is None
    # A view no build has written yet (on S3 its "folder" does not exist): nothing to read, not an error.
    assert day_files(FileSource(path=str(tmp_path / "never-written"), timestamp_field="event_timestamp")) == []


def test_engine_hands_unsupported_views_to_the_stock_engine(make_store: StoreFactory, data_root: Path) -> None:
    fs = make_store("sqlite", engine=True, store=True, name="reasons")
    engine = MaestroComputeEngine(
        repo_config=fs.config, offline_store=None, online_store=None, type=ENGINE_TYPE, window_chunk_hours=1
    )
    view = fs.get_feature_view("user_stats")
    assert engine.stock_reason(MaterializationTask(fs.project, view, START, END)) is None
    view.online = False
    assert engine.stock_reason(MaterializationTask(fs.project, view, START, END)) == "online is disabled"
    view.online = True
    assert engine.stock_reason(MaterializationTask(fs.project, view, START, END, only_latest=False))
    with pytest.raises(ValueError):
        MaestroComputeEngine(repo_config=fs.config, offline_store=None, online_store=None, chunk_hourz=1)
