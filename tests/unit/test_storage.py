"""The fsspec layer: one code path for local paths and object-store URIs (memory:// stands in for s3://)."""

from __future__ import annotations

import pytest

from maestro_ml import storage


@pytest.fixture(params=["local", "memory"])
def base(request, tmp_path) -> str:
    return str(tmp_path / "store") if request.param == "local" else "memory://maestro-test-store"


def test_round_trip_and_glob(base: str) -> None:
    storage.write_json_atomic(f"{base}/a/one.json", {"n": 1})
    storage.write_bytes_atomic(f"{base}/a/two.json", b'{"n": 2}')
    found = storage.glob(f"{base}/a/*.json")
    assert [u.rsplit("/", 1)[-1] for u in found] == ["one.json", "two.json"]
    assert storage.read_json(found[0]) == {"n": 1}
    assert storage.exists(f"{base}/a/two.json")
    storage.remove(f"{base}/a", recursive=True)
    assert storage.glob(f"{base}/a/*.json") == []


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path) -> None:
    target = tmp_path / "out" / "data.bin"
    storage.write_bytes_atomic(str(target), b"old")
    with pytest.raises(RuntimeError), storage.atomic_open(str(target)) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.bin"]


def test_local_paths_and_file_urls_name_the_same_file(tmp_path) -> None:
    path = tmp_path / "new" / "folder" / "x.json"
    storage.write_json_atomic(f"file://{path}", {"n": 1})
    assert storage.read_json(str(path)) == {"n": 1} and storage.exists(f"file://{path}")
    storage.remove(str(path))
    storage.remove(str(path))  # removing what is gone is not an error
    assert not path.exists() and storage.local_path("s3://bucket/x") is None


def test_is_local() -> None:
    assert storage.is_local("/tmp/x")
    assert not storage.is_local("memory://x")


def test_object_store_listings_are_never_served_from_a_cache() -> None:
    """Another process (the next task, on another worker) writes the same prefixes: a listing cached by this
    process would hide its files (found by the distributed e2e test: a run's audit record was missing
    from a later ``history()`` in the process that had listed the folder before)."""
    fs, _ = storage.filesystem("s3://maestro-example/lake/_audit")
    assert fs.dircache.use_listings_cache is False
    local, _ = storage.filesystem("/tmp/maestro-example")
    assert storage.is_local_fs(local)
