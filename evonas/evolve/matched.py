"""Lineage-matched fitness: compare individuals at equal training, not at equal age.

Under weight inheritance a child's accuracy includes all the training its
ancestors' weights carry (``lineage_epochs``, L). Ranked by raw accuracy, the
oldest lineage wins every tournament because it has trained longest, and the
search stops telling architectures apart. The matched score removes the
population's own trend of accuracy with training before ranking::

    x_i = log2(L_i),  f_i = fitness
    b   = max(0, cov(x, f) / var(x))          # 0 when every L is equal
    score_i = f_i - b * x_i

So a child wins when it is better than what its amount of training predicts for
this population. With equal L everywhere (no inheritance) the ranking is the raw
fitness ranking, so the score changes nothing for from-scratch searches. The
trend is refitted at each selection, over the individuals being compared (the
living population, or all evaluated rows for the final stage's choice).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

SELECTIONS = ("fitness", "matched")


def matched_scores(fitness: Sequence[float], lineage_epochs: Sequence[float]) -> np.ndarray:
    """The matched score of each (fitness, lineage_epochs) pair (see module doc)."""
    f = np.asarray(fitness, dtype=float)
    x = np.log2(np.maximum(np.asarray(lineage_epochs, dtype=float), 1e-3))
    if len(f) < 2 or np.ptp(x) == 0:
        return f.copy()
    xc = x - x.mean()
    b = max(0.0, float(np.dot(xc, f - f.mean()) / np.dot(xc, xc)))
    return f - b * x


def tournament(pop: Sequence, size: int, rng: np.random.Generator, selection: str = "fitness"):
    """Best of ``size`` drawn with replacement (ties: the first drawn), by raw
    fitness or by the matched score over ``pop``. Draws exactly what
    ``toolbox.sel_tournament`` draws, so the two give the same RNG stream."""
    idx = rng.integers(len(pop), size=size)
    if selection == "fitness":
        return max((pop[i] for i in idx), key=lambda m: m.fitness.wvalues)
    scores = matched_scores([m.value for m in pop], [m.lineage_epochs for m in pop])
    best = max(idx, key=lambda i: (scores[i] if math.isfinite(scores[i]) else -math.inf))
    return pop[int(best)]
