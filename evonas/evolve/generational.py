"""Generational GA of Genetic CNN (Xie & Yuille, ICCV 2017).

Pseudocode (paper probabilities as defaults; one barrier per generation)::

    population = N random genomes, all evaluated                       # generation 0
    repeat for G generations:
        selected = roulette(population, N) on (fitness - min fitness)
        for each pair (2i, 2i+1): with p_cross: stage crossover (registered crossover;
                                  each stage swapped with q_C inside the operator)
        for each individual:      with p_mut:   mutate (registered mutation, e.g.
                                  bit_flip with q_M = 0.05 per bit)
        evaluate the changed individuals; unchanged ones are carried over with
        their fitness (no new lineage row); population = the new generation

For genome types without a registered crossover the step is mutation only.
Failed children are dropped from the generation; an empty generation restarts
from random genomes. Paper: N=20, G=50, p_cross=0.2, p_mut=0.8.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import ConfigError
from .base import Proposal, Strategy, register_strategy
from .toolbox import Member, Variation, sel_roulette


@register_strategy("generational")
class Generational(Strategy):
    def __init__(self, variation: Variation, population: int = 20, generations: int = 50,
                 p_cross: float = 0.2, p_mut: float = 0.8):
        super().__init__(variation)
        for field, v in (("population", population), ("generations", generations)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError("generational", field, v, "must be an integer >= 1")
        for field, v in (("p_cross", p_cross), ("p_mut", p_mut)):
            if not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise ConfigError("generational", field, v, "must be a probability in [0, 1]")
        self.N, self.G, self.pc, self.pm = population, generations, float(p_cross), float(p_mut)
        self.gen = -1          # generation being built/evaluated
        self.queue: list[Proposal] = []
        self.outstanding: set[int] = set()
        self.next_pop: list[Member] = []  # carried over + evaluated members of self.gen

    def ask(self, rng: np.random.Generator) -> Optional[Proposal]:
        for _ in range(100):  # unchanged generations are possible; bounded
            if self.queue:
                return self.queue.pop(0)
            if self.outstanding or self.gen >= self.G:
                return None  # barrier, or all generations done
            self._next_generation(rng)
        return None

    def submitted(self, m: Member) -> None:
        self.outstanding.add(m.id)

    def tell(self, m: Member) -> None:
        self.outstanding.discard(m.id)
        if m.status != "failed":
            self.next_pop.append(m)
            self._admit(m)

    def _next_generation(self, rng: np.random.Generator) -> None:
        # the generation just finished becomes the population
        population, self.next_pop = self.next_pop, []
        for m in list(self.alive.values()):
            if all(m is not p for p in population):
                self._evict(m)
        self.gen += 1
        if not population:
            self.queue = [Proposal(self.var.sample(rng)) for _ in range(self.N)]
            return
        sel = sel_roulette(population, self.N, rng)
        genomes = [m.genome for m in sel]
        parents = [(m.id,) for m in sel]
        ops: list[list[str]] = [[] for _ in sel]
        cx = self.var.crossovers
        for i in range(0, self.N - 1, 2):
            if cx and rng.random() < self.pc:
                op = cx[int(rng.integers(len(cx)))]
                genomes[i], genomes[i + 1] = self.var.crossover(op, genomes[i], genomes[i + 1], rng)
                parents[i] = parents[i + 1] = (sel[i].id, sel[i + 1].id)
                ops[i].append(op.name)
                ops[i + 1].append(op.name)
        for i in range(self.N):
            if rng.random() < self.pm:
                genomes[i], name = self.var.mutate(genomes[i], rng)
                ops[i].append(name)
        for i in range(self.N):
            if ops[i]:
                self.queue.append(Proposal(genomes[i], parents[i], "+".join(ops[i])))
            else:
                self.next_pop.append(sel[i])  # carried over unchanged, same member
