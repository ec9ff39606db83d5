"""``maestro_ml.feast_ext.online.get_service_features`` against ``FeatureStore.get_online_features(...).to_df()``.

Both environments (embedded SQLite; Redis with the SQL registry, skipped with a reason when unreachable), on
the tiny lake materialized as the DAG does, plus rows written on purpose: an entity with null values, rows
far older than their view's TTL, entities and pairs without rows in some views, a task without any row, and
(Redis) a key expired by the server. Frames must be equal: same columns in the same order, dtypes and values.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from feast.protos.feast.types.Value_pb2 import DoubleList, FloatList, Int64List
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.value_type import ValueType
from tests.feast_support import redis_keys, throwaway_feast_env

from maestro_ml.contracts.features import REQUEST_TIME_FIELD, TIMESTAMP_COLUMN
from maestro_ml.feast_ext import online
from maestro_ml.feast_ext.online import decode_cells, get_service_features, reference_value
from maestro_ml.feast_ext.steps import materialize_all
from maestro_ml.features import offline, steps
from maestro_ml.settings import get_settings

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=2)  # the tiny preset simulates two days
WINDOW = {"start": START.isoformat(), "end": END.isoformat()}
SERVICES = ["task_assignment_v2", "task_duration_v2", "task_assignment_v1"]

# Written on purpose (see ``crafted``): ids no simulated entity has.
NULL_USER = "u_olr_nulls"
STALE_USER = "u_olr_stale"
EXPIRED_USER = "u_olr_expired"
MISSING_USER = "u_olr_missing"
STALE_TASK = "t_olr_stale"
MISSING_TASK = "t_olr_missing"
MISSING_REPORTER = "u_olr_no_reporter"


@pytest.fixture(scope="module")
def built(tiny_home: Path) -> dict[str, Any]:
    return steps.build_features(START, END)


@pytest.fixture(scope="module", params=["local", "server"])
def store(request: pytest.FixtureRequest, built: dict[str, Any], tiny_home: Path) -> Iterator[Any]:
    """The tiny lake's store in a throwaway project (and, on the server, registry database and keys)."""
    from maestro_ml.feast_ext.store import apply_if_changed, get_store

    with throwaway_feast_env(request.param, tiny_home, prefix="maestro_olr") as project:
        apply_if_changed()
        materialize_all(WINDOW)
        feature_store = get_store()
        feature_store.maestro_env = request.param  # type: ignore[attr-defined]
        yield feature_store
        feature_store.teardown()
        if request.param == "server":
            assert redis_keys(project) == []


def _latest(view: str) -> pd.DataFrame:
    rows = offline.read_view(get_settings().features_uri, view)
    return rows.sort_values(TIMESTAMP_COLUMN).drop_duplicates(
        [c for c in rows.columns if c.endswith("_id") and c in ("user_id", "task_id", "project_id", "reporter_id")],
        keep="last",
    )


def _template(view: str, keys: dict[str, str], at: datetime, **values: Any) -> pd.DataFrame:
    """One row of ``view``: a real row's values with other keys, another timestamp and some values replaced."""
    row = _latest(view).iloc[[-1]].reset_index(drop=True).copy()
    for name, value in {**keys, **values}.items():
        row[name] = pd.Series([value], dtype=row[name].dtype if value is not None else "object")
    row[TIMESTAMP_COLUMN] = pd.Timestamp(at)
    return row


