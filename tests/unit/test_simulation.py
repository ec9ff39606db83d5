"""The simulator: deterministic layout, the event contract, every dirt class in the ledger, and the known truth."""

from __future__ import annotations

import json
import math
import re
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from maestro_ml.contracts.events import EVENT_TYPES, NUM_SKILLS, TASK_STATUSES, required_fields, schema_for
from maestro_ml.simulation import (
    DIRT_CLASSES,
    DIRT_DISPOSITIONS,
    PRESETS,
    DirtRates,
    SimulationConfig,
    config_for_preset,
    simulate,
)
from maestro_ml.simulation.__main__ import main
from maestro_ml.simulation.behaviour import median_duration, norm_cdf

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday: working hours in every timezone of the window
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
PATH_RE = re.compile(r"^events/dt=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/part-\d{4}\.jsonl\.gz$")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
PHONE_RE = re.compile(r"\+?\(?\d[\d\s().-]{7,}\d")
HOUR = timedelta(hours=1)

# Every class well represented in a 2-day, 30-user run (a couple of thousand lines).
DIRTY = DirtRates(
    malformed_json=0.02,
    missing_required=0.02,
    wrong_type=0.02,
    unknown_event_type=0.02,
    future_timestamp=0.02,
    duplicate_line=0.02,
    resent_event=0.02,
    late_event=0.03,
    pii_in_text=0.3,
    truncated_gzip=0.25,
)
# Churn high enough that users leave (user_left, reassignments) even in two days.
TINY = {"days": 2, "join_rate_per_day": 0.05, "leave_rate_per_day": 0.06}


def run(root: Path, seed: int = 7, **overrides: Any) -> tuple[Path, Path, Any]:
    cfg = config_for_preset("tiny", START, seed=seed, **{**TINY, **overrides})
    landing, truth = root / "landing", root / "truth"
    summary = simulate(cfg, str(landing), str(truth))
    return landing, truth, summary


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    return run(tmp_path_factory.mktemp("clean"), dirt=DirtRates.off())


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Any]:
    return run(tmp_path_factory.mktemp("dirty"), dirt=DIRTY)


def landing_files(landing: Path) -> list[Path]:
    return sorted(landing.rglob("*.jsonl.gz"))


def read_members(data: bytes) -> tuple[list[bytes], bool]:
    """Decompress gzip member by member: the complete members, and whether a cut member followed."""
    members: list[bytes] = []
    pos = 0
    while pos < len(data):
        d = zlib.decompressobj(wbits=31)
        try:
            chunk = d.decompress(data[pos:])
        except zlib.error:
            return members, True
        if not d.eof:
            return members, True
        members.append(chunk)
        pos = len(data) - len(d.unused_data)
    return members, False


def read_lines(path: Path) -> tuple[list[bytes], bool]:
    members, cut = read_members(path.read_bytes())
    lines = [line for m in members for line in m.split(b"\n")[:-1]]
    return lines, cut


def folder_hour(landing: Path, path: Path) -> datetime:
    m = PATH_RE.match(path.relative_to(landing).as_posix())
    assert m, path
    return datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}:00:00+00:00")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def type_ok(value: Any, typ: pa.DataType) -> bool:
    if isinstance(value, bool):
        return pa.types.is_boolean(typ)
    if pa.types.is_integer(typ):
        return isinstance(value, int)
    if pa.types.is_floating(typ):
        return isinstance(value, int | float)
    if pa.types.is_timestamp(typ):
        return isinstance(value, str) and bool(TS_RE.match(value))
    if pa.types.is_string(typ):
        return isinstance(value, str)
    if pa.types.is_list(typ):
        return (
            isinstance(value, list)
            and len(value) == NUM_SKILLS
            and all(isinstance(x, int | float) and not isinstance(x, bool) and 0 <= x <= 1 for x in value)
        )
    raise AssertionError(f"unexpected type {typ}")


def problems(event: Any) -> list[str]:
    """Why a parsed line breaks the events.py contract (empty: it is a valid event)."""
    if not isinstance(event, dict):
        return ["not an object"]
    etype = event.get("event_type")
    if etype is None:
        return ["missing event_type"]
    if etype not in EVENT_TYPES:
        return [f"unknown event_type {etype!r}"]
    out = [f"missing {f}" for f in sorted(required_fields(etype)) if event.get(f) is None]
    schema = schema_for(etype)
    for key, value in event.items():
        if key not in schema.names:
            out.append(f"extra field {key}")
        elif value is not None and not type_ok(value, schema.field(key).type):
            out.append(f"bad type {key}")
    return out


