"""maestro_ml.ingestion.pii: emails and phones never reach the lake, names and emails are keyed hashes, the key is required."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.ingestion_support import HOUR, KEY, ev, write_landing

from maestro_ml import lake
from maestro_ml.ingestion import ingest_hour
from maestro_ml.settings import Settings

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"\+\d{1,3}[ -]?\(?\d|\(\d{3}\) ?\d{3}-\d{4}|\b\d{3}[-.]\d{3}[-.]\d{4}\b")


def _scan_for_pii(root: Path) -> list[str]:
    found: list[str] = []
    for path in root.rglob("*.parquet"):
        table = pq.read_table(path)
        for column in table.columns:
            if not pa.types.is_string(column.type):
                continue
            for value in column.to_pylist():
                if value and (EMAIL_RE.search(value) or PHONE_RE.search(value)):
                    found.append(f"{path.name}: {value}")
    return found


def test_emails_and_phones_never_reach_the_lake(settings: Settings) -> None:
    pii = [
        "ada.lovelace12@maestro-corp.example",
        "GRACE@navy.example.org",
        "+1 234 567 8901",
        "(234) 567-8901",
        "+44 20 5678 1234",
        "+1-234-567-8901",
        "555.123.4567",
    ]
    text = " / ".join(pii)
    uuid_like = "550e8400-e29b-41d4-a716-446655440000"
    items: list[dict[str, Any] | str | bytes] = [
        ev(
            "user_joined",
            user_id="u_pii",
            email="Ada.Lovelace12@Maestro-Corp.example ",
            name=" Ada  Lovelace",
            timezone=text,
        ),
        ev("project_created", name=f"Project {text}"),
        ev("task_created", title=f"call back {text}", task_id="t_pii"),
        ev("comment_added", text=f"Reach me at {text}; ticket {uuid_like} stays", comment_id=uuid_like),
        ev("task_status_changed", from_status=text, to_status=text),
        ev("comment_added", actor_id="someone@corp.example", text="plain"),
    ]
    write_landing(settings, "part-0000.jsonl.gz", items)
    manifest = ingest_hour(HOUR, settings)
    # Text where a status belongs is no status: that row is quarantined, the others land scrubbed.
    assert manifest["rows_valid"] == len(items) - 1
    assert manifest["rows_quarantined_by_reason"]["unknown_value"] == 1

    leaks = _scan_for_pii(Path(settings.lake_uri))
    assert leaks == []
    raw = b"".join(p.read_bytes() for p in Path(settings.lake_uri).rglob("*") if p.is_file())
    for secret in [*pii, "ada.lovelace12", "someone@corp", "Ada  Lovelace", "Ada Lovelace"]:
        assert secret.encode() not in raw

    comment = lake.read_events(settings.lake_uri, "comment_added").to_pylist()
    assert comment[0]["text"].count("[EMAIL]") == 2 and comment[0]["text"].count("[PHONE]") == 5
    assert uuid_like in comment[0]["text"] and comment[0]["comment_id"] == uuid_like  # ids are not mangled
    key = KEY.encode()
    assert comment[1]["actor_id"] == "pii:" + hmac.new(key, b"someone@corp.example", hashlib.sha256).hexdigest()

    user = lake.read_events(settings.lake_uri, "user_joined").to_pylist()[0]
    email_hash = hmac.new(key, b"ada.lovelace12@maestro-corp.example", hashlib.sha256).hexdigest()
    name_hash = hmac.new(key, b"Ada Lovelace", hashlib.sha256).hexdigest()
    assert (user["email"], user["name"]) == (email_hash, name_hash)
    state = lake.read_state(settings.lake_uri, "users").to_pylist()
    assert [(u["user_id"], u["email_hash"], u["name_hash"]) for u in state] == [("u_pii", email_hash, name_hash)]
    assert manifest["pii"]["hashed_values"] == 2


def test_missing_pii_key_fails_before_any_output(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    write_landing(settings, "part-0000.jsonl.gz", [ev("user_joined")])
    monkeypatch.delenv("MAESTRO_PII_KEY")
    with pytest.raises(RuntimeError, match="MAESTRO_PII_KEY"):
        ingest_hour(HOUR, settings)
    assert not Path(settings.lake_uri).exists()
