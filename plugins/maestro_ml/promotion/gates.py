"""The promotion gates: each a named value, threshold and verdict, so a rejection says exactly why.

Candidate and reference (the champion, or for a first model the strongest baseline) are scored on the
*same* holdout rows in the same process; the gates compare those scores, never metrics two training
runs logged on different data.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from maestro_ml.evaluation.ranking import paired_bootstrap

# Defaults a run may override through its Params (``margin``) or settings.
PRIMARY_MARGIN = 0.0
MRR_TOLERANCE = 0.01  # absolute: MRR may drop at most this much
COVERAGE_TOLERANCE = 0.03  # absolute, around each nominal level
LATENCY_TOLERANCE = 1.5  # the candidate's p99 may be at most this multiple of the reference's
SIZE_TOLERANCE = 2.0  # on disk, at most this multiple
LATENCY_SLACK_MS = 2.0  # or at most this much slower: a p99 of a few milliseconds moves by that much on its own


@dataclass(frozen=True)
class Gate:
    name: str
    value: float | str | None
    threshold: str
    passed: bool
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if isinstance(self.value, float) and not math.isfinite(self.value):
            out["value"] = None
        return out


@dataclass
class Decision:
    """The gate table of one candidate; ``promote`` only when every gate passed (or only the statistical one
    failed and the run is forced with a reason)."""

    gates: list[Gate] = field(default_factory=list)
    forced: bool = False

    @property
    def failed(self) -> list[Gate]:
        return [g for g in self.gates if not g.passed]

    @property
    def promote(self) -> bool:
        failed = self.failed
        if self.forced:
            return all(g.name.startswith("primary") for g in failed)
        return not failed

    def table(self) -> str:
        rows = ["| gate | value | threshold | passed |", "|---|---|---|---|"]
        for g in self.gates:
            value = f"{g.value:.4g}" if isinstance(g.value, float) else str(g.value)
            rows.append(f"| {g.name} | {value} | {g.threshold} | {'yes' if g.passed else '**no**'} |")
        return "\n".join(rows)

    def reasons(self) -> str:
        return "; ".join(f"{g.name} {g.value} (needs {g.threshold}){': ' + g.detail if g.detail else ''}"
                         for g in self.failed)


def primary_gate(candidate: np.ndarray, reference: np.ndarray, *, higher_is_better: bool, margin: float,
                 against: str, metric: str, seed: int = 0) -> list[Gate]:
    """Per-decision (or per-row) values of the primary metric: the mean must improve, and the lower bound of the
    paired bootstrap 95% interval of the improvement must lie above ``margin``."""
    a, b = (candidate, reference) if higher_is_better else (-np.asarray(candidate), -np.asarray(reference))
    result = paired_bootstrap(a, b, seed=seed)
    n = result["n"]
    computable = n > 0 and math.isfinite(result["diff"])
    improved = computable and result["diff"] > 0
    bound = computable and result["lo"] > margin
    return [
        Gate(f"primary_{metric}_improvement", result["diff"], f"> 0 against {against}", bool(improved),
             f"{n} paired units" if computable else "no paired unit: nothing to compare"),
        Gate(f"primary_{metric}_improvement_lo95", result["lo"], f"> {margin:g} (paired bootstrap 95% lower bound)",
             bool(bound), f"95% interval [{result['lo']:.4g}, {result['hi']:.4g}]" if computable else ""),
    ]


def no_worse_gate(name: str, candidate: float, reference: float | None, *, tolerance: float,
                  higher_is_better: bool) -> Gate:
    """A guard metric may regress at most ``tolerance`` (absolute) against the reference; NaN fails."""
    if reference is None or not math.isfinite(reference):
        return Gate(name, candidate, "no reference: recorded only", math.isfinite(candidate))
    floor = reference - tolerance if higher_is_better else reference + tolerance
    passed = math.isfinite(candidate) and (candidate >= floor if higher_is_better else candidate <= floor)
    sign = ">=" if higher_is_better else "<="
    return Gate(name, candidate, f"{sign} {floor:.4g} (reference {reference:.4g}, tolerance {tolerance:g})", passed)


def coverage_gate(level: int, coverage: float, tolerance: float = COVERAGE_TOLERANCE) -> Gate:
    nominal = level / 100
    passed = math.isfinite(coverage) and abs(coverage - nominal) <= tolerance + 1e-12
    return Gate(f"guard_coverage{level}", coverage, f"{nominal:.2f} +/- {tolerance:.2f}", passed)


def ratio_gate(name: str, candidate: float, reference: float | None, limit: float, unit: str,
               slack: float = 0.0) -> Gate:
    """At most ``limit`` times the reference, or at most ``slack`` above it (timings of milliseconds are noisy)."""
    if reference is None or not math.isfinite(reference) or reference <= 0:
        return Gate(name, candidate, f"no reference: recorded only ({unit})", math.isfinite(candidate))
    ratio = candidate / reference
    passed = ratio <= limit or candidate - reference <= slack
    within = f" or within {slack:g} {unit}" if slack else ""
    return Gate(name, candidate, f"<= {limit:g}x the reference's {reference:.4g} {unit}{within}", passed,
                f"{ratio:.2f}x")


_LOAD_CHECK = """
import json, sys
import numpy as np
import mlflow
mlflow.set_tracking_uri(sys.argv[2])
from mlflow.models import Model
uri = sys.argv[1]
model = mlflow.pyfunc.load_model(uri)
example = Model.load(uri).load_input_example(mlflow.artifacts.download_artifacts(uri))
if example is None:
    print(json.dumps({"ok": False, "why": "the model logged no input example"})); sys.exit(0)
out = model.predict(example)
values = np.asarray(out.to_numpy() if hasattr(out, "to_numpy") else out, dtype=float)
print(json.dumps({"ok": bool(np.isfinite(values).all()), "rows": int(len(values)),
                  "why": "" if np.isfinite(values).all() else "NaN or inf in the predictions"}))
"""


def loads_in_clean_process(model_uri: str, tracking_uri: str, timeout: float = 300.0) -> Gate:
    """The candidate loads from the registry in a fresh interpreter and predicts its logged input example."""
    try:
        done = subprocess.run([sys.executable, "-c", _LOAD_CHECK, model_uri, tracking_uri], capture_output=True,
                              text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Gate("loads_in_clean_process", "timeout", f"loads and predicts within {timeout:g} s", False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Gate("loads_in_clean_process", "error", "loads and predicts its input example", False, tail[:300])
    result = json.loads(lines[-1])
    return Gate("loads_in_clean_process", "ok" if result["ok"] else "failed",
                "loads and predicts its input example with no NaN", bool(result["ok"]), result.get("why", ""))


def signature_gate(model_inputs: list[str], service_features: list[str]) -> Gate:
    """Every input the model's signature names is a feature the declared service provides."""
    missing = sorted(set(model_inputs) - set(service_features))
    return Gate("signature_matches_feature_service", len(missing), "0 inputs the service does not provide",
                not missing, ", ".join(missing[:10]))