def test_presets_and_config_validation() -> None:
    demo = config_for_preset("demo", START)
    bench = config_for_preset("bench", START, seed=3, dirt=DirtRates.off())
    assert (demo.n_users, demo.days, demo.dirt.enabled) == (300, 14, True)
    assert (bench.n_users, bench.days, bench.seed, bench.dirt.enabled) == (2000, 30, 3, False)
    assert config_for_preset("tiny", START).n_users == PRESETS["tiny"]["n_users"] == 30
    assert config_for_preset("tiny", START, dirt={"late_event": 0.5}).dirt.late_event == 0.5
    with pytest.raises(ValueError, match="unknown preset"):
        config_for_preset("huge", START)
    with pytest.raises(ValueError, match="aligned to the hour"):
        config_for_preset("tiny", START + timedelta(minutes=5))
    with pytest.raises(ValueError, match="timezone-aware"):
        config_for_preset("tiny", datetime(2026, 11, 2))
    with pytest.raises(TypeError, match="unknown SimulationConfig fields"):
        config_for_preset("tiny", START, n_userz=3)
    with pytest.raises(ValueError):
        DirtRates(malformed_json=1.5)
    assert isinstance(demo, SimulationConfig) and demo.end == START + timedelta(days=14)


def test_same_seed_same_bytes_other_seed_other_bytes(dirty: tuple[Path, Path, Any], tmp_path: Path) -> None:
    landing, truth, _ = dirty
    again, again_truth, _ = run(tmp_path / "again", dirt=DIRTY)
    ours = {p.relative_to(landing): p.read_bytes() for p in landing_files(landing)}
    theirs = {p.relative_to(again): p.read_bytes() for p in landing_files(again)}
    assert ours.keys() == theirs.keys()
    assert all(ours[k] == theirs[k] for k in ours)
    ledger_a = json.loads((truth / "dirt_ledger.json").read_text())
    ledger_b = json.loads((again_truth / "dirt_ledger.json").read_text())
    assert ledger_a["lines"] == ledger_b["lines"] and ledger_a["counts"] == ledger_b["counts"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(truth / "candidates"), pd.read_parquet(again_truth / "candidates"), check_exact=True
    )

    other, _, _ = run(tmp_path / "other", seed=8, dirt=DIRTY)
    other_bytes = {p.relative_to(other): p.read_bytes() for p in landing_files(other)}
    assert sum(ours[k] != other_bytes.get(k) for k in ours) > len(ours) // 2


def test_layout_every_hour_gzip_members_and_atomic_writes(clean: tuple[Path, Path, Any]) -> None:
    landing, _, summary = clean
    files = landing_files(landing)
    assert len(files) == summary.files
    assert [p for p in landing.rglob("*") if p.is_file() and not p.name.endswith(".jsonl.gz")] == []  # no temp files
    hours = {folder_hour(landing, p) for p in files}
    assert hours == {START + i * HOUR for i in range(48)}
    n_lines = 0
    multi_member = 0
    for path in files:
        members, cut = read_members(path.read_bytes())
        assert not cut
        lines = [line for m in members for line in m.split(b"\n")[:-1]]
        n_lines += len(lines)
        assert len(members) == max(1, math.ceil(len(lines) / PRESETS["tiny"]["lines_per_member"]))
        multi_member += len(members) > 1
        hour = folder_hour(landing, path)
        for line in lines:
            occurred = parse_ts(json.loads(line)["occurred_at"])
            assert hour <= occurred < hour + HOUR  # no dirt: every event lands in the hour it occurred
    assert multi_member > 5
    assert n_lines == summary.events_written == summary.events_generated == sum(summary.event_type_counts.values())


def test_rerun_replaces_files_and_removes_stale_parts(tmp_path: Path) -> None:
    landing, _, first = run(tmp_path, dirt=DirtRates.off(), days=1, lines_per_file=20)
    assert first.files > 24  # busy hours were split into several parts
    _, _, second = run(tmp_path, dirt=DirtRates.off(), days=1)
    assert len(landing_files(landing)) == second.files == 24
    assert second.stale_files_removed == first.files - 24


