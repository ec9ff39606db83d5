"""Promotion gates (``maestro_ml.promotion.gates``): a candidate is promoted on evidence, never on noise."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from maestro_ml.promotion.gates import Decision, coverage_gate, no_worse_gate, primary_gate, ratio_gate, signature_gate

RNG = np.random.default_rng(3)
REFERENCE = RNG.uniform(0.2, 0.8, size=400)


def _primary(candidate: np.ndarray, higher_is_better: bool = True, margin: float = 0.0) -> Decision:
    return Decision(primary_gate(candidate, REFERENCE, higher_is_better=higher_is_better, margin=margin,
                                 against="champion v1", metric="ndcg@5"))


def test_a_clearly_better_candidate_passes_the_statistical_gate() -> None:
    decision = _primary(REFERENCE + 0.05 + RNG.normal(0, 0.05, size=400))
    assert decision.promote, decision.table()


def test_an_equal_a_worse_or_a_noisy_candidate_is_not_promoted() -> None:
    assert not _primary(REFERENCE.copy()).promote, "equal: no improvement"
    assert not _primary(REFERENCE - 0.05).promote, "worse"
    noisy = REFERENCE + RNG.normal(0.002, 0.2, size=400)  # a better mean by chance, an interval across 0
    decision = _primary(noisy)
    assert not decision.promote and [g.name for g in decision.failed] == ["primary_ndcg@5_improvement_lo95"]
    assert "needs > 0" in decision.reasons()


def test_a_margin_raises_the_bar_and_lower_is_better_metrics_flip() -> None:
    better = REFERENCE + 0.05
    assert not _primary(better, margin=0.1).promote
    errors = REFERENCE * 10
    smaller = primary_gate(errors * 0.8, errors, higher_is_better=False, margin=0.0, against="champion", metric="ae")
    assert Decision(smaller).promote, "a smaller absolute error is better"
    larger = primary_gate(errors * 1.2, errors, higher_is_better=False, margin=0.0, against="champion", metric="ae")
    assert not Decision(larger).promote


def test_a_nan_candidate_fails_instead_of_passing_silently() -> None:
    decision = _primary(np.full(400, np.nan))
    assert not decision.promote
    assert decision.failed[0].detail == "no paired unit: nothing to compare"
    assert all(g.as_dict()["value"] is None for g in decision.gates)


def test_force_skips_only_the_statistical_gate() -> None:
    noisy = Decision(_primary(REFERENCE.copy()).gates, forced=True)
    assert noisy.promote
    broken = Decision([*noisy.gates, coverage_gate(90, 0.70)], forced=True)
    assert not broken.promote, "force never skips a guard"


def test_guards_allow_a_tolerance_and_coverage_must_stay_near_nominal() -> None:
    assert no_worse_gate("guard_mrr", 0.495, 0.5, tolerance=0.01, higher_is_better=True).passed
    assert not no_worse_gate("guard_mrr", 0.48, 0.5, tolerance=0.01, higher_is_better=True).passed
    assert no_worse_gate("guard_mrr", 0.4, None, tolerance=0.01, higher_is_better=True).passed, "nothing to regress"
    assert coverage_gate(90, 0.925).passed and not coverage_gate(90, 0.94).passed
    assert not coverage_gate(80, float("nan")).passed
    assert ratio_gate("guard_p99_ms", 14.0, 10.0, 1.5, "ms").passed
    assert not ratio_gate("guard_size_bytes", 3e6, 1e6, 2.0, "bytes").passed


def test_the_signature_must_only_name_features_the_service_provides() -> None:
    assert signature_gate(["a", "b"], ["a", "b", "c"]).passed
    gate = signature_gate(["a", "z"], ["a", "b"])
    assert not gate.passed and gate.detail == "z"


class _Clock:
    """The latency measurement's clock, advanced only by the stand-in models: the tests time nothing real."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class _TimedModel:
    """A stand-in pyfunc whose calls take ``delay_ms`` on ``clock`` (plus ``stall_ms`` on each of its first
    ``stalled`` calls)."""

    def __init__(self, clock: _Clock, delay_ms: float, stall_ms: float = 0.0, stalled: int = 0) -> None:
        from types import SimpleNamespace

        self.clock, self.delay_ms, self.stall_ms, self.stalled, self.calls = clock, delay_ms, stall_ms, stalled, 0
        schema = SimpleNamespace(input_names=lambda: ["x"])
        self.metadata = SimpleNamespace(get_input_schema=lambda: schema)

    def predict(self, frame: Any) -> Any:
        self.calls += 1
        self.clock.now += (self.delay_ms + (self.stall_ms if self.calls <= self.stalled else 0.0)) / 1000
        return np.zeros(len(frame))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    from maestro_ml.promotion import evaluate

    fake = _Clock()
    monkeypatch.setattr(evaluate, "time", fake)
    return fake


def test_a_stall_during_one_latency_round_does_not_make_an_equal_candidate_look_slower(clock: _Clock) -> None:
    import pandas as pd

    from maestro_ml.promotion.evaluate import LATENCY_CALLS, steady_p99_ms

    frame = pd.DataFrame({"x": [1.0]})
    # The candidate's whole first round stalls (warm-up + 100 calls), as on a machine busy with something else.
    candidate = _TimedModel(clock, 1.0, stall_ms=20.0, stalled=LATENCY_CALLS + 1)
    cand_ms, ref_ms = steady_p99_ms(candidate, _TimedModel(clock, 1.0), frame)
    assert ratio_gate("latency", cand_ms, ref_ms, 1.5, "ms", slack=2.0).passed, (cand_ms, ref_ms)
    assert candidate.calls > LATENCY_CALLS + 1, "it measured again after the stalled round"
    assert cand_ms == pytest.approx(1.0) and ref_ms == pytest.approx(1.0)


def test_a_candidate_slower_in_every_latency_round_is_measured_slower(clock: _Clock) -> None:
    import pandas as pd

    from maestro_ml.promotion.evaluate import LATENCY_CALLS, LATENCY_ROUNDS, steady_p99_ms

    candidate = _TimedModel(clock, 8.0)
    cand_ms, ref_ms = steady_p99_ms(candidate, _TimedModel(clock, 1.0), pd.DataFrame({"x": [1.0]}))
    assert not ratio_gate("latency", cand_ms, ref_ms, 1.5, "ms", slack=2.0).passed, (cand_ms, ref_ms)
    assert (cand_ms, ref_ms) == (pytest.approx(8.0), pytest.approx(1.0))
    assert candidate.calls == LATENCY_ROUNDS * (LATENCY_CALLS + 1), "every round measured before rejecting"
