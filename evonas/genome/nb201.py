"""NAS-Bench-201 cell (Dong & Yang, ICLR 2020): the benchmark search space.

A cell has nodes 0..3; every edge i->j (i<j) carries one op of ``OPS``; node j sums
its incoming edges. String form (exactly NAS-Bench-201's)::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

The genome keeps the 6 ops in that order: edges (0,1), (0,2), (1,2), (0,3), (1,3), (2,3).
Macro skeleton (the paper's): conv3x3-BN stem with C channels, three stages of N
cells (C, 2C, 4C channels) joined by residual reduction blocks, BN-ReLU, then the
compiler's global-pool + linear head.

``decode`` is the official network (``TinyNetwork`` with ``InferCell`` in
AutoDL-Projects): every edge is built, ``none`` as a ``zero`` node, so a conv that
reads an all-zero node is still there. That matters: after training its BN adds a
learned constant, and the benchmark's params/FLOPs count it. ``genome_cost`` then
equals the published params for every cell; NB201's FLOPs are ``cost.macs +
num_classes`` (its counter adds the classifier bias; evonas counts MACs only).
The hash (``arch_hash``) stays on the pruned cell (``cell()``): edges reading an
all-zero node dropped: cells that compute the same function at initialisation
(BN bias 0, so a conv of zeros gives zeros) share a hash.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx
import numpy as np

from ..errors import GenomeError
from ..graph import add_node, arch_hash, new_graph, prune
from ..operators import register_mutation
from .base import Genome, register_genome, space_to_dict

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
_IR = {"none": ("zero", {}), "skip_connect": ("identity", {}), "nor_conv_1x1": ("relu_conv_bn", {"k": 1}),
       "nor_conv_3x3": ("relu_conv_bn", {"k": 3}), "avg_pool_3x3": ("avg_pool", {"k": 3, "stride": 1})}


@dataclass(frozen=True)
class NB201Space:
    """``C``: stem channels (1..1024); ``N``: cells per stage (1..32)."""
    C: int = 16
    N: int = 5


@register_genome("nb201")
@dataclass(frozen=True)
class NB201Genome(Genome):
    ops: tuple[str, ...]
    space: NB201Space = NB201Space()
    Space = NB201Space

    def validate(self) -> None:
        if not isinstance(self.ops, tuple) or len(self.ops) != 6:
            raise GenomeError("nb201", "ops", self.ops, "need a tuple of 6 edge ops")
        for (i, j), op in zip(EDGES, self.ops):
            if op not in OPS:
                raise GenomeError("nb201", f"edge {i}->{j} op", op, f"unknown op (known: {', '.join(OPS)})")
        for name, hi in (("C", 1024), ("N", 32)):
            v = getattr(self.space, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= hi:
                raise GenomeError("nb201", f"space.{name}", v, f"must be an integer in 1..{hi}")

    @classmethod
    def sample(cls, rng: np.random.Generator, space: NB201Space | None = None) -> "NB201Genome":
        return cls(tuple(OPS[i] for i in rng.integers(len(OPS), size=6)), space or NB201Space())

    def to_string(self) -> str:
        o = self.ops
        return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"

    @classmethod
    def from_string(cls, s: str, space: NB201Space | None = None) -> "NB201Genome":
        return cls(_parse(s), space or NB201Space())

    def cell(self, prefix: str = "", C: int | None = None) -> nx.DiGraph:
        """The cell alone as a DAG (input = node 0, output = node 3)."""
        g = new_graph()
        _add_cell(g, self.ops, prefix or "c", "input", C)
        g.add_node("output", op="output", params={})
        g.add_edge(f"{prefix or 'c'}_n3", "output", order=0)
        return prune(g)

    def decode(self) -> nx.DiGraph:
        C, N = self.space.C, self.space.N
        g = new_graph()
        x = add_node(g, "stem", "conv_bn", ["input"], C=C, k=3)
        for stage in range(3):
            c = C * 2 ** stage
            if stage:
                x = _reduction(g, f"r{stage}", x, c)
            for k in range(N):
                x = _add_full_cell(g, self.ops, f"s{stage}c{k}", x, c)
        x = add_node(g, "lastact", "bn_relu", [x])
        add_node(g, "output", "output", [x])
        return g

    def hash_graph(self) -> nx.DiGraph:
        return self.cell()

    def cost_terms(self) -> tuple["NB201Genome", tuple["NB201Genome", ...]]:
        """Params and MACs are additive over edges: every edge of a stage maps the
        same (C, H, W) to the same shape whatever the ops, so each edge adds its op's
        cost independently. Hence cost = cost(all-none) + sum over edges e of
        cost(only e) - cost(all-none); ``compile.genome_cost`` uses this."""
        return _single(self.space, -1, "none"), tuple(
            _single(self.space, e, op) for e, op in enumerate(self.ops) if op != "none")

    def arch_hash(self) -> str:
        # The network is a fixed function of (cell, space): hashing the cell is
        # equivalent to hashing the whole decoded network, and ~50x cheaper.
        return _cell_hash(self.ops, tuple(sorted(space_to_dict(self.space).items())))


@lru_cache(maxsize=None)
def _cell_hash(ops: tuple[str, ...], space: tuple) -> str:
    tag = hashlib.sha256(repr(space).encode()).hexdigest()[:4]
    return arch_hash(NB201Genome(ops).cell())[:12] + tag


@lru_cache(maxsize=None)
def _single(space: NB201Space, e: int, op: str) -> NB201Genome:
    """The cell with op ``op`` on edge ``e`` (-1: none) and ``none`` elsewhere."""
    return NB201Genome(tuple(op if k == e else "none" for k in range(6)), space)


def _parse(s: str) -> tuple[str, ...]:
    if not isinstance(s, str):
        raise GenomeError("nb201", "genome", s, "must be a string like |op~0|+|op~0|op~1|+|...|")
    nodes = s.split("+")
    if len(nodes) != 3:
        raise GenomeError("nb201", "genome", s, "need 3 '+'-separated node groups")
    ops = []
    for j, group in enumerate(nodes, start=1):
        if not (group.startswith("|") and group.endswith("|")):
            raise GenomeError("nb201", f"node {j}", group, "each group must start and end with '|'")
        items = group[1:-1].split("|")
        if len(items) != j:
            raise GenomeError("nb201", f"node {j}", group, f"need {j} incoming edges")
        for i, item in enumerate(items):
            op, sep, src = item.partition("~")
            if not sep or src != str(i):
                raise GenomeError("nb201", f"edge {i}->{j}", item, f"expected 'op~{i}'")
            ops.append(op)
    return tuple(ops)


def _edge(g: nx.DiGraph, prefix: str, i: int, j: int, op: str, src: str, C: int | None) -> str:
    ir_op, params = _IR[op]
    if ir_op == "relu_conv_bn":
        params = {**params, "C": C}
    return add_node(g, f"{prefix}_e{i}{j}", ir_op, [src], **params)


def _add_full_cell(g: nx.DiGraph, ops, prefix: str, x: str, C: int) -> str:
    """The official InferCell: node j = sum of every edge i->j, ``none`` included
    (a ``zero`` node), so nothing is pruned and every node reaches node 3."""
    nodes = [x]
    for j in (1, 2, 3):
        terms = [_edge(g, prefix, i, j, op, nodes[i], C) for (i, jj), op in zip(EDGES, ops) if jj == j]
        nodes.append(add_node(g, f"{prefix}_n{j}", "add", terms))
    return nodes[3]


def _add_cell(g: nx.DiGraph, ops, prefix: str, x: str, C: int | None) -> str:
    """Add the pruned cell (for hashing) reading ``x``: edges that read an all-zero
    node are left out; return its output node (node 3's sum)."""
    alive = {0: x}  # node index -> IR node id, for nodes that carry a non-zero value
    for j in (1, 2, 3):
        terms = []
        for (i, jj), op in zip(EDGES, ops):
            if jj != j or op == "none" or i not in alive:
                continue
            terms.append(_edge(g, prefix, i, j, op, alive[i], C))
        if terms:
            alive[j] = add_node(g, f"{prefix}_n{j}", "add", terms)
    if 3 not in alive:  # every path is 'none': the cell outputs zeros
        return add_node(g, f"{prefix}_n3", "zero", [x])
    return alive[3]


def _reduction(g: nx.DiGraph, prefix: str, x: str, C: int) -> str:
    """NB201's ResNet basic block with stride 2 (Cin -> C channels)."""
    a = add_node(g, f"{prefix}_a", "relu_conv_bn", [x], C=C, k=3, stride=2)
    b = add_node(g, f"{prefix}_b", "relu_conv_bn", [a], C=C, k=3)
    p = add_node(g, f"{prefix}_pool", "avg_pool", [x], k=2, stride=2)
    d = add_node(g, f"{prefix}_down", "conv", [p], C=C, k=1)
    return add_node(g, f"{prefix}_add", "add", [b, d])


@register_mutation("nb201", name="edge_op")
def mut_edge_op(genome: NB201Genome, rng: np.random.Generator) -> NB201Genome:
    """Pick one of the 6 edges uniformly and give it a different op (uniformly)."""
    e = int(rng.integers(6))
    choices = [op for op in OPS if op != genome.ops[e]]
    ops = list(genome.ops)
    ops[e] = choices[int(rng.integers(len(choices)))]
    return NB201Genome(tuple(ops), genome.space)


@register_mutation("nb201", name="edge_op_by_node", weight=0.0)
def mut_edge_op_by_node(genome: NB201Genome, rng: np.random.Generator) -> NB201Genome:
    """NAS-Bench-201's own REA mutation (``mutate_arch_func`` in AutoDL-Projects'
    ``R_EA.py``): pick a node j in 1..3 uniformly, then one of its j incoming edges
    uniformly, and give it a different op (uniformly). Edge probabilities in
    ``EDGES`` order are therefore 1/3, 1/6, 1/6, 1/9, 1/9, 1/9 (``edge_op`` is
    uniform, 1/6 each). Weight 0: used only when named (``--mutation edge_op_by_node``)."""
    j = 1 + int(rng.integers(3))
    e = j * (j - 1) // 2 + int(rng.integers(j))  # edges into node j are EDGES[j(j-1)/2 : j(j+1)/2]
    choices = [op for op in OPS if op != genome.ops[e]]
    ops = list(genome.ops)
    ops[e] = choices[int(rng.integers(len(choices)))]
    return NB201Genome(tuple(ops), genome.space)


@register_mutation("nb201", name="edge_swap", weight=0.0)
def mut_edge_swap(genome: NB201Genome, rng: np.random.Generator) -> NB201Genome:
    """Exchange the ops of two edges that carry different ops (uniform over such
    pairs; a cell with one op on every edge is returned changed by ``edge_op``).
    Two edits in Hamming distance, one move here: it relocates an op without
    changing how many of each the cell has, e.g. the skip from edge 0->1 to 0->3,
    which a single-edge change can only do through a worse intermediate cell.
    Weight 0: used only when named (``--mutation edge_swap``)."""
    pairs = [(i, j) for i in range(6) for j in range(i + 1, 6) if genome.ops[i] != genome.ops[j]]
    if not pairs:
        return mut_edge_op(genome, rng)
    i, j = pairs[int(rng.integers(len(pairs)))]
    ops = list(genome.ops)
    ops[i], ops[j] = ops[j], ops[i]
    return NB201Genome(tuple(ops), genome.space)


def neighbours(genome: NB201Genome) -> list[NB201Genome]:
    """The 24 single-edge changes of ``genome`` (6 edges x 4 other ops), in order."""
    out = []
    for e in range(6):
        for op in OPS:
            if op != genome.ops[e]:
                out.append(NB201Genome(genome.ops[:e] + (op,) + genome.ops[e + 1:], genome.space))
    return out


@register_mutation("nb201", name="edge_op_new_net", weight=0.0)
def mut_edge_op_new_net(genome: NB201Genome, rng: np.random.Generator) -> NB201Genome:
    """A single-edge change whose NETWORK differs from the parent's: uniform over the
    neighbours with ``child.arch_hash() != parent.arch_hash()``. About 15% of
    ``edge_op``'s children of a random parent are isomorphic to it (e.g. an op changed on an
    edge whose source carries only zeros, or none <-> a branch that is pruned), so
    they cost an evaluation (or a duplicate) for nothing. Weight 0: used only when named."""
    h = genome.arch_hash()
    fresh = [c for c in neighbours(genome) if c.arch_hash() != h]
    if not fresh:  # cannot happen in NB201 (edge 0->3 always reaches the output); be safe
        return mut_edge_op(genome, rng)
    return fresh[int(rng.integers(len(fresh)))]