def test_clean_run_honours_the_event_contract(clean: tuple[Path, Path, Any]) -> None:
    landing, truth, summary = clean
    events = [json.loads(line) for path in landing_files(landing) for line in read_lines(path)[0]]
    assert {e["event_type"] for e in events} == set(EVENT_TYPES)
    assert all(summary.event_type_counts[t] > 0 for t in EVENT_TYPES)
    bad = [(e, problems(e)) for e in events if problems(e)]
    assert bad == []
    assert len({e["event_id"] for e in events}) == len(events)
    assert all(
        re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", e["event_id"])
        for e in events
    )
    assert {e["to_status"] for e in events if e["event_type"] == "task_status_changed"} == set(TASK_STATUSES) - {"todo"}
    ledger = json.loads((truth / "dirt_ledger.json").read_text())
    assert ledger["lines"] == [] and set(ledger["counts"].values()) == {0}
    for e in events:  # no personal data in free text when dirt is off
        for field in ("text", "title", "name"):
            if e["event_type"] != "user_joined" and field in e:
                assert not EMAIL_RE.search(e[field]) and not PHONE_RE.search(e[field]), e

    # The stream is self-contained: everything referenced was announced before it is referenced.
    events.sort(key=lambda e: e["occurred_at"])
    users: dict[str, str | None] = {}  # user -> left_at
    projects, tasks = set(), set()
    window_start = START.strftime("%Y-%m-%dT%H")
    for e in events:
        t, at = e["event_type"], e["occurred_at"]
        if t == "user_joined":
            users[e["user_id"]] = None
        elif t == "user_left":
            users[e["user_id"]] = at
        elif t == "project_created":
            projects.add(e["project_id"])
            assert e["team_id"] in {x.get("team_id") for x in events if x["event_type"] == "user_joined"}
        elif t == "task_created":
            assert e["project_id"] in projects
            tasks.add(e["task_id"])
        else:
            assert e["task_id"] in tasks
        for key in ("actor_id", "assignee_id", "user_id"):
            if e.get(key) and t not in ("user_joined",):
                assert e[key] in users, (key, e)
                assert users[e[key]] is None or t == "user_left", ("acts after leaving", e)
    pre_window = [e for e in events if e["event_type"] in ("user_joined", "project_created")]
    assert sum(e["occurred_at"].startswith(window_start) for e in pre_window) >= 0.8 * len(pre_window)


def ledger_index(ledger: dict[str, Any]) -> dict[tuple[str, int], set[str]]:
    index: dict[tuple[str, int], set[str]] = {}
    for entry in ledger["lines"]:
        index.setdefault((entry["file"], entry["line"]), set()).add(entry["class"])
    return index


