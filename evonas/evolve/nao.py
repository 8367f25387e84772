"""NAO, Neural Architecture Optimization (Luo et al., NeurIPS 2018).

Pseudocode (model: ``evonas.predict.nao.NAOModel``; decisions: ``reinforce.CHOICES``)::

    ask():
        if |history| + pending_init < P: return random genome not yet proposed
        refit encoder-predictor-decoder on history every k results (warm start)
        for seed in history by fitness, best first (at most `starts`):
            z = encode(seed); g = d predict(z) / d z
            for eta in (0.1, 0.2, 0.5, 1, 2, 5, 10):       # growing steps, as NAO
                a = decode(z + eta * g)
                if a not proposed before: return a
        return the best-predicted of M unseen mutations of the best   # fallback
    tell(m): history.append(m) if m is ok

Genome types without a decision vector (``tree``) always take the fallback (an
MLP ensemble on the ``wl`` encoding ranks the mutations), since a decoder needs a
fixed output format. Model init and every draw come from the ``rng`` given to
``ask``; training is full-batch and deterministic on CPU.
"""
from __future__ import annotations

import numpy as np

from ..predict.nao import NAOModel
from .base import register_strategy
from .pvll import Guided, _int
from .toolbox import Variation


@register_strategy("nao")
class NAO(Guided):
    """``starts``: architectures improved per proposal before the fallback;
    ``model_args``: ``NAOModel``'s (dim, hidden, epochs, epochs_first, lr, trade)."""

    def __init__(self, variation: Variation, population: int = 10, refit_every: int = 1, candidates: int = 24,
                 tries: int = 100, starts: int = 3, model_args: dict | None = None):
        super().__init__(variation, population, refit_every, candidates, tries)
        self.starts = _int("nao", "starts", starts)
        self.model = NAOModel(self.sizes, **(model_args or {})) if self.sizes else None

    def propose(self, rng: np.random.Generator) -> list[list[int]]:
        if self._due():
            A = np.array([self._to(g) for g, _ in self.hist])
            self.model.fit(A, np.array([f for _, f in self.hist]), rng)
        out = []
        for g in self.ranked()[:self.starts]:
            out += self.model.improve(self._to(g))
        return out
