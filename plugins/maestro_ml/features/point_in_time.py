"""Feast's point-in-time join for a feature service, executed in-process on the offline tables.

Feast 0.67's file offline store (dask) manages about 250 rows/s here and its memory grows with
(entity rows x feature rows per key inside the TTL), so a bench-size ranking set (millions of
rows) would take hours. This module runs the *same* retrieval from the *same* definitions:

* the views, the features each one contributes (the service's features plus the ones its
  on-demand views read) and the TTLs are resolved by Feast's own registry helpers, exactly as
  ``FeatureStore.get_historical_features`` resolves them;
* each view's rows are read from its ``FileSource`` (only the days the lookups and the TTL touch)
  and joined with ``merge_asof``: the latest row with ``event_timestamp <= lookup`` and
  ``lookup - event_timestamp <= ttl`` (Feast's file-store semantics), else nulls;
* on-demand features are computed by Feast itself (``OnDemandFeatureView.transform_arrow``).

Unlike the file store it never collapses lookups that share keys and a timestamp, and never drops
an entity row without features. ``tests/integration/test_feature_store.py`` checks it against
``get_historical_features`` value for value.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from maestro_ml.contracts.features import TIMESTAMP_COLUMN, VIEWS, arrow_schema
from maestro_ml.features.offline import read_partitions

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

log = logging.getLogger(__name__)
# Rows per call of a python-mode on-demand transformation (its input becomes Python lists).
ODFV_CHUNK_ROWS = 100_000


def resolve_service(
    store: FeatureStore, service: FeatureService
) -> tuple[list[tuple[Any, list[str]]], list[tuple[Any, set[str]]]]:
    """(feature view, features to read) and (on-demand view, outputs requested) pairs, as Feast resolves them."""
    from feast import utils

    refs = utils._get_features(store.registry, store.project, service, allow_cache=True)
    views, on_demand = utils._get_feature_views_to_use(store.registry, store.project, service, allow_cache=True)
    grouped, grouped_on_demand = utils._group_feature_refs(refs, views, on_demand)
    # Order the features as the service and the views list them, so the output columns are stable.
    by_view: list[tuple[Any, list[str]]] = []
    for view, names in grouped:
        wanted = set(names)
        by_view.append((view, [f.name for f in view.features if f.name in wanted]))
    return by_view, [(odfv, set(names)) for odfv, names in grouped_on_demand]


def _codes(left: pd.DataFrame, right: pd.DataFrame, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """One int64 code per distinct key tuple, shared by both sides (``merge_asof`` on ints, not strings)."""
    both = pd.concat([left[keys], right[keys]], ignore_index=True)
    codes = both.groupby(keys, sort=False, dropna=False).ngroup().to_numpy(dtype=np.int64)
    return codes[: len(left)], codes[len(left):]


def join_view(lookups: pd.DataFrame, view: Any, features: list[str]) -> pd.DataFrame:
    """``features`` of ``view`` as of each lookup row (same index and order as ``lookups``)."""
    join_keys = [view.projection.join_key_map.get(k, k) for k in view.join_keys]
    stamps = lookups[TIMESTAMP_COLUMN]
    ttl = pd.Timedelta(view.ttl) if view.ttl else None
    lo = stamps.min() - ttl if ttl is not None else None
    source = view.batch_source
    if source.timestamp_field != TIMESTAMP_COLUMN:
        raise ValueError(f"{view.name}: source timestamp {source.timestamp_field!r}, expected {TIMESTAMP_COLUMN!r}")
    rows = read_partitions(
        source.path, arrow_schema(VIEWS[view.name]),
        start=None if lo is None else lo.to_pydatetime(),
        end=(stamps.max() + pd.Timedelta(microseconds=1)).to_pydatetime(),
        columns=[*view.join_keys, TIMESTAMP_COLUMN, *features],
    ).rename(columns=dict(zip(view.join_keys, join_keys, strict=True)))
    left_code, right_code = _codes(lookups, rows, join_keys)
    # Times as int64 nanoseconds: iterating tz-aware timestamps into numpy costs more than the join.
    left = pd.DataFrame({"_key": left_code, "_t": stamps.astype("int64").to_numpy(), "_i": np.arange(len(lookups))})
    # Ties on (key, time) keep the last row in file order, as Feast's file store does without a created column.
    right = rows[features].assign(_key=right_code, _t=rows[TIMESTAMP_COLUMN].astype("int64").to_numpy())
    right["_row_t"] = right["_t"]
    left = left.sort_values("_t", kind="mergesort")
    right = right.sort_values("_t", kind="mergesort")
    merged = pd.merge_asof(left, right, on="_t", by="_key", direction="backward", allow_exact_matches=True)
    if ttl is not None:
        fresh = (merged["_t"] - merged["_row_t"]) <= ttl.value
        for name in features:
            merged[name] = merged[name].where(fresh)
    merged = merged.sort_values("_i", kind="mergesort")
    return merged[features].set_axis(lookups.index)


def on_demand_features(
    odfv: Any, requested: set[str], joined: pd.DataFrame, join_keys: dict[str, list[str]],
    chunk_rows: int = ODFV_CHUNK_ROWS,
) -> dict[str, pd.Series]:
    """The requested outputs of one on-demand view, computed by Feast's own transformation.

    A python-mode transformation runs Python per row, so each distinct input goes in once: rows
    with the same source keys, lookup time and request fields read the same view rows (every
    candidate of a decision shares its task's urgency). Only the columns the view reads go in, in
    chunks, because its input becomes Python lists. ``join_keys``: source view name -> join keys.
    """
    sources = odfv.source_feature_view_projections
    inputs = [f.name for projection in sources.values() for f in projection.features]
    request = [f.name for source in odfv.source_request_sources.values() for f in source.schema]
    inputs = list(dict.fromkeys(inputs + request))
    identity = list(dict.fromkeys([k for name in sources for k in join_keys[name]] + [TIMESTAMP_COLUMN] + request))
    codes = joined.groupby(identity, sort=False, dropna=False).ngroup().to_numpy()
    _, first = np.unique(codes, return_index=True)  # first row of each code, codes being 0..n-1
    distinct = joined[inputs].iloc[first]
    outputs: dict[str, list[pa.Array]] = {}
    for lo in range(0, max(len(distinct), 1), chunk_rows):
        table = pa.Table.from_pandas(distinct.iloc[lo : lo + chunk_rows], preserve_index=False)
        transformed = odfv.transform_arrow(table, False)
        for name in transformed.column_names:
            if name in requested and name not in inputs:
                outputs.setdefault(name, []).append(transformed[name].combine_chunks())
    from feast.types import from_feast_to_pyarrow_type

    types = {f.name: from_feast_to_pyarrow_type(f.dtype) for f in odfv.features}
    # A chunk whose outputs are all None comes back typed null: every chunk is cast to the declared type.
    values = {name: pa.chunked_array([part.cast(types[name]) for part in parts]).to_pandas()
              for name, parts in outputs.items()}
    return {name: column.iloc[codes].set_axis(joined.index) for name, column in values.items()}


def historical_features(store: FeatureStore, service: FeatureService, entities: pd.DataFrame) -> pd.DataFrame:
    """``entities`` plus every feature ``service`` serves, point in time, one output row per input row.

    ``entities`` holds the join keys, ``event_timestamp`` (UTC) and the on-demand views' request
    fields. The columns are those ``get_historical_features(entities, service).to_df()`` returns.
    """
    by_view, odfvs = resolve_service(store, service)
    frame = entities.reset_index(drop=True)
    frame[TIMESTAMP_COLUMN] = pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True).astype("datetime64[ns, UTC]")
    parts = [frame]
    for view, features in by_view:
        # A feature named like an entity column (task_features' project_id) keeps the entity's value.
        features = [f for f in features if f not in frame.columns]
        parts.append(join_view(frame, view, features))
    joined = pd.concat(parts, axis=1)
    join_keys = {view.projection.name_to_use(): [view.projection.join_key_map.get(k, k) for k in view.join_keys]
                 for view, _ in by_view}
    for odfv, requested in odfvs:
        for name, values in on_demand_features(odfv, requested, joined, join_keys).items():
            joined[name] = values
    log.info("point-in-time join: %d rows, %d views, %d on-demand views", len(joined), len(by_view), len(odfvs))
    return joined
