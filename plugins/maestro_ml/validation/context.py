"""The Great Expectations context: one per process and reports location, cheap to reuse every hour.

The context is ephemeral (suites live in memory; they are built from code on each run) except for
what has to outlive the process:

* the **validation results store** is a file store under ``<reports_uri>/gx/validations/``, and
* the **Data Docs site** ``maestro`` is written to ``<reports_uri>/gx/data_docs/`` (``index.html``
  plus one page per validated table and run).

Both have to be persistent for the same reason: GX rebuilds the site index from the results
store and deletes pages whose result it cannot find, so an in-memory results store would wipe
the pages of every earlier run.

GX 1.x stores files only on a local file system (the S3 store backend of 0.x is gone). With a
remote ``reports_uri`` (``s3://``) the stores are a local mirror under ``MAESTRO_HOME`` that is
published to the remote root after every run: a new worker first pulls the newest results, so
the site index it rebuilds lists everyone's, not only its own.

Each table of a run is validated with ``Batch.validate(suite)`` and its result stored under a
``ValidationResultIdentifier`` of the run; the site is then built once, incrementally, for the
run's results. That is what a Checkpoint with an ``UpdateDataDocsAction`` does, minus
persisting suites, validation definitions and checkpoints on every run and rebuilding the
index once per table (a Checkpoint's batch parameters are shared by all of its validation
definitions, and every table here is a different DataFrame).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from maestro_ml import storage
from maestro_ml.settings import Settings, join_uri

if TYPE_CHECKING:
    import pandas as pd
    from great_expectations.core import ExpectationSuite, ExpectationSuiteValidationResult
    from great_expectations.data_context import AbstractDataContext

log = logging.getLogger(__name__)

SITE_NAME = "maestro"
DATASOURCE_NAME = "maestro"
# Asset (and batch definition) per kind of table; the DataFrame itself is a runtime parameter.
ASSETS = ("events", "state", "features")
# How many of the latest validation results the site index lists (each is read on every build).
INDEX_RESULTS_LIMIT = 60
# Results kept on disk: GX re-reads the whole results store on every Data Docs build, so without
# a bound each hour would cost more than the last. ~10 suites a run: roughly the last day of hours.
RESULTS_RETENTION_FILES = 300
RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 20}

_lock = threading.RLock()
# Result keys whose Data Docs pages wait for the end of a ``data_docs_once`` block (None: build at once).
_deferred_docs: ContextVar[list[Any] | None] = ContextVar("maestro_gx_deferred_docs", default=None)
_contexts: dict[str, AbstractDataContext] = {}


@dataclass(frozen=True)
class Batch:
    """One table to validate in a run: a suite, the frame, and the columns that identify a row."""

    suite: ExpectationSuite
    frame: pd.DataFrame
    asset: str = "events"
    id_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunResult:
    batch: Batch
    result: ExpectationSuiteValidationResult
    page: str | None

    @property
    def suite_name(self) -> str:
        return str(self.batch.suite.name)


def gx_root(settings: Settings) -> str:
    """Where this platform's GX artifacts live: ``<reports_uri>/gx``."""
    root = join_uri(settings.reports_uri, "gx")
    return root[len("file://") :] if root.startswith("file://") else root


def local_root(settings: Settings) -> str:
    """Where GX itself writes: ``gx_root`` when it is local, else this process's mirror of it."""
    root = gx_root(settings)
    if "://" not in root:
        return root
    digest = hashlib.sha1(root.encode()).hexdigest()[:12]
    return os.path.join(settings.home, "gx-mirror", digest)


def _backend(directory: str) -> dict[str, Any]:
    return {"class_name": "TupleFilesystemStoreBackend", "base_directory": os.path.abspath(directory)}


# (local root -> mtime of the newest file already published): publishing uploads only what is newer.
_published: dict[str, float] = {}


def _pull_results(settings: Settings) -> None:
    """Copy the newest ``INDEX_RESULTS_LIMIT`` remote results into the mirror (a fresh worker's first context)."""
    remote = join_uri(gx_root(settings), "validations")
    fs, path = storage.filesystem(remote)
    if not fs.exists(path):
        return
    found = fs.find(path, detail=True)
    newest = sorted(((info.get("LastModified") or info.get("mtime"), name) for name, info in found.items()
                     if name.endswith(".json")), reverse=True)[:INDEX_RESULTS_LIMIT]
    local = os.path.join(local_root(settings), "validations")
    for _, name in newest:
        target = os.path.join(local, os.path.relpath(name, path))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fs.get_file(name, target)