@pytest.fixture(scope="module")
def crafted(store: Any) -> dict[str, Any]:
    """Rows written on purpose through ``write_to_online_store``: nulls, stale rows (older than the TTL)."""
    tasks = _latest("task_features")
    open_task = tasks[tasks[TIMESTAMP_COLUMN] >= END - timedelta(hours=20)].iloc[-1]
    stale = END - timedelta(days=20)  # user_profile, user_activity and task_features keep rows 2 days
    writes = {
        "user_profile_features": [
            _template("user_profile_features", {"user_id": NULL_USER}, END - timedelta(hours=1),
                      seniority=None, weekly_capacity_hours=None, team_id=None),
            _template("user_profile_features", {"user_id": STALE_USER}, stale),
            _template("user_profile_features", {"user_id": EXPIRED_USER}, END - timedelta(hours=1)),
        ],
        "user_activity_features": [
            _template("user_activity_features", {"user_id": NULL_USER}, END - timedelta(hours=1),
                      avg_slip_ratio_90d=None, open_estimated_hours=np.nan),
            _template("user_activity_features", {"user_id": STALE_USER}, stale),
        ],
        "task_features": [
            _template("task_features", {"task_id": STALE_TASK}, stale, project_id=open_task["project_id"],
                      estimated_hours=None, due_at_unix=None),
        ],
        "user_project_features": [
            _template("user_project_features", {"user_id": NULL_USER, "project_id": open_task["project_id"]},
                      END - timedelta(hours=1), up_assignments_decayed=None),
        ],
        "user_text_features": [
            _template("user_text_features", {"user_id": STALE_USER}, stale),
        ],
    }
    for view, frames in writes.items():
        for frame in frames:
            store.write_to_online_store(view, frame)
    if store.maestro_env == "server":  # a key Redis expires (key_ttl_seconds' mechanism) reads as missing
        import redis

        provider = store._get_provider().online_store
        key = provider._redis_keys(store.config, [_serialized_user(EXPIRED_USER)])[0]
        client = redis.Redis(host="127.0.0.1", port=6379)
        assert client.exists(key)
        client.pexpire(key, 1)
        time.sleep(0.05)
        assert not client.exists(key)
    return {"task": open_task}


def _serialized_user(user_id: str) -> bytes:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey

    return serialize_entity_key(
        EntityKey(join_keys=["user_id"], entity_values=[ValueProto(string_val=user_id)]),
        entity_key_serialization_version=3,
    )


def _candidates(n: int = 12) -> list[str]:
    users = _latest("user_profile_features")
    return users["user_id"].tolist()[:n]


def _rows(task: Any, users: list[str], reporter: str, at: datetime, task_id: str | None = None) -> list[dict]:
    return [
        {
            "task_id": task_id or task["task_id"],
            "project_id": task["project_id"],
            "reporter_id": reporter,
            "user_id": user,
            REQUEST_TIME_FIELD: int(at.timestamp()),
        }
        for user in users
    ]


def _reporters() -> list[str]:
    return _latest("user_reporter_features")["reporter_id"].tolist()


def _assert_same(store: Any, service: str, rows: list[dict] | dict[str, list], **kwargs: Any) -> pd.DataFrame:
    expected = store.get_online_features(features=store.get_feature_service(service), entity_rows=rows).to_df()
    got = get_service_features(store, service, rows, **kwargs)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    return got


