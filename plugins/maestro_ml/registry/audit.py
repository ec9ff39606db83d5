"""The promotion audit trail: one record per evaluate, promote, reject and rollback, never rewritten.

Records live in the lake under ``_audit/promotions/<model>/<record_id>.parquet``, one atomic file each.
The id is a digest of the deciding run and the action, so re-running the same Airflow run (a retry, a
clear) rewrites the same file: the table gains no duplicate. Each record is also written to the model
version's tags (``promotion``, ``promotion_at``, ``promotion_reason``, ``promotion_gates``), where the
MLflow UI shows it beside the version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from maestro_ml import storage
from maestro_ml.contracts.models import model_spec
from maestro_ml.settings import Settings, get_settings, join_uri

ACTIONS = ("evaluate", "promote", "reject", "rollback")

SCHEMA = pa.schema([
    pa.field("record_id", pa.string(), nullable=False),
    pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("model", pa.string(), nullable=False),
    pa.field("action", pa.string(), nullable=False),
    pa.field("who", pa.string(), nullable=False),
    pa.field("dag_run", pa.string()),
    pa.field("version", pa.string()),  # the version decided on
    pa.field("champion_before", pa.string()),
    pa.field("champion_after", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("holdout", pa.string()),  # JSON: the holdout window
    pa.field("gates", pa.string()),  # JSON: every gate's value, threshold and verdict
])


@dataclass(frozen=True)
class Record:
    model: str
    action: str
    who: str
    dag_run: str | None
    version: str | None
    champion_before: str | None
    champion_after: str | None
    reason: str | None = None
    holdout: dict[str, Any] = field(default_factory=dict)
    gates: list[dict[str, Any]] = field(default_factory=list)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown audit action {self.action!r}; expected one of {ACTIONS}")

    @property
    def record_id(self) -> str:
        """Stable for one deciding run and action (a re-run rewrites its record); unique otherwise."""
        key = self.dag_run if self.dag_run else self.at.isoformat()
        return hashlib.sha256(f"{self.model}|{self.action}|{key}".encode()).hexdigest()[:20]


def audit_dir(lake_uri: str, model: str) -> str:
    return join_uri(lake_uri, "_audit", "promotions", model)


def append(record: Record, settings: Settings | None = None) -> str:
    """Write ``record`` (atomically, idempotently per deciding run) and tag the model version with it."""
    settings = settings or get_settings()
    row = asdict(record) | {"record_id": record.record_id, "holdout": json.dumps(record.holdout, default=str),
                            "gates": json.dumps(record.gates, default=str)}
    table = pa.Table.from_pylist([{f.name: row[f.name] for f in SCHEMA}], schema=SCHEMA)
    uri = join_uri(audit_dir(settings.lake_uri, record.model), f"{record.record_id}.parquet")
    with storage.atomic_open(uri) as handle:
        pq.write_table(table, handle)
    if record.version is not None:
        _tag(record, settings)
    return uri


def _tag(record: Record, settings: Settings) -> None:
    from mlflow import MlflowClient

    verdict = {"promote": "champion", "reject": "rejected", "rollback": "rolled_back_to", "evaluate": "evaluated"}
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    name = model_spec(record.model).registered_name
    tags = {
        "promotion": verdict[record.action],
        "promotion_at": record.at.isoformat(),
        "promotion_reason": (record.reason or "")[:500],
        "promotion_gates": json.dumps({g["name"]: g.get("value") for g in record.gates}, default=str)[:5000],
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, record.version, key, value)


def history(model: str, settings: Settings | None = None) -> pd.DataFrame:
    """Every record of ``model``, oldest first."""
    settings = settings or get_settings()
    uris = storage.glob(join_uri(audit_dir(settings.lake_uri, model), "*.parquet"))
    if not uris:
        return SCHEMA.empty_table().to_pandas()
    tables = []
    for uri in uris:
        fs, path = storage.filesystem(uri)
        tables.append(pq.read_table(path, filesystem=fs, schema=SCHEMA))
    frame = pa.concat_tables(tables).to_pandas()
    return frame.sort_values(["at", "record_id"], kind="mergesort").reset_index(drop=True)
