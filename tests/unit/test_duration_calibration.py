"""Conformal calibration of the duration intervals (``maestro_ml.training.duration.Calibration``)."""

from __future__ import annotations

import numpy as np

from maestro_ml.training.duration import Calibration


def _coverage_per_draw(confidence: float, draws: int = 300, n: int = 400) -> np.ndarray:
    """Test coverage of the 90% interval calibrated on each of ``draws`` calibration sets of ``n`` rows."""
    rng = np.random.default_rng(0)
    # A quantile model that is too narrow (its 5%..95% band covers about 70%): calibration must widen it.
    heads = np.tile([-0.6, -0.45, 0.0, 0.45, 0.6], (n, 1))
    test = rng.normal(0, 0.5, 200_000)
    covered = []
    for _ in range(draws):
        margins = Calibration.fit(heads, rng.normal(0, 0.5, n), confidence=confidence).margins
        covered.append(np.mean(np.abs(test) <= 0.6 + margins[90]))
    return np.array(covered)


def test_plain_split_conformal_reaches_nominal_coverage_only_on_average_over_calibration_sets() -> None:
    plain = _coverage_per_draw(confidence=0.5)
    assert abs(plain.mean() - 0.90) < 0.005
    assert 0.3 < (plain >= 0.90).mean() < 0.7, "about half of the calibration sets give less than 90%"


def test_the_default_margins_hold_nominal_coverage_for_nine_calibration_sets_in_ten_at_little_extra_width() -> None:
    conditional = _coverage_per_draw(confidence=0.9)
    assert 0.85 <= (conditional >= 0.90).mean() <= 0.95
    # 1.28 binomial deviations at 400 rows: 1.9 points, not a blanket widening.
    assert conditional.mean() - 0.90 < 0.025