@pytest.fixture
def no_fallback(store: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fails the test if get_service_features answers through ``get_online_features`` (its fallback)."""
    retriever = online.retriever_for(store)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("fell back to get_online_features")

    monkeypatch.setattr(retriever, "_fallback", refuse)
    yield


# --------------------------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("service", SERVICES)
def test_a_scoring_request_gives_what_get_online_features_gives(
    store: Any, crafted: dict[str, Any], service: str, no_fallback: None
) -> None:
    users = _candidates()
    reporters = _reporters()
    got = _assert_same(store, service, _rows(crafted["task"], users, reporters[0], END))
    assert len(got) == len(users)
    features = [c for c in got.columns if c not in ("task_id", "user_id", "project_id", "reporter_id")]
    assert len(features) >= 40 and got[features].notna().to_numpy().mean() > 0.9  # real values
    if service.endswith("_v2"):
        assert {"title_similarity", "up_assignments_all", "ur_assignments_recent", "skill_match"} <= set(features)


def test_the_pair_history_of_candidates_who_worked_with_the_reporter(
    store: Any, crafted: dict[str, Any], no_fallback: None
) -> None:
    """Pairs with rows in user_project/user_reporter (non-zero history) next to pairs without any."""
    pairs = _latest("user_reporter_features")
    reporter = pairs["reporter_id"].value_counts().index[0]
    users = pairs.loc[pairs["reporter_id"] == reporter, "user_id"].tolist()[:8] + _candidates(6)
    got = _assert_same(store, "task_assignment_v2", _rows(crafted["task"], users, reporter, END))
    assert (got["ur_assignments_all"] > 0).any() and (got["ur_assignments_all"] == 0).any()


def test_nulls_stale_rows_and_entities_without_rows(store: Any, crafted: dict[str, Any], no_fallback: None) -> None:
    users = [NULL_USER, STALE_USER, EXPIRED_USER, MISSING_USER, *_candidates(4)]
    task = crafted["task"]
    at = END + timedelta(days=3)  # beyond the 2-day TTL of every simulated row as well
    for task_id in (None, STALE_TASK, MISSING_TASK):
        got = _assert_same(store, "task_assignment_v2", _rows(task, users, MISSING_REPORTER, at, task_id=task_id))
        by_user = got.set_index("user_id")
        # Feast's online path does not apply the views' TTLs: stale rows come back, as they do here.
        assert by_user.loc[STALE_USER, "tenure_days"] == pytest.approx(
            _latest("user_profile_features").iloc[-1]["tenure_days"]
        )
        assert pd.isna(by_user.loc[NULL_USER, "seniority"]) and pd.isna(by_user.loc[NULL_USER, "avg_slip_ratio_90d"])
        assert by_user.loc[MISSING_USER, ["tenure_days", "open_tasks", "skill_match"]].isna().all()
        if store.maestro_env == "server":
            assert pd.isna(by_user.loc[EXPIRED_USER, "tenure_days"])
        if task_id == MISSING_TASK:  # Feast's answer: the task view's project_id (null) replaces the row's
            assert got["project_id"].isna().all() and got["urgency_ratio"].isna().all()
        if task_id == STALE_TASK:
            assert got["due_in_hours_now"].isna().all() and got["estimated_hours"].isna().all()


def test_column_inputs_repeated_rows_and_the_request_time_argument(
    store: Any, crafted: dict[str, Any], no_fallback: None
) -> None:
    users = _candidates(5)
    rows = _rows(crafted["task"], users + users[:2], _reporters()[-1], END)  # the same pair twice
    columns = {k: [row[k] for row in rows] for k in rows[0]}
    _assert_same(store, "task_assignment_v2", columns)
    without_time = [{k: v for k, v in row.items() if k != REQUEST_TIME_FIELD} for row in rows]
    got = get_service_features(store, "task_assignment_v2", without_time, request_time=END)
    pd.testing.assert_frame_equal(got, _assert_same(store, "task_assignment_v2", rows), check_exact=True)
    # One row, and entity rows in another column order (another plan, another column order from Feast).
    reordered = [{k: row[k] for k in reversed(list(row))} for row in rows[:1]]
    _assert_same(store, "task_assignment_v2", reordered)


def test_requests_outside_the_fast_path_are_answered_by_feast(store: Any, crafted: dict[str, Any]) -> None:
    rows = _rows(crafted["task"], _candidates(3), _reporters()[0], END)
    calls = []
    retriever = online.retriever_for(store)
    original = retriever._fallback

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    retriever._fallback = counting  # type: ignore[method-assign]
    try:
        # Integer ids for a string join key: Feast converts them (to "1", ...), and so do we.
        ints = [{**row, "user_id": i} for i, row in enumerate(rows)]
        _assert_same(store, "task_assignment_v2", ints)
        assert calls == []
        # No request time: Feast raises its own error, through the fallback.
        with pytest.raises(Exception) as feast_error:
            store.get_online_features(features=store.get_feature_service("task_assignment_v2"),
                                      entity_rows=[{k: v for k, v in row.items() if k != REQUEST_TIME_FIELD}
                                                   for row in rows])
        with pytest.raises(type(feast_error.value)):
            get_service_features(store, "task_assignment_v2",
                                 [{k: v for k, v in row.items() if k != REQUEST_TIME_FIELD} for row in rows])
        assert calls == [1]
    finally:
        retriever._fallback = original  # type: ignore[method-assign]


def test_redis_reads_without_the_script_give_the_same_frame(
    store: Any, crafted: dict[str, Any], monkeypatch: pytest.MonkeyPatch, no_fallback: None
) -> None:
    """``use_lua: false`` (and Redis Cluster, GLIDE) read through one pipeline of HMGETs instead of the script."""
    if store.maestro_env != "server":
        pytest.skip("Redis only")
    monkeypatch.setattr(store.config.online_store, "use_lua", False)
    users = [NULL_USER, STALE_USER, EXPIRED_USER, MISSING_USER, *_candidates(6)]
    _assert_same(store, "task_assignment_v2", _rows(crafted["task"], users, _reporters()[0], END))


@pytest.mark.parametrize("in_c", [True, False])
def test_redis_script_replies_read_with_and_without_hiredis(
    store: Any, crafted: dict[str, Any], monkeypatch: pytest.MonkeyPatch, no_fallback: None, in_c: bool
) -> None:
    """The script answers a flat array of cells when hiredis parses replies, else one string: same frame."""
    if store.maestro_env != "server":
        pytest.skip("Redis only")
    from maestro_ml.feast_ext import redis_store

    online_store = store._get_provider().online_store
    monkeypatch.setattr(redis_store, "_parses_in_c", lambda client: in_c)
    monkeypatch.setattr(online_store, "_read_script", None, raising=False)
    monkeypatch.setattr(online_store, "_read_array", getattr(online_store, "_read_array", None), raising=False)
    users = [NULL_USER, STALE_USER, EXPIRED_USER, MISSING_USER, *_candidates(6)]
    _assert_same(store, "task_assignment_v2", _rows(crafted["task"], users, _reporters()[0], END))
    assert online_store._read_array is in_c
    monkeypatch.setattr(online_store, "_read_script", None)  # the next test registers the script it needs


def test_a_refreshed_registry_is_followed(store: Any, crafted: dict[str, Any], no_fallback: None) -> None:
    rows = _rows(crafted["task"], _candidates(4), _reporters()[0], END)
    _assert_same(store, "task_assignment_v2", rows)
    store.refresh_registry()
    _assert_same(store, "task_assignment_v2", rows)


# --------------------------------------------------------------------------------------------- decoding


def _cells() -> list[tuple[ValueType, list[bytes | None]]]:
    def ser(**kwargs: Any) -> bytes:
        return ValueProto(**kwargs).SerializeToString()

    ints = [0, 1, 127, 128, 300, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, -1, -(2**63), -300]
    return [
        (ValueType.DOUBLE, [ser(double_val=v) for v in (0.0, -0.0, 1.5, -1e300, float("inf"), float("nan"))]
         + [None, b""]),
        (ValueType.FLOAT, [ser(float_val=v) for v in (0.0, 0.1, -3.25, 1e38, float("nan"))] + [None, b""]),
        (ValueType.INT64, [ser(int64_val=v) for v in ints] + [None, b""]),
        (ValueType.INT32, [ser(int32_val=v) for v in (0, 1, -1, 2**31 - 1, -(2**31))] + [None]),
        (ValueType.STRING, [ser(string_val=v) for v in ("", "a", "é" * 70, "x" * 300)] + [None, b""]),
        (ValueType.FLOAT_LIST, [ser(float_list_val=FloatList(val=v)) for v in ([], [1.0], [0.5] * 256)] + [None]),
        (ValueType.DOUBLE_LIST, [ser(double_list_val=DoubleList(val=[1.0, 2.0]))]),
        (ValueType.INT64_LIST, [ser(int64_list_val=Int64List(val=[1, -2]))]),
        (ValueType.BOOL, [ser(bool_val=True), ser(bool_val=False), None]),
        # Stored with another type than declared: the reference decoder's answer, whatever it is.
        (ValueType.FLOAT, [ser(double_val=2.5), ser(int64_val=3)]),
        (ValueType.INT64, [ser(double_val=2.5), ser(string_val="7")]),
        (ValueType.STRING, [ser(int64_val=5)]),
        # Wire forms Feast never writes but protobuf reads: an int32 wider than 32 bits (truncated), a
        # non-minimal varint, a string field repeated (the last one wins), a double with an unknown field.
        (ValueType.INT32, [b"\x18" + _varint(2**40 + 5)] * 9),
        (ValueType.INT64, [b"\x20\x81\x00"] * 9),
        (ValueType.STRING, [ser(string_val="a") + ser(string_val="b")]),
        (ValueType.DOUBLE, [ser(double_val=1.0) + b"\xf8\x01\x01"] * 9),
    ]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return type(a) is type(b) and a == b


def test_cells_decode_to_what_feast_reads() -> None:
    for value_type, cells in _cells():
        expected = [None if not c else reference_value(c, value_type) for c in cells]
        got = decode_cells(cells, value_type)
        assert all(_same(a, b) for a, b in zip(got, expected, strict=True)), (value_type, got, expected)


def test_view_columns_decode_to_what_feast_reads_in_bulk() -> None:
    """Columns long enough for the NumPy path: uniform widths, mixed widths, nulls, unexpected bytes."""
    rng = np.random.default_rng(3)
    columns, types = [], []
    for value_type, cells in _cells():
        for _ in range(3):
            picked = [cells[i] for i in rng.integers(0, len(cells), size=40)]
            columns.append(picked)
            types.append(value_type)
    uniform = [ValueProto(int64_val=int(v)).SerializeToString() for v in rng.integers(1_600_000_000, 1_900_000_000, 40)]
    columns.append(uniform)
    types.append(ValueType.INT64)
    decoded = online._decode_columns(columns, types, [None] * len(columns))
    for cells, value_type, column in zip(columns, types, decoded, strict=True):
        expected = [None if not c else reference_value(c, value_type) for c in cells]
        assert all(_same(a, b) for a, b in zip(column.rows(), expected, strict=True)), value_type
        frame = pd.DataFrame({"x": expected})
        pd.testing.assert_series_equal(pd.Series(column.array(), name="x"), frame["x"], check_exact=True)


# --------------------------------------------------------------------------------------------- on-demand views


def test_pair_affinity_similarity_equals_the_per_row_cosine_to_the_bit(
    tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The title cosine converts each distinct list once; values must equal the plain per-row computation."""
    monkeypatch.syspath_prepend(str(get_settings().feature_repo_dir))
    import on_demand_features as odf

    udf = odf.pair_affinity_features.feature_transformation.udf
    rng = np.random.default_rng(5)
    n = 1100  # more than one block of rows
    shared = rng.standard_normal(256).astype(np.float32).tolist()
    vectors = [shared if i % 3 else rng.standard_normal(256).astype(np.float32).tolist() for i in range(n)]
    vectors[4] = None
    profiles = [rng.standard_normal(256).astype(np.float32).tolist() for _ in range(n)]
    profiles[7], profiles[9] = None, [0.0] * 256
    now = int(END.timestamp())
    inputs = {name: [None] * n for name in ("up_assignments", "up_completions", "up_assignments_decayed",
                                             "up_last_active_unix", "project_assignments_decayed",
                                             "project_last_assigned_unix", "ur_assignments", "ur_completions",
                                             "ur_assignments_decayed", "ur_last_active_unix", "title_profile_tasks")}
    inputs.update({"title_vector": vectors, "title_profile": profiles, REQUEST_TIME_FIELD: [now] * n})
    got = udf(inputs)["title_similarity"]
    for vector, profile, value in zip(vectors, profiles, got, strict=True):
        if vector is None or profile is None:
            assert value is None
            continue
        a, b = np.asarray(vector, dtype=np.float64), np.asarray(profile, dtype=np.float64)
        norm = float(np.linalg.norm(a) * np.linalg.norm(b))
        expected = float(a @ b) / norm if norm > 0 else None
        assert value == expected and type(value) is type(expected)


def test_decoded_float_lists_hand_numpy_the_same_values_without_reading_them(
    tiny_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Float lists decoded in bulk are ``FloatRow``s: equal to Feast's lists, the same udf outputs to the bit,
    plain lists in frames and in copies, and a changed row is read as the list it now is."""
    monkeypatch.syspath_prepend(str(get_settings().feature_repo_dir))
    import on_demand_features as odf

    rng = np.random.default_rng(11)
    cells = [ValueProto(float_list_val=FloatList(val=rng.standard_normal(256).astype(np.float32).tolist()))
             .SerializeToString() for _ in range(12)]
    (column,) = online._decode_columns([cells], [ValueType.FLOAT_LIST], [None])
    rows, expected = column.rows(), [reference_value(c, ValueType.FLOAT_LIST) for c in cells]
    assert all(type(r) is online.FloatRow for r in rows) and rows == expected
    assert np.array_equal(np.array(rows, dtype=np.float64), np.array(expected, dtype=np.float64))
    assert all(type(v) is list for v in column.array())  # frames hold plain lists
    import copy
    import pickle

    assert type(pickle.loads(pickle.dumps(rows[0]))) is list and type(copy.deepcopy(rows[0])) is list
    np.asarray(rows[1])[0] = 7.0  # a caller's array is its own
    assert np.asarray(rows[1])[0] == rows[1][0] != 7.0

    n = 6
    udf = odf.pair_affinity_features.feature_transformation.udf
    inputs: dict[str, list[Any]] = {name: [None] * n for name in (
        "up_assignments", "up_completions", "up_assignments_decayed", "up_last_active_unix",
        "project_assignments_decayed", "project_last_assigned_unix", "ur_assignments", "ur_completions",
        "ur_assignments_decayed", "ur_last_active_unix", "title_profile_tasks")}
    inputs[REQUEST_TIME_FIELD] = [int(END.timestamp())] * n
    fast = {**inputs, "title_vector": [rows[0]] * n, "title_profile": [*rows[2:7], None]}
    plain = {**inputs, "title_vector": [expected[0]] * n, "title_profile": [*expected[2:7], None]}
    got, want = udf(fast)["title_similarity"], udf(plain)["title_similarity"]
    assert got == want and [type(v) for v in got] == [type(v) for v in want]

    rows[3][0] = 100.0  # a changed row drops its array
    rows[4].append(1.0)
    assert np.asarray(rows[3])[0] == 100.0 and np.asarray(rows[4]).shape == (257,)


def test_the_frame_shortcut_builds_what_the_constructor_builds() -> None:
    n = 4
    strings = np.empty(n, dtype=object)
    strings[:] = ["a", None, "c", "d"]
    nulls = np.full(n, None, dtype=object)
    lists = np.empty(n, dtype=object)
    for i in range(n):
        lists[i] = [float(i)]
    arrays = {"f": np.arange(n, dtype=np.float64), "i": np.arange(n), "s": strings, "z": nulls, "l": lists,
              "g": np.array([np.nan, 1.0, 2.0, 3.0])}
    got = online._frame(dict(arrays), n)
    assert got._mgr.nblocks == 3  # the shortcut
    pd.testing.assert_frame_equal(got, pd.DataFrame(arrays, copy=False), check_exact=True)
    stamps = np.empty(n, dtype=object)
    stamps[:] = [datetime(2026, 1, 1, tzinfo=UTC)] * n  # pandas infers datetimes: the constructor
    mixed = {**arrays, "t": stamps, "py": [1, 2, 3, 4]}
    pd.testing.assert_frame_equal(online._frame(dict(mixed), n), pd.DataFrame(mixed, copy=False), check_exact=True)
