"""Drift scenarios of the simulator: each changes what it says from its onset day and not before, and the truth records it."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from maestro_ml.simulation import SCENARIOS, DirtRates, Scenario, config_for_preset, scenario_onset, simulate
from maestro_ml.simulation.__main__ import main

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday: four working days, no weekend in the window
DAYS, ONSET_DAY = 4, 2
ONSET = START + timedelta(days=ONSET_DAY)
DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "simulate_activity.py"


def run(root: Path, scenario: str = "none", **overrides: Any) -> dict[str, Any]:
    """A tiny clean run (30 users, 3 teams, 4 days); its events in time order and its truth."""
    cfg = config_for_preset("tiny", START, seed=7, scenario=scenario, dirt=DirtRates.off(), **{"days": DAYS, **overrides})
    landing, truth = root / "landing", root / "truth"
    simulate(cfg, str(landing), str(truth))
    return {"events": read_events(landing), "truth": truth, "tasks": pd.read_parquet(truth / "tasks.parquet")}


def read_events(landing: Path) -> list[dict[str, Any]]:
    events = [
        json.loads(line)
        for path in sorted(landing.rglob("*.jsonl.gz"))
        for line in gzip.decompress(path.read_bytes()).splitlines()
    ]
    return sorted(events, key=lambda e: e["occurred_at"])


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))


def of_type(run_: dict[str, Any], event_type: str) -> list[dict[str, Any]]:
    return [e for e in run_["events"] if e["event_type"] == event_type]


def task_teams(run_: dict[str, Any]) -> dict[str, str]:
    project_team = {e["project_id"]: e["team_id"] for e in of_type(run_, "project_created")}
    return {e["task_id"]: project_team[e["project_id"]] for e in of_type(run_, "task_created")}


def without_id(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "event_id"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    return {name: run(tmp_path_factory.mktemp(name), name) for name in SCENARIOS}


# The events of the 2-day tiny clean run (seed 7, churn on) as the simulator wrote them before scenarios
# existed: scenario "none" must keep writing exactly these bytes. Regenerate only for an intended change of
# the stationary simulator (run the block of the test below and paste the digest).
STATIONARY_LINES, STATIONARY_DIGEST = 1535, "ce46dd4a2519910d235cdf5a1c94cfec9ec1b275ba65bef27031bb0c8548c5b4"


def test_none_is_stationary_and_writes_the_bytes_of_the_simulator_before_scenarios(tmp_path: Path) -> None:
    cfg = config_for_preset("tiny", START, seed=7, days=2, join_rate_per_day=0.05, leave_rate_per_day=0.06,
                            dirt=DirtRates.off())  # fmt: skip
    assert cfg.scenario == Scenario() and cfg.onset_h is None
    simulate(cfg, str(tmp_path / "landing"), str(tmp_path / "truth"))
    digest, lines = hashlib.sha256(), 0
    for path in sorted((tmp_path / "landing").rglob("*.jsonl.gz")):
        data = gzip.decompress(path.read_bytes())
        digest.update(path.relative_to(tmp_path / "landing").as_posix().encode() + b"\n" + data)
        lines += data.count(b"\n")
    assert (lines, digest.hexdigest()) == (STATIONARY_LINES, STATIONARY_DIGEST)
    # The truth says so, and the run's recorded config is the one it always was (no scenario key).
    assert scenario_onset(str(tmp_path / "truth")) is None
    assert json.loads((tmp_path / "truth" / "scenario.json").read_text())["scenario"] == "none"
    assert "scenario" not in json.loads((tmp_path / "truth" / "summary.json").read_text())["config"]


def test_every_scenario_leaves_the_window_before_its_onset_as_none_has_it(runs: dict[str, dict[str, Any]]) -> None:
    # The organisation and its changes before the onset: the same for every scenario. The tasks created
    # before it too, except under a surge: its extra arrivals shift the draws of every task's details
    # (its hourly arrival counts stay those of none, see the surge's test).
    def before(r: dict[str, Any], types: tuple[str, ...]) -> list[dict[str, Any]]:
        return [without_id(e) for e in r["events"] if e["event_type"] in types and at(e) < ONSET]

    for name in SCENARIOS:
        types = ("user_joined", "user_left", "project_created")
        types += ("task_created",) if name != "workload_surge" else ()
        assert before(runs[name], types) == before(runs["none"], types), name


def test_reorg_moves_a_share_of_the_users_to_another_team_at_the_onset_and_not_before(
    runs: dict[str, dict[str, Any]],
) -> None:
    none, reorg = runs["none"], runs["reorg"]
    joins = of_type(reorg, "user_joined")
    before = {e["user_id"]: e for e in joins if at(e) < ONSET}
    moves = [e for e in joins if at(e) >= ONSET and e["user_id"] in before]
    # Team membership identical to the stationary run's before the onset; then one user_joined per mover.
    assert {u: e["team_id"] for u, e in before.items()} == {
        e["user_id"]: e["team_id"] for e in of_type(none, "user_joined") if at(e) < ONSET
    }
    assert moves and {at(e) for e in moves} == {ONSET}
    assert len({e["user_id"] for e in moves}) == len(moves)
    truth = scenario_onset(str(reorg["truth"]))
    assert truth is not None
    eligible = truth["parameters"]["users_eligible"]
    assert len(moves) == truth["parameters"]["users_moved"] == round(0.3 * eligible)
    managers = {e["actor_id"] for e in of_type(reorg, "project_created")}
    for e in moves:
        old = before[e["user_id"]]
        assert e["team_id"] != old["team_id"] and e["user_id"] not in managers
        # Same person (email, name, seniority), another team, skills shifted towards it.
        assert {k: old[k] for k in ("email", "name", "seniority", "timezone")} == {
            k: e[k] for k in ("email", "name", "seniority", "timezone")
        }
        assert e["skills"] != old["skills"] and all(0.0 <= s <= 1.0 for s in e["skills"])
    assert sorted((m["user_id"], m["from_team_id"], m["to_team_id"]) for m in truth["moves"]) == sorted(
        (e["user_id"], before[e["user_id"]]["team_id"], e["team_id"]) for e in moves
    )


def test_reorg_moves_are_events_the_lakes_user_state_already_folds(runs: dict[str, dict[str, Any]]) -> None:
    # No team-change event in the contract: the second user_joined wins the user's joined group by event time.
    import pyarrow as pa

    from maestro_ml.contracts.events import schema_for
    from maestro_ml.lake.state import events_to_state, merge_states

    rows = [{**e, "occurred_at": at(e)} for e in of_type(runs["reorg"], "user_joined")]
    hours = [[e for e in rows if e["occurred_at"] < ONSET], [e for e in rows if e["occurred_at"] >= ONSET]]
    deltas = [events_to_state("users", {"user_joined": pa.Table.from_pylist(h, schema=schema_for("user_joined"))})
              for h in hours]  # fmt: skip
    state = merge_states("users", deltas[::-1]).to_pandas().set_index("user_id")  # order-independent fold
    truth = scenario_onset(str(runs["reorg"]["truth"]))
    assert truth is not None and len(state) == len({e["user_id"] for e in rows})
    for move in truth["moves"]:
        assert state.loc[move["user_id"], "team_id"] == move["to_team_id"]
        assert list(state.loc[move["user_id"], "skills"]) == pytest.approx(move["skills"])
        assert state.loc[move["user_id"], "joined_at"] == pd.Timestamp(ONSET)


def test_reorg_assignment_follows_the_new_teams_from_the_onset(runs: dict[str, dict[str, Any]]) -> None:
    reorg = runs["reorg"]
    teams = task_teams(reorg)
    team_of: dict[str, str] = {}
    movers = {e["user_id"] for e in of_type(reorg, "user_joined") if at(e) == ONSET}
    by_movers: Counter[str] = Counter()
    for e in reorg["events"]:  # in time order: a user's team is their latest user_joined's
        if e["event_type"] == "user_joined":
            team_of[e["user_id"]] = e["team_id"]
        elif e["event_type"] == "task_assigned":
            assert team_of[e["assignee_id"]] == teams[e["task_id"]], "assigned outside the assignee's team"
            if e["assignee_id"] in movers:
                by_movers["after" if at(e) >= ONSET else "before"] += 1
    # Movers work for their new team after the onset (and for the old one before), so learned affinities go stale.
    assert by_movers["before"] > 0 and by_movers["after"] > 0
    # Assignments before the onset are the stationary run's; after it, who gets what changes.
    def assigned(r: dict[str, Any], after: bool) -> list[tuple[str, str]]:
        return [(e["task_id"], e["assignee_id"]) for e in of_type(r, "task_assigned") if (at(e) >= ONSET) == after]

    assert assigned(reorg, after=False) == assigned(runs["none"], after=False)
    assert assigned(reorg, after=True) != assigned(runs["none"], after=True)


def test_workload_surge_doubles_one_teams_task_arrivals_from_the_onset_and_leaves_the_others(
    runs: dict[str, dict[str, Any]],
) -> None:
    def hourly(r: dict[str, Any]) -> dict[str, Counter[int]]:
        teams, out = task_teams(r), defaultdict(Counter)
        for e in of_type(r, "task_created"):
            out[teams[e["task_id"]]][int((at(e) - START).total_seconds() // 3600)] += 1
        return out

    none, surge = hourly(runs["none"]), hourly(runs["workload_surge"])
    truth = scenario_onset(str(runs["workload_surge"]["truth"]))
    assert truth is not None and truth["parameters"]["multiplier"] == 2.0
    (team,) = truth["affected_team_ids"]
    onset_h = 24 * ONSET_DAY
    for other in set(none) - {team}:
        assert surge[other] == none[other], f"team {other} is not in the surge but its arrivals changed"
    assert {h: c for h, c in surge[team].items() if h < onset_h} == {h: c for h, c in none[team].items() if h < onset_h}
    after_none = sum(c for h, c in none[team].items() if h >= onset_h)
    after_surge = sum(c for h, c in surge[team].items() if h >= onset_h)
    assert 1.6 < after_surge / after_none < 2.5  # x2 in expectation; ~70 base arrivals, Poisson noise


def test_estimate_bias_shrinks_estimates_from_the_onset_so_actual_over_estimate_rises(
    runs: dict[str, dict[str, Any]],
) -> None:
    none, bias = runs["none"]["tasks"].set_index("task_id"), runs["estimate_bias"]["tasks"].set_index("task_id")
    assert list(none.index) == list(bias.index)  # the same tasks, created at the same times
    after = (bias["created_at"] >= pd.Timestamp(ONSET)).to_numpy()
    true_est = none["estimated_hours"].to_numpy()
    reported = bias["estimated_hours"].to_numpy()
    assert np.array_equal(reported[~after], true_est[~after])
    assert np.array_equal(reported[after], np.clip(np.round(true_est[after] * 0.6 * 2) / 2, 0.5, 40.0))
    assert np.array_equal(bias["true_estimated_hours"].to_numpy(), true_est)  # the durations follow this one
    # The events carry the reported estimate.
    carried = {e["task_id"]: e["estimated_hours"] for e in of_type(runs["estimate_bias"], "task_created")}
    assert np.array_equal([carried[t] for t in bias.index], reported)

    def slip(tasks: pd.DataFrame) -> tuple[float, float]:
        ratio = tasks["actual_duration_hours"] / tasks["estimated_hours"]
        return float(ratio[~after].median()), float(ratio[after].median())

    (none_before, none_after), (bias_before, bias_after) = slip(none), slip(bias)
    assert bias_before == none_before
    assert bias_after / bias_before > 1.35 * (none_after / none_before)  # ~1/0.6 more slip than stationary


@pytest.mark.parametrize("name", [s for s in SCENARIOS if s != "none"])
def test_the_truth_records_the_scenario_its_onset_and_parameters(runs: dict[str, dict[str, Any]], name: str) -> None:
    truth = scenario_onset(str(runs[name]["truth"]))
    assert truth is not None
    assert truth["scenario"] == name and truth["onset_day"] == ONSET_DAY
    assert truth["onset"] == ONSET.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert datetime.fromisoformat(truth["onset"].replace("Z", "+00:00")) == ONSET
    expected = {"reorg": {"share_moved": 0.3}, "workload_surge": {"multiplier": 2.0},
                "estimate_bias": {"estimate_factor": 0.6}}[name]  # fmt: skip
    assert expected.items() <= truth["parameters"].items()
    assert truth["affected_team_ids"]
    summary = json.loads((runs[name]["truth"] / "summary.json").read_text())
    assert summary["config"]["scenario"]["name"] == name


def test_the_cli_and_the_default_onset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Default onset: the window's middle (day 7 of 14, day 1 of the tiny preset's 2).
    assert config_for_preset("demo", START, scenario="reorg").onset_h == 24 * 7
    args = ["--preset", "tiny", "--start", "2026-11-02T00:00:00Z", "--no-dirt", "--scenario", "workload_surge",
            "--landing-uri", str(tmp_path / "l"), "--truth-uri", str(tmp_path / "t")]  # fmt: skip
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["preset"] == "tiny"
    truth = scenario_onset(str(tmp_path / "t"))
    assert truth is not None and truth["scenario"] == "workload_surge" and truth["onset"].startswith("2026-11-03T00")
    # A stationary rerun into the same truth store replaces the scenario's record.
    assert main([*args[:5], "--landing-uri", str(tmp_path / "l"), "--truth-uri", str(tmp_path / "t")]) == 0
    assert scenario_onset(str(tmp_path / "t")) is None
    assert main([*args, "--scenario-day", "2"]) == 2
    assert "scenario_day 2 is outside the 2-day window" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario": "drift"}, r"unknown scenario 'drift'; choose one of \['estimate_bias', 'none', 'reorg'"),
        ({"scenario": "reorg", "scenario_day": 0}, r"scenario_day 0 is outside the 4-day window.*1\.\.3"),
        ({"scenario": "reorg", "scenario_day": 4}, r"scenario_day 4 is outside the 4-day window"),
        ({"scenario": "estimate_bias", "scenario_day": -1}, r"scenario_day -1 is outside"),
        ({"scenario": "none", "scenario_day": 9}, r"scenario_day 9 is outside the 4-day window"),
        ({"scenario": "workload_surge", "days": 1}, r"needs a window of at least 2 days"),
        ({"scenario": "reorg", "n_teams": 1}, r"at least two teams"),
        ({"scenario": "reorg", "scenario_day": 1.5}, r"whole number of days"),
    ],
)
def test_a_bad_scenario_or_an_onset_outside_the_window_fails_clearly(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config_for_preset("tiny", START, **{"days": DAYS, **kwargs})


def test_the_tracker_preset_refuses_scenarios() -> None:
    with pytest.raises(ValueError, match="not available for the tracker preset"):
        config_for_preset("tracker", START, scenario="estimate_bias")


def test_the_dag_offers_every_scenario_as_a_param() -> None:
    spec = importlib.util.spec_from_file_location("simulate_activity_dag", DAG_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    offered = module.SCENARIOS  # spelled out there to keep numpy out of DAG parsing
    assert offered == tuple(SCENARIOS)
    params = module.simulate_activity().params
    scenario, day = params.get_param("scenario"), params.get_param("scenario_day")
    assert scenario.value == "none" and scenario.schema["enum"] == list(SCENARIOS)
    assert scenario.schema["title"] and scenario.description and day.schema["title"] and day.description
    assert day.value is None and day.schema["minimum"] == 1
