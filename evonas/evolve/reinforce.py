"""NAS-RL: a policy over the genome's choices, trained by REINFORCE (Zoph & Le,
ICLR 2017; as NAS-Bench-201 runs it, AutoDL-Projects ``exps/algos/reinforce.py``).

The controller is a table of logits, one softmax per decision of the genome (NB201:
6 edges x 5 ops; Genetic CNN: one Bernoulli per connection bit; CGP: each gene's
function or input id), i.e. NB201's ``Policy``: with a fixed-length decision
sequence and no recurrent state to learn from 100 rewards, the RNN of the paper
reduces to these independent categoricals. Pseudocode::

    ask():   a ~ softmax(theta) per decision;  return genome(a)
    tell(m): R = fitness(m)                              # failed: no update
             b = R if first reward else mom * b + (1 - mom) * R    # moving average
             grad = (R - b) * d log pi(a_m) / d theta    # REINFORCE
             theta <- Adam(theta, ascent on grad, lr)
             (baseline updated AFTER the advantage, as the reference)

Asynchronous: each child remembers its own actions, so results may arrive in any
order. Genome types without a fixed decision vector (``tree``) get the same
controller over the type's mutation operators instead: each child is a mutation of
the best member so far by the operator the policy draws (the first P are random
genomes). The whole state is a function of the seed and the ask/tell sequence.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import ConfigError
from .base import Proposal, Strategy, register_strategy
from .toolbox import Member, Variation


# --- decision vectors per genome type: sizes(space), to(genome), from(choices, space) ---

def _nb201():
    from ..genome.nb201 import OPS, NB201Genome
    return (lambda sp: [len(OPS)] * 6, lambda g: [OPS.index(o) for o in g.ops],
            lambda c, sp: NB201Genome(tuple(OPS[i] for i in c), sp))


def _genetic_cnn():
    from ..genome.genetic_cnn import GeneticCNNGenome

    def back(c, sp):
        out, k = [], 0
        for s in range(len(sp.stages)):
            n = sp.n_bits(s)
            out.append(tuple(int(b) for b in c[k:k + n]))
            k += n
        return GeneticCNNGenome(tuple(out), sp)
    return (lambda sp: [2] * sum(sp.n_bits(s) for s in range(len(sp.stages))),
            lambda g: [b for stage in g.bits for b in stage], back)


def _cgp():
    from ..genome.cgp import CGPGenome

    def ranges(sp):  # (lo, size) of every gene: per node function + inputs, then output
        out = []
        for nid in range(1, sp.n_nodes + 1):
            lo, hi = sp.input_range((nid - 1) // sp.rows)
            out += [(0, len(sp.funcs))] + [(lo, hi - lo + 1)] * sp.n_inputs
        lo, hi = sp.input_range(sp.cols)
        return out + [(lo, hi - lo + 1)]

    def to(g):
        genes = [x for node in g.nodes for x in node] + [g.output]
        return [v - lo for v, (lo, _) in zip(genes, ranges(g.space))]

    def back(c, sp):
        vals = [lo + int(v) for v, (lo, _) in zip(c, ranges(sp))]
        w = 1 + sp.n_inputs
        return CGPGenome(tuple(tuple(vals[i * w:(i + 1) * w]) for i in range(sp.n_nodes)), vals[-1], sp)
    return (lambda sp: [n for _, n in ranges(sp)], to, back)


CHOICES = {"nb201": _nb201, "genetic-cnn": _genetic_cnn, "cgp": _cgp}


class Adam:
    """Adam on one array (ascent). Plain numpy: the controller is a logit table."""

    def __init__(self, shape, lr: float):
        self.lr, self.t = lr, 0
        self.m, self.v = np.zeros(shape), np.zeros(shape)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        self.t += 1
        self.m = 0.9 * self.m + 0.1 * grad
        self.v = 0.999 * self.v + 0.001 * grad * grad
        theta += self.lr * (self.m / (1 - 0.9 ** self.t)) / (np.sqrt(self.v / (1 - 0.999 ** self.t)) + 1e-8)


@register_strategy("reinforce")
class Reinforce(Strategy):
    """``lr``: Adam step on the logits; ``momentum``: of the moving-average baseline;
    ``population``: random genomes before the operator policy starts (tree only)."""

    def __init__(self, variation: Variation, lr: float = 0.01, momentum: float = 0.9, population: int = 10):
        super().__init__(variation)
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not lr > 0:
            raise ConfigError("reinforce", "lr", lr, "must be a number > 0")
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ConfigError("reinforce", "momentum", momentum, "must be a number in [0, 1)")
        if not isinstance(population, int) or isinstance(population, bool) or population < 1:
            raise ConfigError("reinforce", "population", population, "must be an integer >= 1")
        self.P, self.momentum = population, float(momentum)
        adapter = CHOICES.get(variation.type)
        if adapter is not None:
            sizes_fn, self._to, self._from = adapter()
            self.sizes = sizes_fn(variation.space)
        else:  # no decision vector: one decision, which mutation operator
            self._to = self._from = None
            self.sizes = [len(variation.ops)]
        L, K = len(self.sizes), max(self.sizes)
        self.mask = np.arange(K)[None, :] < np.array(self.sizes)[:, None]
        self.theta = np.zeros((L, K))  # uniform policy (reference: 1e-3 * randn)
        self.opt = Adam(self.theta.shape, float(lr))
        self.baseline: Optional[float] = None
        self.actions: dict[int, list[int]] = {}  # pending member id -> its actions
        self.best: Optional[Member] = None       # operator mode: the parent
        self.started = 0

    def _probs(self) -> np.ndarray:
        z = np.where(self.mask, self.theta, -np.inf)
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    def ask(self, rng: np.random.Generator) -> Optional[Proposal]:
        p = self._probs()
        # inverse-CDF draws, one uniform per decision: same rng use for every type
        a = [min(int(np.searchsorted(np.cumsum(row), u, side="right")), n - 1)
             for row, u, n in zip(p, rng.random(len(p)), self.sizes)]
        if self._from is not None:
            return Proposal(self._from(a, self.var.space), (), "policy")
        if self.best is None or self.started < self.P:
            self.started += 1
            return Proposal(self.var.sample(rng))
        op = self.var.ops[a[0]]
        return Proposal(self.var.call(op, self.best.genome, rng), (self.best.id,), op.name)

    def submitted(self, m: Member) -> None:
        if self._to is not None:
            self.actions[m.id] = self._to(m.genome)
        elif m.operator != "init":
            self.actions[m.id] = [[op.name for op in self.var.ops].index(m.operator)]

    def tell(self, m: Member) -> None:
        a = self.actions.pop(m.id, None)
        if m.status == "failed" or not m.fitness.valid:
            return
        R = m.value
        if self._to is None and (self.best is None or m.fitness.wvalues > self.best.fitness.wvalues):
            if self.best is not None:
                self._evict(self.best)
            self.best = m
            self._admit(m)
        if a is None:  # operator mode: a random initial genome, no action taken
            return
        if self.baseline is None:
            self.baseline = R
        grad = -self._probs()  # d log softmax / d theta = onehot(a) - p
        grad[np.arange(len(a)), a] += 1.0
        self.opt.step(self.theta, np.where(self.mask, grad * (R - self.baseline), 0.0))
        self.baseline = self.momentum * self.baseline + (1 - self.momentum) * R
