"""How the training entrypoint reads its sets and the simulator's truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from maestro_ml.training import data


def _set(n_groups: int = 30, size: int = 4) -> pd.DataFrame:
    times = pd.date_range("2026-11-01", periods=n_groups, freq="7min", tz="UTC")
    rows = [
        {"decision_id": f"d{g:03d}", "user_id": f"u{u}", "task_id": f"t{g % 7}", "assigned_at": times[g // 2],
         "x": float(g * 10 + u)}
        for g in range(n_groups) for u in range(size)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("shuffle", [False, True])
def test_read_frame_gives_time_ordered_contiguous_groups(tmp_path: Path, shuffle: bool) -> None:
    frame = _set()
    expected = frame.sort_values(["assigned_at", "decision_id", "user_id"]).reset_index(drop=True)
    if shuffle:
        frame = frame.sample(frac=1.0, random_state=3)
    frame.to_parquet(tmp_path / "set.parquet")
    got = data.read_frame(str(tmp_path / "set.parquet"))
    pd.testing.assert_frame_equal(got, expected)
    assert data.group_sizes(got).tolist() == [4] * 30


def test_is_sorted_is_lexicographic() -> None:
    frame = pd.DataFrame({"a": [1, 1, 2, 2], "b": ["x", "y", "a", "b"]})
    assert data._is_sorted(frame, ["a", "b"])
    assert not data._is_sorted(frame.iloc[[1, 0, 2, 3]], ["a", "b"])  # a tie on "a" broken the wrong way
    assert not data._is_sorted(frame.iloc[[2, 0, 1, 3]], ["a", "b"])
    assert not data._is_sorted(pd.DataFrame({"a": [1.0, np.nan]}), ["a"])


def test_read_truth_keeps_the_evaluated_tasks_and_the_asked_columns(tmp_path: Path) -> None:
    truth = pd.DataFrame({"task_id": ["t1", "t2", "t3", "t1"], "user_id": ["u1", "u1", "u2", "u2"],
                          "utility": [0.1, 0.2, 0.3, 0.4], "unused": [1, 2, 3, 4]})
    (tmp_path / "candidates").mkdir()
    truth.to_parquet(tmp_path / "candidates" / "part-0.parquet")
    frames = [pd.DataFrame({"task_id": ["t1"]}), None, pd.DataFrame({"task_id": ["t3", "t9"]})]
    got = data.read_truth(str(tmp_path), ["task_id", "user_id", "utility"], frames)
    assert list(got.columns) == ["task_id", "user_id", "utility"]
    assert sorted(got["utility"].tolist()) == [0.1, 0.3, 0.4]


def test_a_row_cap_keeps_whole_decisions_drawn_from_the_whole_window_the_same_way_each_time() -> None:
    from maestro_ml.contracts.training_sets import sample_whole_groups

    # 1,000 decisions of 5 candidates, in time order: a cap of 1,000 rows keeps 200 whole ones.
    groups = pd.Series(np.repeat(np.arange(1_000), 5))
    keep = sample_whole_groups(groups, 1_000, seed=3)
    kept = groups[keep]
    assert len(kept) <= 1_000 and (kept.value_counts() == 5).all(), "no decision is cut"
    assert kept.nunique() == 200 and kept.min() < 100 and kept.max() > 900, "drawn from the whole window"
    assert (sample_whole_groups(groups, 1_000, seed=3) == keep).all()
    assert sample_whole_groups(pd.Series([1, 1, 1]), 2).all(), "one decision larger than the cap stays whole"


def test_the_standardizer_clips_serving_values_to_the_training_range_and_an_old_bundle_keeps_its_transform() -> None:
    import numpy as np
    import pandas as pd

    from maestro_ml.training.data import Standardizer

    train = pd.DataFrame({"age_hours": [0.0, 0.0, 0.0, 2.0], "load": [0.1, 0.2, 0.3, 0.4]})
    fitted = Standardizer.fit(train, ["age_hours", "load"])
    served = pd.DataFrame({"age_hours": [100.0, np.nan], "load": [-5.0, 0.25]})
    # An open task scored 100 hours after creation reads as the oldest training row, not 115 deviations out.
    np.testing.assert_allclose(fitted.transform(served), fitted.transform(
        pd.DataFrame({"age_hours": [2.0, 0.0], "load": [0.1, 0.25]})))
    again = Standardizer.from_dict(fitted.to_dict())
    np.testing.assert_array_equal(again.transform(served), fitted.transform(served))
    old = {k: v for k, v in fitted.to_dict().items() if k not in ("lows", "highs")}  # saved before the clip
    unclipped = Standardizer.from_dict(old).transform(served)
    assert unclipped[0, 0] > 100, "a bundle saved before the clip transforms as it did when it was validated"
