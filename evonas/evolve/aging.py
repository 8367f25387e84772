"""Aging (regularized) evolution, asynchronous steady state (Real et al., AAAI 2019).

Pseudocode (one call of ``ask`` per free evaluator slot; no generation barrier)::

    ask():
        if |population| + pending_init < P: return random genome        # initial population
        if population is empty:             return None                 # wait for a result
        parent = best of S drawn uniformly WITH replacement from population
        return mutate(parent)                                           # weighted operator choice
    tell(child):
        if child failed: return                                         # never enters
        population.push_back(child)
        if |population| > P: population.pop_front()                     # the OLDEST dies

Defaults are the paper's P=100, S=25 (NAS-Bench-201 protocol: P=10, S=3).
``selection="matched"`` ranks the tournament by the lineage-matched score
(``evolve/matched.py``) instead of the raw fitness: under weight inheritance it
compares architectures at equal training.
"""
from __future__ import annotations

from collections import deque
from typing import Optional

import numpy as np

from ..errors import ConfigError
from .base import Proposal, Strategy, register_strategy
from .matched import SELECTIONS, tournament
from .toolbox import Member, Variation


@register_strategy("aging")
class Aging(Strategy):
    def __init__(self, variation: Variation, population: int = 100, sample: int = 25,
                 selection: str = "fitness"):
        super().__init__(variation)
        for field, v in (("population", population), ("sample", sample)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError("aging", field, v, "must be an integer >= 1")
        if selection not in SELECTIONS:
            raise ConfigError("aging", "selection", selection, f"must be one of {', '.join(SELECTIONS)}")
        self.P, self.S, self.selection = population, sample, selection
        self.queue: deque[Member] = deque()  # oldest first
        self.pending_init = 0

    def ask(self, rng: np.random.Generator) -> Optional[Proposal]:
        if len(self.queue) + self.pending_init < self.P:
            return Proposal(self.var.sample(rng))
        if not self.queue:
            return None
        parent = tournament(self.queue, self.S, rng, self.selection)
        child, op = self.var.mutate(parent.genome, rng)
        return Proposal(child, (parent.id,), op)

    def submitted(self, m: Member) -> None:
        if m.operator == "init":
            self.pending_init += 1

    def tell(self, m: Member) -> None:
        if m.operator == "init":
            self.pending_init -= 1
        if m.status == "failed":
            return
        self.queue.append(m)
        self._admit(m)
        if len(self.queue) > self.P:
            self._evict(self.queue.popleft())