def test_every_dirt_class_is_injected_and_ledgered_exactly(dirty: tuple[Path, Path, Any]) -> None:
    """A reference reader over the landing zone finds exactly the dirt the ledger lists, line by line."""
    landing, truth, summary = dirty
    ledger = json.loads((truth / "dirt_ledger.json").read_text())
    assert set(ledger["counts"]) == set(DIRT_CLASSES) == set(DIRT_DISPOSITIONS)
    assert all(ledger["counts"][c] > 0 for c in DIRT_CLASSES), ledger["counts"]
    assert ledger["counts"] == summary.dirt_counts
    assert not (landing / "dirt_ledger.json").exists()
    index = ledger_index(ledger)
    truncated = {t["file"]: t for t in ledger["truncated_files"]}
    assert truncated

    raw: dict[tuple[str, int], bytes] = {}
    seen_ids: set[str] = set()
    found: dict[str, int] = dict.fromkeys(DIRT_CLASSES, 0)
    for path in landing_files(landing):
        rel = path.relative_to(landing).as_posix()
        hour = folder_hour(landing, path)
        lines, cut = read_lines(path)
        assert cut == (rel in truncated)
        if cut:
            info = truncated[rel]
            assert len(lines) == info["intact_lines"]
            lost = range(info["lost_lines"][0], info["lost_lines"][1] + 1)
            assert all(index.get((rel, n)) == {"truncated_gzip"} for n in lost)
            found["truncated_gzip"] += len(lost)
        for n, line in enumerate(lines, start=1):
            raw[(rel, n)] = line
            classes = index.get((rel, n), set())
            for c in classes:
                found[c] += 1
            assert "truncated_gzip" not in classes
            try:
                event = json.loads(line)
            except ValueError:
                assert "malformed_json" in classes, (rel, n, line)
                continue
            assert "malformed_json" not in classes, (rel, n, line)
            why = problems(event)
            if "unknown_event_type" in classes:
                assert event["event_type"] not in EVENT_TYPES
            elif "missing_required" in classes:
                assert any(w.startswith("missing") for w in why), why
            elif "wrong_type" in classes:
                assert any(w.startswith("bad type") for w in why), why
            else:
                assert why == [], (rel, n, why)
            if why:
                continue
            occurred = parse_ts(event["occurred_at"])
            if "future_timestamp" in classes:
                assert occurred > hour + timedelta(days=2)
                continue
            if "duplicate_line" in classes or "resent_event" in classes:
                assert event["event_id"] in seen_ids  # the original came first ...
                assert occurred < hour + HOUR and hour - occurred < timedelta(hours=24)  # ... within the dedupe window
                continue
            if "late_event" in classes:
                assert occurred < hour and hour - occurred < timedelta(hours=48)
            else:
                assert hour <= occurred < hour + HOUR, (rel, n, event)
            assert event["event_id"] not in seen_ids, (rel, n)
            seen_ids.add(event["event_id"])
            free_text = " ".join(str(event.get(k, "")) for k in ("text", "title"))
            has_pii = bool(EMAIL_RE.search(free_text) or PHONE_RE.search(free_text))
            assert has_pii == ("pii_in_text" in classes), (rel, n, free_text)

    assert found == ledger["counts"]
    for entry in ledger["lines"]:
        if entry["class"] in ("duplicate_line", "resent_event"):
            copy = raw[(entry["file"], entry["line"])]
            original = raw[(entry["original"]["file"], entry["original"]["line"])]
            assert json.loads(copy) == json.loads(original)
            assert (copy == original) == (entry["class"] == "duplicate_line")
        if entry["class"] == "pii_in_text":
            assert all(p.encode() in raw[(entry["file"], entry["line"])] for p in entry["detail"])
    wrong = [raw[(e["file"], e["line"])] for e in ledger["lines"] if e["class"] == "wrong_type"]
    assert any(b'"three"' in w or b'"senior"' in w or b'"high"' in w for w in wrong) or len(wrong) < 10


def test_truth_rows_match_the_decisions_in_the_event_stream(clean: tuple[Path, Path, Any]) -> None:
    landing, truth, summary = clean
    cand = pd.read_parquet(truth / "candidates")
    tasks = pd.read_parquet(truth / "tasks.parquet")
    users = pd.read_parquet(truth / "users.parquet")
    assert len(cand) == summary.candidate_rows > 0

    per_decision = cand.groupby(["task_id", "assignment_seq"])
    assert (per_decision["chosen"].sum() == 1).all()
    assert (per_decision["user_id"].nunique() == per_decision.size()).all()
    assert (per_decision["utility_rank"].min() == 1).all()
    assert summary.assigned_tasks == cand.task_id.nunique()

    # One row per eligible candidate: non-manager team members who had joined and not yet left.
    users = users.set_index("user_id")
    decisions = cand.drop_duplicates(["task_id", "assignment_seq"])[["task_id", "assignment_seq", "assigned_at"]]
    task_team = tasks.set_index("task_id")["team_id"]
    for row in decisions.itertuples():
        team = users[(users.team_id == task_team[row.task_id]) & ~users.is_manager]
        at = row.assigned_at
        eligible = team[(team.joined_at <= at) & (team.left_at.isna() | (team.left_at > at))].index
        got = cand[(cand.task_id == row.task_id) & (cand.assignment_seq == row.assignment_seq)].user_id
        assert set(got) == set(eligible)

    # Every task_assigned event is a chosen truth row, at the same moment.
    assigned = [
        json.loads(line)
        for path in landing_files(landing)
        for line in read_lines(path)[0]
        if b'"task_assigned"' in line
    ]
    chosen = cand[cand.chosen].set_index(["task_id", "user_id"])
    assert len(assigned) == len(chosen) == summary.event_type_counts["task_assigned"]
    for e in assigned:
        row = chosen.loc[(e["task_id"], e["assignee_id"])]
        assert abs(row.assigned_at - pd.Timestamp(e["occurred_at"])) < pd.Timedelta(milliseconds=1)
    assert (cand.assignment_seq > 0).any(), "someone left with open work: their tasks were reassigned"
    reassigned = [e for e in assigned if e["previous_assignee_id"]]
    assert reassigned and all(pd.notna(users.loc[e["previous_assignee_id"], "left_at"]) for e in reassigned)

    first = cand[cand.chosen & (cand.assignment_seq == 0)].set_index("task_id")
    t = tasks.set_index("task_id").loc[first.index]
    assert (t.first_assignee_id == first.user_id).all()
    assert np.allclose(t.expected_duration_hours, first.expected_duration_hours)
    done = t.dropna(subset=["completed_at"])
    assert (done.on_time == (done.completed_at <= done.due_at)).all()
    assert (tasks.on_time.isna() == tasks.completed_at.isna()).all()


