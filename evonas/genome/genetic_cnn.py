"""Genetic CNN (Xie & Yuille, ICCV 2017): stage-wise connection bits.

Encoding (paper, Sec. 3.1.1). Stage s has K_s ordinary nodes v1..vK. For every
pair i<j one bit says whether vi feeds vj, ordered by target node:
(v1,v2), (v1,v3), (v2,v3), (v1,v4), ... : K(K-1)/2 bits. The string writes one
'-'-separated group per target node and joins stages with '_' ('|' is accepted)::

    1-01_0-01-100_0-11-101-0001     # S=3, K=(3,4,5)
    K=4 group '1-01-100' = v2<-v1 | v3<-v1,v2 | v4<-v1,v2,v3

Decoding (faithful to the paper's text):

* every node is conv3x3 + BN + ReLU with the stage's channel count; a node with
  several inputs sums them first (an ``add`` node ``s<s>_v<j>_sum``);
* the default input node ``s<s>_v0`` is itself a conv: it reads the previous
  stage (the image for stage 1) and feeds every ordinary node without a
  predecessor;
* the default output node ``s<s>_v<K+1>`` sums every ordinary node without a
  successor and is itself a conv;
* an ordinary node with no connection at all is dropped (so a stage with more
  nodes can express every structure of a stage with fewer);
* a stage whose bits are all zero is a single conv (the paper: "the
  convolution is performed only once, not twice"), node ``s<s>_v0``;
* stages are joined by 2x2 max-pooling (``pool<s>``, stride 2); the compiler
  appends global average pooling + linear (the paper's FC layers are not
  encoded either).

Node ids are ``s<stage>_v<node>`` (1-based stage, paper node numbering), so a
child inherits a parent's weights node by node. Genomes that differ only in
which nodes are isolated decode to isomorphic graphs and share ``arch_hash``.

Default space: the paper's CIFAR-10 setting S=3, K=(3,4,5), with small CPU
channel counts (16, 32, 64); the paper used wider stages (e.g. 32/64 in its
Fig. 1 and larger on ImageNet) — set ``channels`` in the space for that.

Operators (not permutations — the BRIEF notes public implementations wrongly used
``cxOrdered`` / ``mutShuffleIndexes``): ``bit_flip`` (each bit flipped with
probability q=0.05, paper), ``bit_flip_forced`` (same, but at least one bit
flips; weight 0, opt-in), and crossover ``stage_swap`` (each stage exchanged
between the parents with probability 0.2, paper).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import networkx as nx
import numpy as np

from ..errors import GenomeError
from ..graph import add_node, new_graph
from ..operators import register_crossover, register_mutation
from .base import Genome, register_genome

NAME = "genetic-cnn"
MAX_STAGES, MAX_NODES, MAX_CHANNELS = 8, 16, 4096
_STAGE_SPLIT = re.compile(r"[_|]")


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


@dataclass(frozen=True)
class GeneticCNNSpace:
    """``stages``: nodes per stage K_s (each 2..16, 1..8 stages; paper CIFAR-10:
    (3, 4, 5)); ``channels``: conv filters per stage (each 1..4096, one per stage)."""
    stages: tuple[int, ...] = (3, 4, 5)
    channels: tuple[int, ...] = (16, 32, 64)

    def __post_init__(self) -> None:
        for name in ("stages", "channels"):
            v = getattr(self, name)
            if not isinstance(v, tuple) or not 1 <= len(v) <= MAX_STAGES:
                raise GenomeError(NAME, f"space.{name}", v, f"need a tuple of 1..{MAX_STAGES} integers")
        for name, lo, hi in (("stages", 2, MAX_NODES), ("channels", 1, MAX_CHANNELS)):
            for i, x in enumerate(getattr(self, name)):
                if not _is_int(x) or not lo <= x <= hi:
                    raise GenomeError(NAME, f"space.{name}[{i}]", x, f"must be an integer in {lo}..{hi}")
        if len(self.channels) != len(self.stages):
            raise GenomeError(NAME, "space.channels", self.channels,
                              f"need one channel count per stage ({len(self.stages)} stages)")

    def n_bits(self, s: int) -> int:
        """Number of connection bits of stage ``s`` (0-based)."""
        k = self.stages[s]
        return k * (k - 1) // 2


def _pairs(k: int) -> list[tuple[int, int]]:
    """Bit order of one stage: (i, j) node pairs, 1-based, grouped by target j."""
    return [(i, j) for j in range(2, k + 1) for i in range(1, j)]


@register_genome(NAME)
@dataclass(frozen=True)
class GeneticCNNGenome(Genome):
    bits: tuple[tuple[int, ...], ...]
    space: GeneticCNNSpace = GeneticCNNSpace()
    Space = GeneticCNNSpace

    def validate(self) -> None:
        if not isinstance(self.space, GeneticCNNSpace):
            raise GenomeError(NAME, "space", self.space, "must be a GeneticCNNSpace")
        S = len(self.space.stages)
        if not isinstance(self.bits, tuple) or len(self.bits) != S:
            raise GenomeError(NAME, "bits", self.bits, f"need a tuple of {S} per-stage bit tuples")
        for s, stage in enumerate(self.bits):
            need = self.space.n_bits(s)
            if not isinstance(stage, tuple) or len(stage) != need:
                raise GenomeError(NAME, f"stage {s + 1} bits", stage,
                                  f"need {need} bits for K={self.space.stages[s]} nodes")
            for b in stage:
                if not _is_int(b) or b not in (0, 1):
                    raise GenomeError(NAME, f"stage {s + 1} bits", stage, "bits must be the integers 0 or 1")

    @classmethod
    def sample(cls, rng: np.random.Generator, space: GeneticCNNSpace | None = None) -> "GeneticCNNGenome":
        """Bernoulli(0.5) bits, the paper's initialisation."""
        space = space or GeneticCNNSpace()
        return cls(tuple(tuple(int(b) for b in rng.integers(2, size=space.n_bits(s)))
                         for s in range(len(space.stages))), space)

    def to_string(self) -> str:
        return "_".join(_stage_string(b, k) for b, k in zip(self.bits, self.space.stages))

    @classmethod
    def from_string(cls, s: str, space: GeneticCNNSpace | None = None) -> "GeneticCNNGenome":
        space = space or GeneticCNNSpace()
        return cls(_parse(s, space), space)

    def edges(self, s: int) -> list[tuple[int, int]]:
        """Encoded connections (i, j) of stage ``s`` (0-based), nodes 1-based."""
        return [p for p, b in zip(_pairs(self.space.stages[s]), self.bits[s]) if b]

    def decode(self) -> nx.DiGraph:
        g = new_graph()
        x = "input"
        for s, C in enumerate(self.space.channels):
            if s:
                x = add_node(g, f"pool{s}", "max_pool", [x], k=2, stride=2)
            x = _add_stage(g, f"s{s + 1}", x, self.space.stages[s], self.edges(s), C)
        add_node(g, "output", "output", [x])
        return g


