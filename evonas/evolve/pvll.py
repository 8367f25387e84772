"""PVLL-NAS (Li et al., ICML 2020): descend a proxy validation-loss landscape
learned from the history of evaluated architectures. Also the shared base of the
model-guided strategies (``Guided``, used by ``nao`` too).

Pseudocode (``landscape``: ``evonas.predict.pvll``; decisions: ``reinforce.CHOICES``)::

    ask():
        if |history| + pending_init < P: return random genome not yet proposed
        refit the landscape on history every k results (warm start)
        for start in history by fitness, best first (at most `starts`):
            for a in descend(landscape, start):         # gradient ascent on logits
                if a not proposed before: return a
        return the best-predicted of M unseen mutations of the best   # fallback
    tell(m): history.append(m) if m is ok

Genome types without a decision vector (``tree``) always take the fallback: the
landscape (MLP ensemble on the ``wl`` encoding) ranks M unseen mutations of the
best, a one-step discrete descent. Every draw (initial genomes, bootstrap, the
fallback's mutations) uses the ``rng`` given to ``ask``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import ConfigError
from ..genome.base import Genome
from ..predict.mlp_ensemble import MLPEnsemble
from ..predict.pvll import descend, onehot
from ..predict.screen import ModelScreen
from .aging_novel import sample_novel
from .base import Proposal, Strategy, register_strategy
from .reinforce import CHOICES
from .toolbox import Member, Variation


def _int(owner, field, v, lo=1):
    if not isinstance(v, int) or isinstance(v, bool) or v < lo:
        raise ConfigError(owner, field, v, f"must be an integer >= {lo}")
    return v


class Guided(Strategy):
    """History, novelty and the random start of a model-guided strategy. Subclasses
    give ``propose(rng) -> [choice vectors]`` (best first) for decision-vector types."""

    def __init__(self, variation: Variation, population: int = 10, refit_every: int = 1,
                 candidates: int = 24, tries: int = 100):
        super().__init__(variation)
        self.P = _int(self.name, "population", population)
        self.k = _int(self.name, "refit_every", refit_every)
        self.M = _int(self.name, "candidates", candidates)
        self.tries = _int(self.name, "tries", tries)
        adapter = CHOICES.get(variation.type)
        self.sizes = self._to = self._from = None
        if adapter is not None:
            sizes_fn, self._to, self._from = adapter()
            self.sizes = sizes_fn(variation.space)
        self.hist: list[tuple[Genome, float]] = []
        self.seen: set[str] = set()
        self.pending_init = 0
        self.best: Optional[Member] = None
        self.fitted_at = 0
        self.fallback = ModelScreen(variation.type, encoding="wl" if adapter is None else None, min_data=1)

    def propose(self, rng: np.random.Generator) -> list[list[int]]:
        raise NotImplementedError

    def _due(self) -> bool:
        due = self.fitted_at == 0 or len(self.hist) - self.fitted_at >= self.k
        if due:
            self.fitted_at = len(self.hist)
        return due

    def ask(self, rng: np.random.Generator) -> Optional[Proposal]:
        if len(self.hist) + self.pending_init < self.P:
            return Proposal(self._new_random(rng))
        if self.best is None:
            return None
        if self._from is not None:
            for a in self.propose(rng):
                g = self._from(a, self.var.space)
                if g.arch_hash() not in self.seen:
                    return Proposal(g, (self.best.id,), self.name)
        cands, hashes = [], set()
        for _ in range(self.tries):
            child, op = self.var.mutate(self.best.genome, rng)
            h = child.arch_hash()
            if h not in self.seen and h not in hashes:
                hashes.add(h)
                cands.append((child, op))
                if len(cands) == self.M:
                    break
        if not cands:
            return Proposal(self._new_random(rng))
        mean, _ = self.fallback.score([c for c, _ in cands], rng)
        child, op = cands[int(np.argmax(mean))]
        return Proposal(child, (self.best.id,), op)

    def _new_random(self, rng: np.random.Generator) -> Genome:
        return sample_novel(self.var, self.seen, self.tries, rng)

    def submitted(self, m: Member) -> None:
        self.seen.add(m.arch_hash)
        self.pending_init += m.operator == "init"

    def tell(self, m: Member) -> None:
        self.pending_init -= m.operator == "init"
        if m.status == "failed" or not m.fitness.valid:
            return
        self.hist.append((m.genome, m.value))
        self.fallback.add(m.genome, m.value)
        if self.best is None or m.fitness.wvalues > self.best.fitness.wvalues:
            if self.best is not None:
                self._evict(self.best)
            self.best = m
            self._admit(m)

    def ranked(self) -> list[Genome]:
        """History genomes by fitness, best first (ties: the earlier)."""
        order = sorted(range(len(self.hist)), key=lambda i: (-self.hist[i][1], i))
        return [self.hist[i][0] for i in order]


@register_strategy("pvll")
class PVLL(Guided):
    """``steps``/``lr``/``tau``: the descent (``predict.pvll.descend``); ``starts``:
    how many of the best architectures to descend from before the fallback."""

    def __init__(self, variation: Variation, population: int = 10, refit_every: int = 1, candidates: int = 24,
                 tries: int = 100, steps: int = 30, lr: float = 1.0, tau: float = 2.0, starts: int = 3):
        super().__init__(variation, population, refit_every, candidates, tries)
        self.steps, self.starts = _int("pvll", "steps", steps), _int("pvll", "starts", starts)
        if not lr > 0 or not tau > 0:
            raise ConfigError("pvll", "lr/tau", (lr, tau), "must be > 0")
        self.lr, self.tau = float(lr), float(tau)
        self.model = MLPEnsemble()

    def propose(self, rng: np.random.Generator) -> list[list[int]]:
        if self._due():
            X = np.stack([onehot(self._to(g), self.sizes) for g, _ in self.hist])
            self.model.fit(X, np.array([f for _, f in self.hist]), rng)
        out = []
        for g in self.ranked()[:self.starts]:
            out += descend(self.model, self._to(g), self.sizes, self.steps, self.lr, self.tau)
        return out