def publish(settings: Settings) -> int:
    """Upload what GX wrote to the mirror since the last publish to the remote root; returns the files sent."""
    root = gx_root(settings)
    if "://" not in root:
        return 0
    local = local_root(settings)
    since = _published.get(local, 0.0)
    newest, sent = since, 0
    for folder, _, names in os.walk(local):
        for name in names:
            path = os.path.join(folder, name)
            mtime = os.stat(path).st_mtime
            if mtime > since:
                relative = os.path.relpath(path, local).replace(os.sep, "/")
                with open(path, "rb") as handle:
                    storage.write_bytes_atomic(join_uri(root, relative), handle.read())
                newest, sent = max(newest, mtime), sent + 1
    _published[local] = newest
    return sent


def _build_context(settings: Settings) -> AbstractDataContext:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    import great_expectations.execution_engine.pandas_execution_engine as pandas_engine
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # GX fingerprints every in-memory DataFrame below this size by hashing all of its rows (about a
    # second per million rows and column group), only to label the batch. It already skips frames
    # above it; hourly event tables are not worth hashing either.
    pandas_engine.HASH_THRESHOLD = 0

    root = local_root(settings)
    if root != gx_root(settings):
        _pull_results(settings)
        # What was pulled is the remote's already: publish only what this process writes from now on.
        _published[root] = time.time()
    defaults = InMemoryStoreBackendDefaults()
    stores = dict(defaults.stores)
    stores[defaults.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": _backend(join_uri(root, "validations")),
    }
    site = {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": _backend(join_uri(root, "data_docs")),
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "validation_results_limit": INDEX_RESULTS_LIMIT,
        },
        # Suites are code, not stored: render validation results only.
        "site_section_builders": {"expectations": "0", "profiling": "0"},
    }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        stores=stores,
        data_docs_sites={SITE_NAME: site},
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    context = gx.get_context(project_config=config, mode="ephemeral")
    datasource = context.data_sources.add_pandas(DATASOURCE_NAME)
    for asset in ASSETS:
        datasource.add_dataframe_asset(asset).add_batch_definition_whole_dataframe("whole")
    return context


def get_context(settings: Settings) -> AbstractDataContext:
    """The process's GX context for ``settings.reports_uri``, created on first use."""
    root = gx_root(settings)
    with _lock:
        context = _contexts.get(root)
        if context is None:
            context = _contexts[root] = _build_context(settings)
        return context


def safe_run_name(run_name: str) -> str:
    """``run_name`` as one path segment (Airflow run ids carry ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", run_name).strip("_") or "run"


def _local_path(url: str | None) -> str | None:
    if url is None:
        return None
    return url[len("file://") :] if url.startswith("file://") else url


def prune_results(settings: Settings, keep: int = RESULTS_RETENTION_FILES) -> int:
    """Delete all but the newest ``keep`` stored validation results; returns how many went.

    Their Data Docs pages go with them (GX drops pages whose result is gone); each hour's verdict
    and warnings stay in its ingest manifest.
    """
    removed = _prune(join_uri(local_root(settings), "validations"), keep)
    if local_root(settings) != gx_root(settings):
        removed = _prune(join_uri(gx_root(settings), "validations"), keep)
    return removed


def _prune(validations: str, keep: int) -> int:
    fs, root = storage.filesystem(validations)
    if not fs.exists(root):
        return 0
    found = fs.find(root, detail=True)
    # Local files report ``mtime``, object stores ``LastModified``: either orders one store's files.
    results = sorted(
        (info.get("mtime") or info.get("LastModified"), path) for path, info in found.items() if path.endswith(".json")
    )
    if len(results) <= keep:
        return 0
    stale = [path for _, path in results[: len(results) - keep]]
    fs.rm(stale)
    return len(stale)


def index_path(settings: Settings) -> str:
    """The site's ``index.html``: a local path, or the remote URI the mirror is published to."""
    return join_uri(gx_root(settings), "data_docs", "index.html")


def _published_path(settings: Settings, path: str | None) -> str | None:
    """A page's path in the mirror as the remote URI it is published to (local roots: unchanged)."""
    local = local_root(settings)
    if path is None or local == gx_root(settings) or not path.startswith(local):
        return path
    return join_uri(gx_root(settings), os.path.relpath(path, local).replace(os.sep, "/"))


def _local_index(settings: Settings) -> str:
    return os.path.join(local_root(settings), "data_docs", "index.html")


@contextmanager
def data_docs_once(settings: Settings) -> Iterator[None]:
    """Validations in the block store their results and verdicts as usual, but Data Docs are built once, at the end.

    Building the site costs about a second per validation run, as much as validating an hour: a
    range of hours validates each hour on its own and renders the pages of all of them together.
    """
    keys: list[Any] = []
    token = _deferred_docs.set(keys)
    try:
        yield
    finally:
        _deferred_docs.reset(token)
        if keys:
            with _lock:
                try:
                    get_context(settings).build_data_docs(site_names=[SITE_NAME], resource_identifiers=keys)
                    publish(settings)
                except Exception:  # the verdicts stand without their report
                    log.exception("building GX Data Docs failed")