def test_truth_follows_the_documented_formula(clean: tuple[Path, Path, Any]) -> None:
    _, truth, _ = clean
    cand = pd.read_parquet(truth / "candidates")
    tasks = pd.read_parquet(truth / "tasks.parquet").set_index("task_id")
    model = json.loads((truth / "model.json").read_text())["coefficients"]
    users = pd.read_parquet(truth / "users.parquet").set_index("user_id")
    t = tasks.loc[cand.task_id]
    u = users.loc[cand.user_id]
    req = np.stack(t.required_skills.to_numpy())
    skills = np.stack(u.skills.to_numpy())
    cos = (req * skills).sum(1) / np.linalg.norm(req, axis=1) / np.linalg.norm(skills, axis=1)
    assert np.allclose(cos, cand.skill_match, atol=1e-5)  # the truth files store float32 skills

    from maestro_ml.simulation import BehaviourModel

    m = BehaviourModel(**model)
    med = median_duration(
        m,
        t.estimated_hours.to_numpy(np.float64),
        t.priority.to_numpy(np.float64),
        cand.skill_match.to_numpy(),
        u.seniority.to_numpy(np.float64),
        cand.open_hours.to_numpy(),
        u.weekly_capacity_hours.to_numpy(np.float64),
    )
    assert np.allclose(med, cand.median_duration_hours, rtol=1e-9)
    assert np.allclose(cand.expected_duration_hours, med * np.exp(m.sigma**2 / 2), rtol=1e-9)
    slack = (t.due_at.reset_index(drop=True) - cand.assigned_at).dt.total_seconds().to_numpy() / 3600.0
    pon = np.where(slack > 0, norm_cdf((np.log(np.maximum(slack, 1e-9)) - np.log(med)) / m.sigma), 0.0)
    assert np.allclose(pon, cand.p_on_time, atol=1e-6)
    util = pon - m.utility_lambda * np.log(
        cand.expected_duration_hours / (t.estimated_hours.to_numpy(np.float64) * m.elapsed_factor)
    )
    assert np.allclose(util, cand.utility, atol=1e-6)
    assert np.allclose(norm_cdf(np.array([-1.96, 0.0, 1.0])), [0.0249979, 0.5, 0.8413447], atol=1e-6)


def test_duration_truth_relationships(clean: tuple[Path, Path, Any]) -> None:
    _, truth, _ = clean
    cand = pd.read_parquet(truth / "candidates")
    # Within a decision, the task is fixed: a better skill match means a shorter expected duration on average.
    centred = cand.assign(
        log_dur=np.log(cand.expected_duration_hours),
        d_match=cand.skill_match - cand.groupby(["task_id", "assignment_seq"]).skill_match.transform("mean"),
    )
    centred["d_dur"] = centred.log_dur - centred.groupby(["task_id", "assignment_seq"]).log_dur.transform("mean")
    assert np.corrcoef(centred.d_match, centred.d_dur)[0, 1] < -0.3
    good = centred.d_match > 0.1
    bad = centred.d_match < -0.1
    assert centred[good].d_dur.mean() < centred[bad].d_dur.mean() - 0.2
    senior = centred[cand.seniority >= 4].d_dur.mean()
    junior = centred[cand.seniority <= 2].d_dur.mean()
    assert senior < junior
    busy = cand.open_hours > cand.open_hours.median()
    idle = cand.open_hours == 0
    assert centred[busy].d_dur.mean() > centred[idle].d_dur.mean()

    # Managers pick by a noisy utility: usually the best, and far above a random pick.
    chosen = cand[cand.chosen]
    assert (chosen.utility_rank == 1).mean() > 0.3
    assert chosen.utility_rank.mean() < cand.utility_rank.mean() / 2
    assert chosen.p_on_time.mean() > cand.p_on_time.mean()
    # Actual durations are lognormal around the chosen candidate's median.
    done = chosen.dropna(subset=["actual_duration_hours"])
    z = np.log(done.actual_duration_hours / done.median_duration_hours)
    assert len(done) > 50 and abs(z.mean()) < 0.15 and 0.3 < z.std() < 0.6