def _stage_string(bits: tuple[int, ...], k: int) -> str:
    groups, pos = [], 0
    for j in range(2, k + 1):
        groups.append("".join(str(b) for b in bits[pos:pos + j - 1]))
        pos += j - 1
    return "-".join(groups)


def _parse(s: str, space: GeneticCNNSpace) -> tuple[tuple[int, ...], ...]:
    if not isinstance(s, str):
        raise GenomeError(NAME, "genome", s, "must be a string like 1-01_0-01-100_0-11-101-0001")
    stages = _STAGE_SPLIT.split(s.strip())
    if len(stages) != len(space.stages):
        raise GenomeError(NAME, "genome", s,
                          f"need {len(space.stages)} stages separated by '_' (space.stages={space.stages})")
    out = []
    for n, (text, k) in enumerate(zip(stages, space.stages), start=1):
        groups = text.split("-")
        if len(groups) != k - 1:
            raise GenomeError(NAME, f"stage {n}", text, f"need {k - 1} '-'-separated groups for K={k} nodes")
        bits = []
        for j, grp in enumerate(groups, start=2):
            if len(grp) != j - 1 or set(grp) - {"0", "1"}:
                raise GenomeError(NAME, f"stage {n} node v{j}", grp,
                                  f"need {j - 1} binary digits (0/1), one per v1..v{j - 1}")
            bits.extend(int(c) for c in grp)
        out.append(tuple(bits))
    return tuple(out)


