"""Fast, upgrade-safe Feast materialization for Maestro ML (issue 4).

Pieces, each selectable from ``feature_store.yaml`` through Feast's own extension points:

* ``maestro_ml.feast_ext.engine.MaestroComputeEngine`` (``batch_engine: type:``): chunked
  ``pull_latest_from_table_or_query``, vectorized encoding, bulk online writes.
* ``maestro_ml.feast_ext.sqlite_store.MaestroSqliteOnlineStore`` and
  ``maestro_ml.feast_ext.redis_store.MaestroRedisOnlineStore`` (``online_store: type:``): stock layouts and
  readers, bulk writers.
* ``materialize_window``: the typed entry point for the Airflow DAG.

Nothing here imports Airflow.
"""

from maestro_ml.feast_ext.engine import ENGINE_TYPE, MaestroComputeEngine, MaestroComputeEngineConfig, ViewRun
from maestro_ml.feast_ext.materialize import ViewMaterialization, materialize_window, online_view_names
from maestro_ml.feast_ext.redis_store import MaestroRedisOnlineStore, MaestroRedisOnlineStoreConfig
from maestro_ml.feast_ext.sqlite_store import MaestroSqliteOnlineStore, MaestroSqliteOnlineStoreConfig

REDIS_STORE_TYPE = "maestro_ml.feast_ext.redis_store.MaestroRedisOnlineStore"
SQLITE_STORE_TYPE = "maestro_ml.feast_ext.sqlite_store.MaestroSqliteOnlineStore"

__all__ = [
    "ENGINE_TYPE",
    "REDIS_STORE_TYPE",
    "SQLITE_STORE_TYPE",
    "MaestroComputeEngine",
    "MaestroComputeEngineConfig",
    "MaestroRedisOnlineStore",
    "MaestroRedisOnlineStoreConfig",
    "MaestroSqliteOnlineStore",
    "MaestroSqliteOnlineStoreConfig",
    "ViewMaterialization",
    "ViewRun",
    "materialize_window",
    "online_view_names",
]
