"""How a row cap (``max_rows``) thins a training set: one rule for the set builder and the trainer.

Whole decisions are drawn uniformly at random with a fixed seed until the next one would pass the
cap (a ranking group is never cut; at least one decision stays). A uniform draw keeps the window's
time profile: years of history can be capped without training on the oldest months only, which is
what keeping the earliest decisions did.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def sample_whole_groups(groups: pd.Series, max_rows: int, seed: int = 0) -> np.ndarray:
    """A boolean row mask keeping at most ``max_rows`` rows, as whole groups of ``groups`` drawn at random."""
    if len(groups) <= max_rows:
        return np.ones(len(groups), dtype=bool)
    sizes = groups.value_counts(sort=False)
    order = np.random.default_rng(seed).permutation(len(sizes))
    fits = sizes.to_numpy()[order].cumsum() <= max_rows
    fits[0] = True
    chosen = sizes.index[order[fits]]
    return groups.isin(set(chosen)).to_numpy()
