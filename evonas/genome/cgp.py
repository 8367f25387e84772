"""Cartesian Genetic Programming CNN (Suganuma, Shirakawa & Nagao, GECCO 2017).

Encoding
--------
A grid of ``rows`` x ``cols`` nodes plus one output gene. Genes address nodes by
*id*: 0 is the network input, grid node (column c, row r) has id ``c*rows + r + 1``
(column-major, as in the paper's code). Each grid node has a function gene (an
index into the function set) and ``n_inputs`` input genes (ids). A node in column
c reads ids of columns ``c - levels_back .. c - 1``; the network input counts as
column -1, so only the first ``levels_back`` columns can read it (standard CGP).
The output gene is one id, read from column ``cols`` by the same rule.

Function sets (``FUNCTION_SETS``; token = name in the string form):

* ``ConvSet``: ``C{32,64,128}k{3,5}`` ConvBlock (IR op ``conv_bn_relu``, stride 1);
* ``ResSet``: ``R{32,64,128}k{3,5}`` ResBlock (IR op ``res_block``) instead;
* both: ``max`` / ``avg`` pool (2x2, stride 2), ``sum`` (op ``add``) and ``cat``
  (op ``concat``) of all ``n_inputs`` inputs.

One-input functions use only the first input gene; the others are inert.

Active nodes are those reachable backwards from the output gene through the
*used* input genes; all other genes are inert genetic material. ``decode`` emits
only active nodes (IR ids ``n<id>``, the output node ``output``), so genomes that
differ only in inactive genes decode to the same graph, hash and module. The
paper's shape repair (max-pool the larger map, zero-pad channels for a sum, no
pooling of a 1x1 map) is the compiler's merge rule (``evonas.opspec``).

Repeated merge inputs: ``sum(x, x)`` cannot be two edges x->n in a DiGraph, so
every repeat goes through an ``identity`` node ``n<id>_in<slot>``; ``sum(x,x)``
stays ``2x`` and ``cat(x,x)`` keeps twice the channels (``canonical`` keeps such
identity nodes because splicing them would need a parallel edge).

String form: columns separated by ``" / "``, nodes of a column by a space, each
node ``FUNC:in0,in1``, then ``out:ID``. Example (rows=2, cols=3, levels_back=2)::

    C32k3:0,0 max:0,0 / C64k5:1,2 sum:1,2 / cat:3,4 avg:1,3 / out:5

Spaces: ``CGPSpace()`` is the small CPU-friendly default (2 x 8, levels_back 4,
no bounds); ``PAPER_SPACE`` / ``PAPER_RES_SPACE`` are the paper's CIFAR-10 grid
(5 x 30, levels_back 10) with ConvSet / ResSet and the authors' bounds: 10..50
active nodes (counted as they do, output node included), at most 3 active pools.
Sampling and forced mutation keep within the bounds; ``es_accept`` is the (1+lambda)-ES
acceptance rule (``better``: strictly better, the authors'). ``PRESETS`` names them all.

Where evonas departs from the authors' code (sg-nm/cgp-cnn): the head is global
average pooling + linear (theirs: a linear layer on the flattened last map);
convolutions have no bias (BN follows each one; their parameter count includes
the biases); a shape mismatch in a merge max-pools by the size ratio in one step
(theirs: floor(log2 ratio) 2x2 pools; the same for power-of-two sizes).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import networkx as nx
import numpy as np

from ..errors import GenomeError
from ..graph import add_node, new_graph
from .base import Genome, register_genome

MUTATION_RATE = 0.05  # the paper's per-gene mutation probability
FORCED_TRIES = 100  # point-mutation retries before forced mutation edits a gene directly
SAMPLE_TRIES = 10_000  # random genomes drawn to find one within the space's bounds
# (1+lambda)-ES acceptance: 'better' = a child replaces the parent only when strictly
# better (the authors' modified_evolution), 'ties' = also on a tie (plain CGP's >=).
ES_ACCEPT = ("better", "ties")


@dataclass(frozen=True)
class Func:
    """One function of a set: string ``token``, IR ``op`` with ``params``, and
    ``arity`` 1 (first input gene only) or -1 (every input gene)."""
    token: str
    op: str
    params: tuple
    arity: int


def _blocks(prefix: str, op: str) -> tuple[Func, ...]:
    return tuple(Func(f"{prefix}{c}k{k}", op, (("C", c), ("k", k)), 1)
                 for c in (32, 64, 128) for k in (3, 5))


_COMMON = (Func("max", "max_pool", (("k", 2), ("stride", 2)), 1),
           Func("avg", "avg_pool", (("k", 2), ("stride", 2)), 1),
           Func("sum", "add", (), -1),
           Func("cat", "concat", (), -1))
FUNCTION_SETS = {"ConvSet": _blocks("C", "conv_bn_relu") + _COMMON,
                 "ResSet": _blocks("R", "res_block") + _COMMON}
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class CGPSpace:
    """``rows`` (1..64) x ``cols`` (1..1000) grid; ``levels_back`` (1..cols) columns
    a node may reach back; ``function_set`` a key of ``FUNCTION_SETS``;
    ``n_inputs`` (2..4) input genes per node. Default: small CPU grid."""
    rows: int = 2
    cols: int = 8
    levels_back: int = 4
    function_set: str = "ConvSet"
    n_inputs: int = 2
    min_active: int = 1
    max_active: int | None = None
    max_pool: int | None = None
    es_accept: str = "better"

    def check(self) -> None:
        for name, hi in (("rows", 64), ("cols", 1000), ("levels_back", self.cols), ("n_inputs", 4),
                         ("min_active", self.n_nodes + 1)):
            v, lo = getattr(self, name), 2 if name == "n_inputs" else 1
            if not _is_int(v) or not lo <= v <= max(hi, lo):
                raise GenomeError("cgp", f"space.{name}", v, f"must be an integer in {lo}..{hi}")
        for name, lo in (("max_active", self.min_active), ("max_pool", 0)):
            v = getattr(self, name)
            if v is not None and (not _is_int(v) or v < lo):
                raise GenomeError("cgp", f"space.{name}", v, f"must be null (no limit) or an integer >= {lo}")
        if self.function_set not in FUNCTION_SETS:
            raise GenomeError("cgp", "space.function_set", self.function_set,
                              f"unknown function set (known: {', '.join(FUNCTION_SETS)})")
        if self.es_accept not in ES_ACCEPT:
            raise GenomeError("cgp", "space.es_accept", self.es_accept, f"must be one of {', '.join(ES_ACCEPT)}")

    @property
    def funcs(self) -> tuple[Func, ...]:
        return FUNCTION_SETS[self.function_set]

    @property
    def n_nodes(self) -> int:
        return self.rows * self.cols

    def input_range(self, col: int) -> tuple[int, int]:
        """Inclusive id range a gene of column ``col`` (``cols`` = output) may hold."""
        first = col - self.levels_back
        return (0 if first < 0 else first * self.rows + 1), col * self.rows


# The authors' CIFAR-10 bounds: 10..50 active nodes (exp_main.py of sg-nm/cgp-cnn),
# at most log2(32) - 2 = 3 active pools (their PyTorch code, sg-nm/cgp-cnn-PyTorch).
PAPER_BOUNDS = {"min_active": 10, "max_active": 50, "max_pool": 3}
PAPER_SPACE = CGPSpace(rows=5, cols=30, levels_back=10, function_set="ConvSet", **PAPER_BOUNDS)
PAPER_RES_SPACE = CGPSpace(rows=5, cols=30, levels_back=10, function_set="ResSet", **PAPER_BOUNDS)
PRESETS = {"small": CGPSpace(), "small_res": CGPSpace(function_set="ResSet"),
           "paper": PAPER_SPACE, "paper_res": PAPER_RES_SPACE}


@register_genome("cgp")
@dataclass(frozen=True)
class CGPGenome(Genome):
    """``nodes[id - 1]`` = (function id, input id, ...) of grid node ``id``;
    ``output`` = id feeding the output node."""
    nodes: tuple[tuple[int, ...], ...]
    output: int
    space: CGPSpace = CGPSpace()
    Space = CGPSpace

    def validate(self) -> None:
        sp = self.space
        if not isinstance(sp, CGPSpace):
            raise GenomeError("cgp", "space", sp, "must be a CGPSpace")
        sp.check()
        if not isinstance(self.nodes, tuple) or len(self.nodes) != sp.n_nodes:
            raise GenomeError("cgp", "nodes", self.nodes, f"need a tuple of rows*cols = {sp.n_nodes} node genes")
        nf = len(sp.funcs)
        for k, gene in enumerate(self.nodes):
            i = k + 1
            where = f"node {i} (column {k // sp.rows}, row {k % sp.rows})"
            if not isinstance(gene, tuple) or len(gene) != 1 + sp.n_inputs:
                raise GenomeError("cgp", where, gene, f"need a tuple (function, {sp.n_inputs} inputs)")
            _check_int(f"{where} function", gene[0], 0, nf - 1, f"{sp.function_set} has {nf} functions")
            lo, hi = sp.input_range(k // sp.rows)
            for slot, src in enumerate(gene[1:]):
                _check_int(f"{where} input {slot}", src, lo, hi, f"levels_back={sp.levels_back}")
        lo, hi = sp.input_range(sp.cols)
        _check_int("output", self.output, lo, hi, f"levels_back={sp.levels_back}")

    @classmethod
    def sample(cls, rng: np.random.Generator, space: CGPSpace | None = None) -> "CGPGenome":
        """Uniform genes (function and inputs) within the levels_back window."""
        sp = space or CGPSpace()
        sp.check()
        # The authors re-mutate the first parent at rate 1.0 until it lies within
        # the bounds, i.e. they redraw it: so do we (first draw kept when unbounded).
        for _ in range(SAMPLE_TRIES):
            genome = cls._draw(rng, sp)
            if genome.within_bounds():
                return genome
        raise GenomeError("cgp", "space bounds", _bounds(sp),
                          f"no random genome of {SAMPLE_TRIES} met them: loosen min_active/max_active/max_pool")

    @classmethod
    def _draw(cls, rng: np.random.Generator, sp: CGPSpace) -> "CGPGenome":
        nodes = []
        for k in range(sp.n_nodes):
            lo, hi = sp.input_range(k // sp.rows)
            ins = rng.integers(lo, hi + 1, size=sp.n_inputs)
            nodes.append((int(rng.integers(len(sp.funcs))), *(int(v) for v in ins)))
        lo, hi = sp.input_range(sp.cols)
        return cls(tuple(nodes), int(rng.integers(lo, hi + 1)), sp)

    # --- activity ------------------------------------------------------------------
    def used_inputs(self, i: int) -> tuple[int, ...]:
        """Input ids grid node ``i`` actually reads (first gene only for 1-input functions)."""
        gene = self.nodes[i - 1]
        return gene[1:2] if self.space.funcs[gene[0]].arity == 1 else gene[1:]

    def active_nodes(self) -> tuple[int, ...]:
        """Sorted ids of the grid nodes reachable backwards from the output gene."""
        seen: set[int] = set()
        stack = [self.output]
        while stack:
            i = stack.pop()
            if i and i not in seen:
                seen.add(i)
                stack.extend(self.used_inputs(i))
        return tuple(sorted(seen))

    def count_active(self) -> int:
        """Active nodes as the authors count them (``count_active_node``): the
        active grid nodes plus the output node."""
        return len(self.active_nodes()) + 1

    def count_pools(self) -> int:
        """Active pooling nodes (``max`` / ``avg``), the authors' ``check_pool``."""
        funcs = self.space.funcs
        return sum(funcs[self.nodes[i - 1][0]].op.endswith("_pool") for i in self.active_nodes())

    def within_bounds(self) -> bool:
        """Active-node count in [min_active, max_active] and pools <= max_pool
        (the space's bounds; None = no limit)."""
        sp, n = self.space, self.count_active()
        return (n >= sp.min_active and (sp.max_active is None or n <= sp.max_active)
                and (sp.max_pool is None or self.count_pools() <= sp.max_pool))

    def active_genes(self) -> list[tuple[int, int]]:
        """``(k, pos)`` of every gene that shapes the network: ``k`` = id - 1 (``k =
        n_nodes`` is the output gene), ``pos`` 0 = function, 1.. = input slot."""
        out = [(self.space.n_nodes, 0)]
        for i in self.active_nodes():
            out += [(i - 1, p) for p in range(1 + len(self.used_inputs(i)))]
        return out

    # --- string form ---------------------------------------------------------------
    def to_string(self) -> str:
        sp, funcs = self.space, self.space.funcs
        tok = [f"{funcs[g[0]].token}:{','.join(map(str, g[1:]))}" for g in self.nodes]
        cols = [" ".join(tok[c * sp.rows:(c + 1) * sp.rows]) for c in range(sp.cols)]
        return " / ".join(cols + [f"out:{self.output}"])

    @classmethod
    def from_string(cls, s: str, space: CGPSpace | None = None) -> "CGPGenome":
        sp = space or CGPSpace()
        sp.check()
        return cls(*_parse(s, sp), sp)

    # --- phenotype -------------------------------------------------------------------
    def decode(self) -> nx.DiGraph:
        """Active nodes as IR nodes ``n<id>`` (ids ascend along every edge, so the
        sorted active ids are a topological order)."""
        g = new_graph()
        ir = {0: "input"}
        for i in self.active_nodes():
            f = self.space.funcs[self.nodes[i - 1][0]]
            srcs: list[str] = []
            for slot, j in enumerate(self.used_inputs(i)):
                src = ir[j]
                if src in srcs:  # no parallel edges in a DiGraph: route the repeat via identity
                    src = add_node(g, f"n{i}_in{slot}", "identity", [src])
                srcs.append(src)
            ir[i] = add_node(g, f"n{i}", f.op, srcs, **dict(f.params))
        add_node(g, "output", "output", [ir[self.output]])
        return g


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _bounds(sp: CGPSpace) -> str:
    return f"min_active={sp.min_active} max_active={sp.max_active} max_pool={sp.max_pool}"