@contextmanager
def _configurations_built_once() -> Iterator[None]:
    """Within the block, each GX expectation builds its ``configuration`` once instead of on every read.

    GX 1.x rebuilds it (a pydantic ``dict()`` of every field) each time it looks up one kwarg while
    planning the metrics of an expectation: about 70 times per expectation and validation, a third
    of an hour's gate for a hundred expectations. Nothing changes an expectation while its suite
    validates (the expectations being validated are built from the suite for this run), and the
    cache lives only for the block, under the module lock. The gate's tests compare verdicts.
    """
    from great_expectations.expectations.expectation import Expectation

    built = Expectation.__dict__["configuration"]
    cache: dict[int, tuple[Any, Any]] = {}

    def configuration(self: Any) -> Any:
        hit = cache.get(id(self))
        if hit is None:  # the entry holds the expectation, so its id is not reused while cached
            hit = cache[id(self)] = (self, built.fget(self))
        return hit[1]

    Expectation.configuration = property(configuration)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Expectation.configuration = built  # type: ignore[method-assign]


def run(
    settings: Settings, batches: list[Batch], run_name: str
) -> tuple[list[RunResult], str | None, str | None, dict[str, float]]:
    """Validate every batch under one GX run id, store the results and update Data Docs.

    Returns the results (with the Data Docs page of each), the path of the site's ``index.html``,
    why building Data Docs failed if it did (a broken report must not hide or fake a verdict),
    and timings in seconds.
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    started = time.perf_counter()
    with _lock:
        context = get_context(settings)
        ready = time.perf_counter()
        datasource = context.data_sources.get(DATASOURCE_NAME)
        run_id = RunIdentifier(run_name=safe_run_name(run_name), run_time=dt.datetime.now(dt.UTC))
        keyed: list[tuple[Batch, ExpectationSuiteValidationResult, Any]] = []
        for item in batches:
            definition = datasource.get_asset(item.asset).get_batch_definition("whole")
            batch = definition.get_batch(batch_parameters={"dataframe": item.frame})
            # No ``unexpected_index_column_names``: GX looks those up row by row for every unexpected
            # row (20 s for a million bad rows). The default row positions are cheap; the outcome
            # maps the first few back to ids (``Batch.id_columns``).
            with _configurations_built_once():
                result = batch.validate(item.suite, result_format=RESULT_FORMAT)
            result.meta["run_id"] = run_id
            result.meta["validation_time"] = run_id.run_time
            # Data Docs title pages and index rows by this (the shared asset's name says little).
            result.meta["batch_kwargs"] = {"data_asset_name": str(item.suite.name), "rows": len(item.frame)}
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=item.suite.name),
                run_id=run_id,
                batch_identifier=batch.id,
            )
            context.validation_results_store.set(key, result)
            keyed.append((item, result, key))

        validated = time.perf_counter()
        prune_results(settings)
        docs_error = None
        deferred = _deferred_docs.get()
        if deferred is not None:
            deferred.extend(k for _, _, k in keyed)
        else:
            try:
                context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=[k for _, _, k in keyed])
            except Exception as exc:  # the verdict stands without its report; say so instead of failing the gate
                log.exception("building GX Data Docs failed")
                docs_error = f"{type(exc).__name__}: {exc}"

        results = []
        for item, result, key in keyed:
            page = None
            if docs_error is None and deferred is None:
                urls = context.get_docs_sites_urls(resource_identifier=key, site_name=SITE_NAME)
                page = _published_path(settings, _local_path(urls[0]["site_url"]) if urls else None)
            results.append(RunResult(item, result, page))
        if docs_error is None and deferred is None and not os.path.exists(_local_index(settings)):
            docs_error = f"Data Docs index missing after build: {_local_index(settings)}"
        try:
            publish(settings)
        except Exception as exc:  # the verdict stands; its report did not reach the shared store
            log.exception("publishing GX results and Data Docs to %s failed", gx_root(settings))
            docs_error = docs_error or f"publishing to {gx_root(settings)}: {type(exc).__name__}: {exc}"
    index = index_path(settings)
    timings = {
        "gx_context": round(ready - started, 3),
        "gx_validate": round(validated - ready, 3),
        "data_docs": round(time.perf_counter() - validated, 3),
    }
    return results, (None if docs_error else index), docs_error, timings
