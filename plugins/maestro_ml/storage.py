"""One file-system layer for local paths and object-store URIs (``s3://``), through fsspec.

Every read and write in the platform goes through these helpers so that the embedded
default (local files) and production (S3) take the same code path.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, Any

import fsspec
from fsspec.core import url_to_fs

_LOCAL_PROTOCOLS = ("file://", "local://", "memory://")


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system that serves ``uri`` and the path inside it.

    Object stores list without fsspec's listings cache: other processes (the next task, on another
    worker) write the same prefixes, and a cached listing would hide their files from a process that
    listed the prefix before (a promotion's audit record written by a run, read by the caller that
    triggered it). fsspec invalidates the cache only for a process's own writes.
    """
    if "://" in uri and not uri.startswith(_LOCAL_PROTOCOLS):
        fs, path = url_to_fs(uri, use_listings_cache=False)
    else:
        fs, path = url_to_fs(uri)
    return fs, path


def is_local(uri: str) -> bool:
    return is_local_fs(filesystem(uri)[0])


def local_path(uri: str) -> str | None:
    """The path of a local-file URI (a plain path or ``file://``), else None.

    Local files skip fsspec in the helpers below: an ingest hour writes and checks about twenty
    small files, and fsspec's per-call URI parsing and file-system lookup cost more than the files.
    """
    if "://" not in uri:
        return uri
    return uri[len("file://") :] if uri.startswith("file://") else None


def to_uri(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """Back from (fs, path) to a URI another process can open."""
    return fs.unstrip_protocol(path) if not is_local_fs(fs) else path


def is_local_fs(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols or "local" in protocols


def exists(uri: str) -> bool:
    local = local_path(uri)
    if local is not None:
        return os.path.exists(local)
    fs, path = filesystem(uri)
    return bool(fs.exists(path))


def glob(pattern: str) -> list[str]:
    """Sorted URIs matching a glob pattern; empty when nothing matches or the folder is missing."""
    fs, path = filesystem(pattern)
    return sorted(to_uri(fs, p) for p in fs.glob(path))


def read_bytes(uri: str) -> bytes:
    local = local_path(uri)
    if local is not None:
        with open(local, "rb") as handle:
            return handle.read()
    fs, path = filesystem(uri)
    data: bytes = fs.cat_file(path)
    return data


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def remove(uri: str, recursive: bool = False) -> None:
    local = local_path(uri)
    if local is not None:
        if recursive and os.path.isdir(local):
            shutil.rmtree(local, ignore_errors=True)
        else:
            with suppress(FileNotFoundError):
                os.remove(local)
        return
    fs, path = filesystem(uri)
    if fs.exists(path):
        fs.rm(path, recursive=recursive)


@contextmanager
def atomic_open(uri: str, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open ``uri`` for writing so that readers see the whole file or nothing.

    Locally the data goes to a hidden temporary sibling that is renamed over the target
    (``os.replace`` is atomic on POSIX). Object stores publish an object only when its
    upload completes, so there the write goes straight to the target.
    """
    if mode not in ("wb", "w"):
        raise ValueError("atomic_open writes only ('wb' or 'w')")
    local = local_path(uri)
    if local is not None:
        tmp = os.path.join(os.path.dirname(local), f".{os.path.basename(local)}.{uuid.uuid4().hex}.tmp")
        try:
            handle = open(tmp, mode)  # noqa: SIM115 - closed below, before the rename
        except FileNotFoundError:  # the folder is new
            os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
            handle = open(tmp, mode)  # noqa: SIM115
        try:
            with handle:
                yield handle
            os.replace(tmp, local)
        except BaseException:
            with suppress(FileNotFoundError):
                os.remove(tmp)
            raise
        return
    fs, path = filesystem(uri)
    parent = posixpath.dirname(path)
    if is_local_fs(fs):
        fs.makedirs(parent, exist_ok=True)
        tmp = posixpath.join(parent, f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")
        try:
            with fs.open(tmp, mode) as handle:
                yield handle
            fs.mv(tmp, path)
        finally:
            if fs.exists(tmp):
                fs.rm(tmp)
    else:
        with fs.open(path, mode) as handle:
            yield handle


def write_bytes_atomic(uri: str, data: bytes) -> None:
    with atomic_open(uri, "wb") as handle:
        handle.write(data)


def write_json_atomic(uri: str, payload: Any) -> None:
    write_bytes_atomic(uri, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())