def _add_stage(g: nx.DiGraph, p: str, x: str, k: int, edges: list[tuple[int, int]], C: int) -> str:
    """Add one stage reading ``x``; return the id of its last conv node."""
    if not edges:  # all-zero stage: one convolution, not two (paper)
        return add_node(g, f"{p}_v0", "conv_bn_relu", [x], C=C, k=3)
    v0 = add_node(g, f"{p}_v0", "conv_bn_relu", [x], C=C, k=3)
    preds = {j: sorted(i for i, jj in edges if jj == j) for j in range(1, k + 1)}
    succs = {i: sorted(j for ii, j in edges if ii == i) for i in range(1, k + 1)}
    active = [j for j in range(1, k + 1) if preds[j] or succs[j]]  # isolated nodes dropped
    for j in active:
        _conv_of_sum(g, f"{p}_v{j}", [f"{p}_v{i}" for i in preds[j]] or [v0], C)
    sinks = [f"{p}_v{j}" for j in active if not succs[j]]
    return _conv_of_sum(g, f"{p}_v{k + 1}", sinks, C)


def _conv_of_sum(g: nx.DiGraph, node: str, inputs: list[str], C: int) -> str:
    """conv3x3-BN-ReLU of the sum of ``inputs`` (no add node for a single input)."""
    if len(inputs) > 1:
        inputs = [add_node(g, f"{node}_sum", "add", inputs)]
    return add_node(g, node, "conv_bn_relu", inputs, C=C, k=3)


# --- variation operators ------------------------------------------------------------

def _check_q(q: float, field: str) -> None:
    if not isinstance(q, (int, float)) or isinstance(q, bool) or not 0.0 <= q <= 1.0:
        raise GenomeError(NAME, field, q, "must be a probability in [0, 1]")


def _flip(genome: GeneticCNNGenome, masks: list[np.ndarray]) -> GeneticCNNGenome:
    bits = tuple(tuple(int(b) ^ int(m) for b, m in zip(stage, mask))
                 for stage, mask in zip(genome.bits, masks))
    return GeneticCNNGenome(bits, genome.space)


@register_mutation(NAME, name="bit_flip")
def mut_bit_flip(genome: GeneticCNNGenome, rng: np.random.Generator, q: float = 0.05) -> GeneticCNNGenome:
    """Flip each bit independently with probability ``q`` (paper: q_M = 0.05).
    May return an unchanged genome (about (1-q)^12 = 54% of the time at K=(3,4,5))."""
    _check_q(q, "bit_flip q")
    return _flip(genome, [rng.random(len(b)) < q for b in genome.bits])


@register_mutation(NAME, name="bit_flip_forced", weight=0.0)
def mut_bit_flip_forced(genome: GeneticCNNGenome, rng: np.random.Generator,
                        q: float = 0.05) -> GeneticCNNGenome:
    """``bit_flip``, but when no bit flipped, flip one bit chosen uniformly, so the
    child always differs in its bits (useful for aging evolution, where a copy
    wastes an evaluation). Not in the paper: weight 0, choose it by name."""
    _check_q(q, "bit_flip_forced q")
    masks = [rng.random(len(b)) < q for b in genome.bits]
    total = sum(len(m) for m in masks)
    if total and not any(m.any() for m in masks):
        pick = int(rng.integers(total))
        for m in masks:
            if pick < len(m):
                m[pick] = True
                break
            pick -= len(m)
    return _flip(genome, masks)


@register_crossover(NAME, name="stage_swap")
def cx_stage_swap(a: GeneticCNNGenome, b: GeneticCNNGenome, rng: np.random.Generator,
                  p: float = 0.2) -> tuple[GeneticCNNGenome, GeneticCNNGenome]:
    """Exchange each whole stage between the parents with probability ``p``
    (paper: q_C = 0.2); bits inside a stage are never split."""
    _check_q(p, "stage_swap p")
    if a.space != b.space:
        raise GenomeError(NAME, "space", (a.space, b.space), "crossover needs parents of the same space")
    swap = rng.random(len(a.bits)) < p
    ca = tuple(sb if sw else sa for sa, sb, sw in zip(a.bits, b.bits, swap))
    cb = tuple(sa if sw else sb for sa, sb, sw in zip(a.bits, b.bits, swap))
    return GeneticCNNGenome(ca, a.space), GeneticCNNGenome(cb, a.space)