def _check_int(field: str, v: object, lo: int, hi: int, why: str) -> None:
    if not _is_int(v) or not lo <= v <= hi:
        raise GenomeError("cgp", field, v, f"must be an integer in {lo}..{hi} ({why})")


def _parse(s: str, sp: CGPSpace) -> tuple[tuple[tuple[int, ...], ...], int]:
    """String form -> (nodes, output); ranges are checked later by ``validate``."""
    if not isinstance(s, str):
        raise GenomeError("cgp", "genome", s, "must be a string like 'C32k3:0,0 ... / out:ID'")
    groups = [grp.split() for grp in s.split("/")]
    if len(groups) != sp.cols + 1:
        raise GenomeError("cgp", "columns", len(groups) - 1,
                          f"need cols={sp.cols} '/'-separated columns, then 'out:ID'")
    tokens = {f.token: n for n, f in enumerate(sp.funcs)}
    nodes = []
    for c, grp in enumerate(groups[:-1]):
        if len(grp) != sp.rows:
            raise GenomeError("cgp", f"column {c}", " ".join(grp), f"need rows={sp.rows} nodes")
        for r, token in enumerate(grp):
            where = f"node {c * sp.rows + r + 1} (column {c}, row {r})"
            fn, sep, ins = token.partition(":")
            if fn not in tokens:
                raise GenomeError("cgp", f"{where} function", fn,
                                  f"unknown in {sp.function_set} (known: {', '.join(tokens)})")
            parts = ins.split(",")
            if not sep or len(parts) != sp.n_inputs or not all(_DIGITS.fullmatch(p) for p in parts):
                raise GenomeError("cgp", f"{where} inputs", ins, f"need {sp.n_inputs} comma-separated ids")
            nodes.append((tokens[fn], *(int(p) for p in parts)))
    out = groups[-1]
    if len(out) != 1 or not out[0].startswith("out:") or not _DIGITS.fullmatch(out[0][4:]):
        raise GenomeError("cgp", "output", " ".join(out), "expected 'out:ID' after the last '/'")
    return tuple(nodes), int(out[0][4:])
