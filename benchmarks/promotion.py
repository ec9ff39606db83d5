"""Promotion benchmark (issue 13): one ``promote_models`` decision per model on the demo preset, timed gate by gate.

On a home ``make demo`` built (``MAESTRO_DEMO_HOME=<home> scripts/demo.sh``: the demo preset, 14 days, both
models trained and promoted to ``champion`` through the gates against the baselines), in the home's own
MLflow registry (``sqlite:///<home>/mlflow/mlflow.db``), nothing outside the home written:

* ``challengers``: a second version of each model, trained by the training CLI on the very training sets the
  demo's training run used (the lake's ``training_sets/<model>/...``, found from the champion run's
  ``window_end``), with the champion run's tags (``window_end``, ``feature_service``) and other knobs, and
  registered as ``challenger`` (``register_challenger``). Skipped when a challenger newer than the champion
  exists.
* ``library``: the DAG's sequence of plain functions for one request (``action=evaluate``, manual, 2 holdout
  days: the DAG's default), each timed: ``promotion.steps.resolve``, ``build_holdout``, the holdout's Great
  Expectations gate (``features.steps.validate_sets`` with the model's evaluation floor, as
  ``validate_holdout`` calls it), ``promotion.steps.evaluate`` (every gate) and ``apply_decision`` (an
  ``evaluate`` record in the audit trail; no alias moves). This is the total.
* ``gates``: the same request, with ``steps.evaluate`` / ``evaluate.decide`` replayed call by call from the
  same functions (``load_version``, ``_predict``, ``score_ranker``/``score_duration``, ``size_on_disk``,
  ``single_task_p99_ms``, ``strongest_baseline``, ``gates.primary_gate`` (the paired bootstrap),
  ``no_worse_gate``/``coverage_gate``, ``ratio_gate``, ``loads_in_clean_process``, ``signature_gate``), each
  timed; the gate table is checked against the library run's (names and verdicts; the p99 values differ by
  nature).

Each request runs twice: ``champion`` (the challenger v2 against the champion v1: both re-scored) and
``first`` (the champion itself re-evaluated, which ``evaluate`` judges against the strongest baseline: the
first-model case). Every (model, case, pass) is its own process; the process wall time (imports included) is
reported beside the sum of the steps.

Run: ``.venv/bin/python benchmarks/promotion.py --home /tmp/demo-home``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))

MODELS = ("task_assignment", "task_duration")
HOLDOUT_DAYS = 2.0
KNOBS = {"task_assignment": ["--epochs", "4", "--lgb-num-boost-round", "150", "--max-rows", "100000",
                             "--seed", "11"],
         "task_duration": ["--epochs", "20", "--seed", "11"]}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", required=True, help="a MAESTRO_HOME `make demo` built")
    parser.add_argument("--phase", default="all", choices=["all", "challengers", "library", "gates"])
    parser.add_argument("--model", default=None, choices=MODELS)
    parser.add_argument("--case", default="champion", choices=["champion", "first"])
    parser.add_argument("--holdout-days", type=float, default=HOLDOUT_DAYS)
    return parser.parse_args()


def emit(payload: dict) -> None:
    payload["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print("RESULT " + json.dumps(payload, default=str), flush=True)


def home_env(home: str) -> dict[str, str]:
    env = {"MAESTRO_HOME": home, "MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow/mlflow.db"}
    secrets = Path(home) / "secrets.env"
    if secrets.exists():
        for line in secrets.read_text().splitlines():
            if "=" in line:
                key, value = line.split("=", 1)
                env[key.strip()] = value.strip()
    return env


def _settings(home: str) -> Any:
    from maestro_ml.settings import get_settings

    os.environ.update(home_env(home))
    get_settings.cache_clear()
    return get_settings()


class Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def time(self, name: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started


# --- challengers --------------------------------------------------------------------------------------------


def phase_challengers(args: argparse.Namespace) -> None:
    from mlflow import MlflowClient

    from maestro_ml.contracts.models import model_spec
    from maestro_ml.registry import register_challenger
    from maestro_ml.registry.aliases import alias_state, promote

    settings = _settings(args.home)
    client = MlflowClient(tracking_uri=settings.mlflow_tracking_uri)
    out: dict[str, Any] = {"phase": "challengers"}
    for model in MODELS:
        state = alias_state(model, settings)
        if state.champion is None:
            # make demo's gates rejected the first version: it is made champion here, without gates, so that
            # the champion-against-candidate path can be timed (the first-model path is timed on it as well).
            if state.challenger is None:
                raise SystemExit(f"{model} has no version in {args.home}")
            state = promote(model, state.challenger, state, settings)
            out.setdefault("champion_set_without_gates", []).append(model)
        if state.challenger is not None and int(state.challenger) > int(state.champion):
            out[model] = {"champion": state.champion, "challenger": state.challenger, "trained": False}
            continue
        mv = client.get_model_version(model_spec(model).registered_name, state.champion)
        tags = client.get_run(mv.run_id).data.tags
        folders = sorted(glob.glob(f"{settings.lake_uri}/training_sets/{model}/*/train.parquet"))
        if not folders:
            raise SystemExit(f"no training sets of {model} in the lake")
        sets = Path(folders[-1]).parent
        run_tags = {"dag_id": "promotion_benchmark", "run_id": "manual__bench", "window_end": tags["window_end"],
                    "feature_service": tags.get("feature_service", model_spec(model).feature_service)}
        cmd = ["nice", "-n", "5", sys.executable, "-m", "maestro_ml.training", model,
               "--train-uri", str(sets / "train.parquet"), "--valid-uri", str(sets / "valid.parquet"),
               "--test-uri", str(sets / "test.parquet"), "--tracking-uri", settings.mlflow_tracking_uri,
               "--run-tags", json.dumps(run_tags), "--threads", "2", *KNOBS[model]]
        started = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT,
                              env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")})
        if done.returncode != 0:
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-6000:])
            raise SystemExit(f"training {model} failed")
        run_id = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][0])["run_id"]
        version = register_challenger(model, run_id, settings)["version"]
        out[model] = {"champion": state.champion, "challenger": version, "trained": True, "sets": str(sets),
                      "window_end": tags["window_end"], "seconds": round(time.perf_counter() - started, 1)}
        print(f"# {model}: challenger v{version} against champion v{state.champion}", flush=True)
    emit(out)


# --- one request ----------------------------------------------------------------------------------------------


def _request(model: str, case: str, settings: Any) -> tuple[str, str | None]:
    """(version to evaluate, the champion it is judged against, None: the baselines)."""
    from maestro_ml.registry.aliases import alias_state

    state = alias_state(model, settings)
    if case == "first":
        return str(state.champion), None
    if state.challenger is None or state.challenger == state.champion:
        raise SystemExit(f"{model}: no challenger besides the champion; run --phase challengers")
    return str(state.challenger), str(state.champion)


def phase_library(args: argparse.Namespace) -> None:
    from maestro_ml.contracts.models import model_spec
    from maestro_ml.features.steps import validate_sets
    from maestro_ml.promotion import steps

    settings = _settings(args.home)
    model = args.model
    version, _ = _request(model, args.case, settings)
    clock = Clock()
    run_key = f"bench_library_{args.case}_{int(time.time())}"
    total = time.perf_counter()
    resolved = clock.time("resolve", steps.resolve, model, "evaluate", version, None, False, True, settings)
    holdout = clock.time("build_holdout", steps.build_holdout, resolved, args.holdout_days, run_key, settings)
    floor = model_spec(model).floor.evaluate
    clock.time("validate_holdout_gx", validate_sets, holdout, min_groups=floor, settings=settings)
    evaluation = clock.time("evaluate", steps.evaluate, resolved, holdout, 0.0, settings)
    applied = clock.time("apply_decision", steps.apply_decision, resolved, evaluation, "benchmark",
                         f"promotion_benchmark__{run_key}", True, settings)
    total = time.perf_counter() - total
    emit({"phase": "library", "model": model, "case": args.case, "candidate": version,
          "champion": resolved["state"]["champion"], "against": evaluation["against"],
          "holdout": holdout["window"], "holdout_rows": holdout["rows"]["holdout"],
          "promote": evaluation["promote"], "recorded": applied["action"],
          "gates": [(g["name"], g["passed"], g["value"]) for g in evaluation["gates"]],
          "seconds": {k: round(v, 2) for k, v in clock.seconds.items()}, "total_s": round(total, 2)})


def phase_gates(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from maestro_ml import storage
    from maestro_ml.contracts.models import model_spec
    from maestro_ml.feast_ext.store import get_store, service_features
    from maestro_ml.features.steps import validate_sets
    from maestro_ml.promotion import evaluate as ev
    from maestro_ml.promotion import gates as g
    from maestro_ml.promotion import steps
    from maestro_ml.registry import declared_feature_service, model_inputs

    settings = _settings(args.home)
    model = args.model
    version, champion_version = _request(model, args.case, settings)
    clock = Clock()
    run_key = f"bench_gates_{args.case}_{int(time.time())}"
    total = time.perf_counter()
    resolved = clock.time("resolve", steps.resolve, model, "evaluate", version, None, False, True, settings)
    holdout = clock.time("build_holdout", steps.build_holdout, resolved, args.holdout_days, run_key, settings)
    floor = model_spec(model).floor.evaluate
    clock.time("validate_holdout_gx", validate_sets, holdout, min_groups=floor, settings=settings)

    # steps.evaluate, then evaluate.decide, call by call.
    evaluate_started = time.perf_counter()

    def read_holdout() -> pd.DataFrame:
        fs, path = storage.filesystem(holdout["uris"]["holdout"])
        with fs.open(path, "rb") as handle:
            return pq.read_table(handle).to_pandas()

    frame = clock.time("evaluate.read_holdout", read_holdout)
    champion = resolved["state"]["champion"]
    if champion == resolved["candidate"]:
        champion = None
    assert champion == champion_version, (champion, champion_version)

    def served_features() -> list[str]:
        service = declared_feature_service(model, resolved["candidate"], settings)
        return service_features(get_store(settings), service)

    served = clock.time("signature.service_features", served_features)
    spec = model_spec(model)
    ranking = spec.training_set == "ranking"
    if not ranking:
        frame = frame[frame[ev.TARGET].notna() & (frame[ev.TARGET] > 0)].reset_index(drop=True)

    def run(label: str, v: str) -> tuple[Any, Any]:
        pyfunc = clock.time(f"rescore_{label}.load", ev.load_version, model, v, settings)
        output = clock.time(f"rescore_{label}.predict", ev._predict, pyfunc, frame)
        scored = clock.time(f"rescore_{label}.metric", ev.score_ranker if ranking else ev.score_duration,
                            f"v{v}", output, frame)
        scored.size_bytes = clock.time(f"size.{label}", ev.size_on_disk, model, v, settings)
        return pyfunc, scored

    pyfunc, candidate = run("candidate", version)
    if champion is not None:
        champ, reference = run("champion", champion)
        candidate.p99_ms, reference.p99_ms = clock.time("p99_latency", ev.single_task_p99_ms, [pyfunc, champ], frame)
        against = f"champion v{champion}"
    else:
        candidate.p99_ms = clock.time("p99_latency", ev.single_task_p99_ms, [pyfunc], frame)[0]
        start = pd.Timestamp(holdout["window"]["start"]).to_pydatetime()
        end = pd.Timestamp(holdout["window"]["end"]).to_pydatetime()
        reference = clock.time("baselines", ev.strongest_baseline, model, frame, settings, start, end)
        against = f"the strongest baseline ({reference.label.removeprefix('baseline ')}; no champion yet)"
    metric = "ndcg@5" if ranking else "abs_error_hours"
    gate_list = clock.time("bootstrap", g.primary_gate, candidate.per_unit, reference.per_unit,
                           higher_is_better=ranking, margin=0.0, against=against, metric=metric)
    if ranking:
        gate_list.append(clock.time("guard_metrics", g.no_worse_gate, "guard_mrr", candidate.report["mrr"],
                                    reference.report.get("mrr"), tolerance=g.MRR_TOLERANCE, higher_is_better=True))
    else:
        gate_list += clock.time("guard_metrics", lambda: [
            g.coverage_gate(80, candidate.report.get("coverage80", float("nan"))),
            g.coverage_gate(90, candidate.report.get("coverage90", float("nan")))])
    has_reference = champion is not None
    gate_list.append(clock.time("p99_latency", g.ratio_gate, "guard_p99_ms_single_task", candidate.p99_ms,
                                reference.p99_ms if has_reference else None, g.LATENCY_TOLERANCE, "ms",
                                slack=g.LATENCY_SLACK_MS))
    gate_list.append(clock.time("size.gate", g.ratio_gate, "guard_size_bytes", candidate.size_bytes,
                                reference.size_bytes if has_reference else None, g.SIZE_TOLERANCE, "bytes"))
    uri = f"models:/{spec.registered_name}/{version}"
    gate_list.append(clock.time("load_in_clean_process", g.loads_in_clean_process, uri,
                                settings.mlflow_tracking_uri))
    gate_list.append(clock.time("signature.gate", lambda: g.signature_gate(model_inputs(pyfunc), served)))
    decision = g.Decision(gate_list)
    evaluate_s = time.perf_counter() - evaluate_started
    evaluation = {"promote": decision.promote, "gates": [x.as_dict() for x in decision.gates],
                  "table": decision.table(), "reasons": decision.reasons(), "against": reference.label,
                  "holdout": holdout["window"]}
    applied = clock.time("apply_decision", steps.apply_decision, resolved, evaluation, "benchmark",
                         f"promotion_benchmark__{run_key}", True, settings)
    total = time.perf_counter() - total
    s = clock.seconds
    grouped = {
        "resolve": s["resolve"],
        "build_holdout": s["build_holdout"],
        "validate_holdout_gx": s["validate_holdout_gx"],
        "read_holdout": s["evaluate.read_holdout"],
        "rescore_candidate (load + predict + metric)": sum(v for k, v in s.items() if k.startswith("rescore_candidate")),
        "rescore_champion (load + predict + metric)": sum(v for k, v in s.items() if k.startswith("rescore_champion")),
        "baselines (first model only)": s.get("baselines", 0.0),
        "bootstrap (primary gate)": s["bootstrap"],
        "guard metrics": s["guard_metrics"],
        "p99 latency gate": s["p99_latency"],
        "size gate": sum(v for k, v in s.items() if k.startswith("size.")),
        "load in a clean process": s["load_in_clean_process"],
        "signature gate": s["signature.service_features"] + s["signature.gate"],
        "apply_decision": s["apply_decision"],
    }
    emit({"phase": "gates", "model": model, "case": args.case, "candidate": version, "champion": champion,
          "against": reference.label, "holdout": holdout["window"], "holdout_rows": holdout["rows"]["holdout"],
          "scored_rows": len(frame), "promote": decision.promote, "recorded": applied["action"],
          "gates": [(x.name, x.passed, x.value) for x in decision.gates],
          "p99_ms": {"candidate": candidate.p99_ms, "reference": reference.p99_ms},
          "primary": {"candidate": float(np.mean(candidate.per_unit)), "reference": float(np.mean(reference.per_unit))},
          "seconds": {k: round(v, 2) for k, v in s.items()},
          "grouped_s": {k: round(v, 2) for k, v in grouped.items()},
          "evaluate_s": round(evaluate_s, 2), "total_s": round(total, 2)})


# --- driver -------------------------------------------------------------------------------------------------


def run_phase(args: argparse.Namespace, phase: str, extra: list[str]) -> list[dict]:
    cmd = ["nice", "-n", "5", sys.executable, __file__, "--home", args.home, "--phase", phase,
           "--holdout-days", str(args.holdout_days), *extra]
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-8000:])
        raise SystemExit(f"phase {phase} {extra} failed")
    results = [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    for r in results:
        r["process_s"] = round(time.perf_counter() - started, 1)
        print(json.dumps(r), flush=True)
    return results


def main() -> None:
    args = parse_args()
    if args.phase == "challengers":
        return phase_challengers(args)
    if args.phase == "library":
        return phase_library(args)
    if args.phase == "gates":
        return phase_gates(args)
    print(f"# promotion benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, MAESTRO_HOME={args.home}", flush=True)
    results = run_phase(args, "challengers", [])
    for model in MODELS:
        for case in ("champion", "first"):
            results += run_phase(args, "library", ["--model", model, "--case", case])
            results += run_phase(args, "gates", ["--model", model, "--case", case])
    for r in results:
        if r["phase"] == "gates":
            print(f"\n{r['model']} v{r['candidate']} against {r['against']} ({r['case']}), holdout "
                  f"{r['holdout']['start']}..{r['holdout']['end']}, {r['scored_rows']:,} rows: promote={r['promote']}")
            print("| step / gate | seconds |\n|---|---|")
            for k, v in r["grouped_s"].items():
                print(f"| {k} | {v} |")
            print(f"| total (sum of steps) | **{r['total_s']}** |  process {r['process_s']} s |")
        elif r["phase"] == "library":
            print(f"\nlibrary {r['model']} {r['case']}: {r['seconds']} total {r['total_s']} s "
                  f"(process {r['process_s']} s)")


if __name__ == "__main__":
    main()
