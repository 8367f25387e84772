"""(1+lambda)-ES of CGP-CNN (Suganuma et al., GECCO 2017), see BRIEF 2.2.

Pseudocode::

    parent = random genome, evaluated
    loop:
        children = [forced_mutation(parent) for _ in range(lambda)]    # evaluated in parallel
        best = first child with the highest fitness
        if fitness(best) > fitness(parent): parent = best    # accept='ties': >=
        else: parent = neutral_mutation(parent)   # same network, fitness kept (not retrained)

``accept``: ``better`` (the authors' ``modified_evolution``: a tie keeps the parent
and drifts it neutrally) or ``ties`` (a tie also replaces the parent, plain CGP).
None takes the genome space's ``es_accept`` when it has one (CGP; settable with
``--space es_accept=ties``), else ``better``.

``forced_mutation``: the mutation operator named ``forced`` if the genome type
registers one, else: mutate the child again (weighted operator choice) until its
network changed (``arch_hash`` differs from the parent's), at most ``tries`` times.
``neutral_mutation``: the operator named ``neutral`` if registered, else: a
mutation of the parent whose network is unchanged (same ``arch_hash``, different
genome), at most ``tries`` attempts; when none is found the parent stays as is.
The neutral child goes through the engine as a ``neutral`` proposal, so its
fitness comes from the hash cache (a 'duplicate' row, operator ``neutral``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import ConfigError
from ..operators import operators
from .base import Proposal, Strategy, register_strategy
from .toolbox import Member, Variation

ACCEPT = ("better", "ties")  # the same names as CGPSpace.es_accept (genome layer)


@register_strategy("es")
class OnePlusLambda(Strategy):
    def __init__(self, variation: Variation, lam: int = 2, tries: int = 100, accept: Optional[str] = None):
        super().__init__(variation)
        for field, v in (("lam", lam), ("tries", tries)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError("es", field, v, "must be an integer >= 1")
        if accept not in (None, *ACCEPT):
            raise ConfigError("es", "accept", accept, f"must be one of {', '.join(ACCEPT)}")
        self.lam, self.tries, self.accept = lam, tries, accept
        reg = operators(variation.type)
        self.forced_op = reg.get("forced") if "forced" in reg else None
        self.neutral_op = reg.get("neutral") if "neutral" in reg else None
        self.parent: Optional[Member] = None
        self.issued = 0            # proposals of the current step handed out
        self.outstanding: set[int] = set()
        self.children: list[Member] = []
        self.phase = "init"        # init | children | neutral

    def ask(self, rng: np.random.Generator) -> Optional[Proposal]:
        if self.phase == "init":
            return None if self.outstanding else Proposal(self.var.sample(rng))
        if self.phase == "neutral":
            if self.outstanding:
                return None
            child = self._neutral(rng)
            if child is None:  # no neutral variant found: keep the parent, next step
                self.phase = "children"
                return self.ask(rng)
            return Proposal(child, (self.parent.id,), "neutral", neutral=True)
        if self.issued >= self.lam:
            return None  # barrier: wait for the lambda children
        child, op = self._forced(rng)
        return Proposal(child, (self.parent.id,), op)

    def submitted(self, m: Member) -> None:
        self.outstanding.add(m.id)
        if self.phase == "children":
            self.issued += 1

    def tell(self, m: Member) -> None:
        self.outstanding.discard(m.id)
        if self.phase == "init" or self.phase == "neutral":
            if m.status != "failed":
                self._set_parent(m)
                self.phase = "children"
            return
        self.children.append(m)
        if m.status != "failed":
            self._admit(m)  # keeps its weights until the step is decided
        if len(self.children) < self.lam:
            return
        ok = [c for c in sorted(self.children, key=lambda c: c.id) if c.status != "failed"]
        best = max(ok, key=lambda c: c.fitness.wvalues) if ok else None
        for c in self.children:
            if c is not best:
                self._evict(c)
        self.children, self.issued = [], 0
        if best is not None and self._accepts(best.fitness.wvalues, self.parent):
            self._set_parent(best)
        else:
            if best is not None:
                self._evict(best)
            self.phase = "neutral"

    def _accepts(self, child: tuple, parent: Member) -> bool:
        rule = self.accept or getattr(parent.genome.space, "es_accept", None) or "better"
        return child > parent.fitness.wvalues or (rule == "ties" and child == parent.fitness.wvalues)

    def _set_parent(self, m: Member) -> None:
        if self.parent is not None and self.parent is not m:
            self._evict(self.parent)
        self.parent = m
        self._admit(m)

    def _forced(self, rng: np.random.Generator):
        if self.forced_op is not None:
            return self.var.call(self.forced_op, self.parent.genome, rng), self.forced_op.name
        target = self.parent.arch_hash
        child, ops = self.parent.genome, []
        for _ in range(self.tries):
            child, op = self.var.mutate(child, rng)
            ops.append(op)
            if child.arch_hash() != target:
                break
        return child, ops[-1] if len(set(ops)) == 1 else "+".join(dict.fromkeys(ops))

    def _neutral(self, rng: np.random.Generator):
        g = self.parent.genome
        if self.neutral_op is not None:
            return self.var.call(self.neutral_op, g, rng)
        for _ in range(self.tries):
            child, _ = self.var.mutate(g, rng)
            if child != g and child.arch_hash() == self.parent.arch_hash:
                return child
        return None