def test_truth_is_never_under_the_landing_zone(clean: tuple[Path, Path, Any], tmp_path: Path) -> None:
    landing, truth, _ = clean
    assert not truth.is_relative_to(landing) and not landing.is_relative_to(truth)
    assert {p.suffixes[-1] for p in landing.rglob("*") if p.is_file()} == {".gz"}
    for name in ("tasks.parquet", "users.parquet", "projects.parquet", "teams.parquet", "model.json", "summary.json"):
        assert (truth / name).is_file()
    assert list((truth / "candidates").glob("part-*.parquet"))
    cfg = config_for_preset("tiny", START, days=1)
    with pytest.raises(ValueError, match="must not nest"):
        simulate(cfg, str(tmp_path / "landing"), str(tmp_path / "landing" / "truth"))
    assert not (tmp_path / "landing").exists()


def test_cli_prints_one_json_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    landing, truth = tmp_path / "l", tmp_path / "t"
    argv = ["--preset", "tiny", "--start", "2026-11-02T00:00:00Z", "--days", "1", "--seed", "3", "--no-dirt"]
    assert main([*argv, "--landing-uri", str(landing), "--truth-uri", str(truth)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    summary = json.loads(out[0])
    assert summary["window_start"].startswith("2026-11-02T00:00:00") and summary["window_end"].startswith("2026-11-03")
    assert summary["dirt_enabled"] is False and sum(summary["dirt_counts"].values()) == 0
    assert summary["files"] == len(landing_files(landing)) == 24
    lines = sum(len(read_lines(p)[0]) for p in landing_files(landing))
    assert lines == summary["events_written"] == summary["events_generated"]
    assert json.loads((truth / "summary.json").read_text())["events_written"] == lines


def test_writes_through_fsspec_to_object_store_uris() -> None:
    """memory:// stands in for s3://: every read and write goes through maestro_ml.storage."""
    import fsspec

    from maestro_ml import storage

    fs = fsspec.filesystem("memory")
    try:
        cfg = config_for_preset("tiny", START, days=1, dirt=DirtRates(truncated_gzip=0.5, late_event=0.05))
        summary = simulate(cfg, "memory://sim-test/landing", "memory://sim-test/truth")
        uris = storage.glob("memory://sim-test/landing/events/dt=*/hour=*/part-*.jsonl.gz")
        assert len(uris) == summary.files == 24
        members = [read_members(storage.read_bytes(u)) for u in uris]
        lines = sum(chunk.count(b"\n") for complete, _ in members for chunk in complete)
        assert any(cut for _, cut in members) and lines > 200
        ledger = storage.read_json("memory://sim-test/truth/dirt_ledger.json")
        assert ledger["counts"] == summary.dirt_counts and summary.dirt_counts["late_event"] > 0
        assert storage.exists("memory://sim-test/truth/candidates/part-00000.parquet")
    finally:
        fs.rm("/sim-test", recursive=True)


def test_consecutive_windows_share_the_organisation_but_no_ids(tmp_path: Path) -> None:
    first = config_for_preset("tiny", START, days=1, dirt=DirtRates.off())
    second = config_for_preset("tiny", START + timedelta(days=1), days=1, dirt=DirtRates.off())
    simulate(first, str(tmp_path / "a" / "landing"), str(tmp_path / "a" / "truth"))
    simulate(second, str(tmp_path / "b" / "landing"), str(tmp_path / "b" / "truth"))

    def ids(side: str, key: str) -> set[str]:
        return {
            json.loads(line)[key]
            for path in landing_files(tmp_path / side / "landing")
            for line in read_lines(path)[0]
            if key in json.loads(line)
        }

    assert ids("a", "user_id") & ids("b", "user_id")  # the same people ...
    assert not ids("a", "event_id") & ids("b", "event_id")  # ... but every event and task is new
    assert not ids("a", "task_id") & ids("b", "task_id")
