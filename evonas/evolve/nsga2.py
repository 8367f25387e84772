"""NSGA-II (Deb et al. 2002) on (fitness: maximise, cost: minimise) with DEAP.

Pseudocode (one barrier per generation)::

    population = N random genomes, evaluated; selNSGA2(population, N)   # sets crowding
    loop:
        parents   = N crowded binary tournaments (dominance, then crowding distance)
        offspring = [mutate(p) for p in parents]                       # evaluated
        population = tools.selNSGA2(population + offspring, N)          # elitist
    report: tools.ParetoFront of every evaluated individual (the engine keeps it)

``objective`` is ``params`` or ``flops`` (from the evaluator's Result); a result
without it counts as infinitely costly (dominated).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ..errors import ConfigError
from .base import Proposal, Strategy, register_strategy
from .toolbox import Member, Variation, crowded_binary_tournament, tools


@register_strategy("nsga2")
class NSGA2(Strategy):
    pareto = True

    def __init__(self, variation: Variation, population: int = 20, objective: str = "params"):
        super().__init__(variation)
        if not isinstance(population, int) or isinstance(population, bool) or population < 2:
            raise ConfigError("nsga2", "population", population, "must be an integer >= 2")
        if objective not in ("params", "flops"):
            raise ConfigError("nsga2", "objective", objective, "must be 'params' or 'flops'")
        self.N, self.objective = population, objective
        self.population: list[Member] = []
        self.queue: list[Proposal] = []
        self.outstanding: set[int] = set()
        self.offspring: list[Member] = []

    def objectives(self, m: Member, fitness: float) -> tuple[float, ...]:
        cost = getattr(m, self.objective)
        return (fitness, float(cost) if cost is not None else math.inf)

    def ask(self, rng: np.random.Generator) -> Optional[Proposal]:
        if not self.queue and not self.outstanding:
            self._next_generation(rng)
        return self.queue.pop(0) if self.queue else None

    def submitted(self, m: Member) -> None:
        self.outstanding.add(m.id)

    def tell(self, m: Member) -> None:
        self.outstanding.discard(m.id)
        if m.status != "failed":
            self.offspring.append(m)
            self._admit(m)

    def _next_generation(self, rng: np.random.Generator) -> None:
        pool, self.offspring = self.population + self.offspring, []
        if not pool:
            self.queue = [Proposal(self.var.sample(rng)) for _ in range(self.N)]
            return
        self.population = tools.selNSGA2(pool, min(self.N, len(pool)))  # deterministic
        keep = {m.id for m in self.population}
        for m in list(self.alive.values()):
            if m.id not in keep:
                self._evict(m)
        for p in crowded_binary_tournament(self.population, self.N, rng):
            child, op = self.var.mutate(p.genome, rng)
            self.queue.append(Proposal(child, (p.id,), op))
