"""Path-level tree cells (Cai et al., ICML 2018; BRIEF 2.3).

A cell is a tree. An internal node has an allocation scheme (``rep``: every child
gets the node input x; ``split``: the channels of x are divided into contiguous,
near-equal parts, one per child) and a merge scheme (``add``: the *mean* of the
children, i.e. ``add`` with fixed weights 1/m, so replication is function
preserving; ``cat``: channel concatenation in child order). Each edge to a child
carries a primitive op; a leaf returns its input. N(x) = merge_i(N_i(E_i(alloc(x, i)))).

String form (exact round trip, no spaces)::

    rep.add(sep3x3>leaf,identity>split.cat(identity>leaf,conv1x1>leaf));head=32

``node := 'leaf' | alloc '.' merge '(' op '>' node (',' op '>' node)* ')'``, then
``;head=<channels>`` (width of the last 1x1 conv before the classifier).

Channels: every node maps c channels to c channels. Child i of a node of width c
receives ``a_i`` channels (c for ``rep``, part i of c for ``split``) and must return
``b_i`` (c for ``add``, part i of c for ``cat``); its edge maps a_i -> b_i and the
child node has width b_i. Parameter-free edges (identity, pools) need a_i == b_i,
so they are allowed under ``rep.add``, ``split.cat`` or a single child only.

Macro skeleton (CPU sized): stem conv3x3-BN-ReLU (C channels); S stages of N cells,
stage s has width C*2^s, stages joined by a conv3x3-BN-ReLU of stride 2; a 1x1
conv-BN-ReLU of ``head`` channels ("mix"); the compiler adds pool + linear.
Every conv in the body is post-activation (conv -> BN -> ReLU), so every tensor
the cells see is non-negative: a conv initialised to identity (kernel = identity,
BN gamma = sqrt(var + eps), beta = mean) reproduces its input exactly after the
ReLU. That is what makes the Net2DeeperNet transformations exact (see
``evonas.genome.tree_ops`` for the mutation operators, ``evonas.transfer_tree`` for
their weight-transfer rule).

DAG node ids are derived from the tree path, so they are stable under mutation:
``{cell}_p{path}_e`` is the edge into the node at ``path`` (``s0c1_p0_1_e``),
``{cell}_p{path}_s{i}`` the channel slice for its child i, ``{cell}_p{path}_m`` its
merge; the root's path is empty (``s0c1_p_m``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import networkx as nx
import numpy as np

from ..errors import GenomeError
from ..graph import add_node, new_graph
from .base import Genome, register_genome

ALLOCS = ("rep", "split")
MERGES = ("add", "cat")
# genome op name -> (IR op, IR params); convs get C (output channels) at decode time
EDGE_OPS = {
    "conv1x1": ("conv_bn_relu", {"k": 1}),
    "identity": ("identity", {}),
    "sep3x3": ("sep_conv", {"k": 3}),
    "sep5x5": ("sep_conv", {"k": 5}),
    "sep7x7": ("sep_conv", {"k": 7}),
    "avg3x3": ("avg_pool", {"k": 3, "stride": 1}),
    "max3x3": ("max_pool", {"k": 3, "stride": 1}),
}
CONV_OPS = ("conv1x1", "sep3x3", "sep5x5", "sep7x7")
FREE_OPS = ("identity", "avg3x3", "max3x3")  # no weights: need equal in/out channels

Path = tuple[int, ...]


@dataclass(frozen=True)
class Node:
    """A tree node. A leaf has ``edges == ()`` and ``alloc == merge == ""``."""
    alloc: str = ""
    merge: str = ""
    edges: tuple[tuple[str, "Node"], ...] = ()

    @property
    def is_leaf(self) -> bool:
        return not self.edges

    def to_string(self) -> str:
        if self.is_leaf:
            return "leaf"
        inner = ",".join(f"{op}>{child.to_string()}" for op, child in self.edges)
        return f"{self.alloc}.{self.merge}({inner})"


LEAF = Node()


def parts(c: int, m: int) -> list[tuple[int, int]]:
    """Contiguous near-equal channel ranges ``[start, stop)`` dividing c among m."""
    out, start = [], 0
    for i in range(m):
        size = c // m + (1 if i < c % m else 0)
        out.append((start, start + size))
        start += size
    return out


def child_channels(node: Node, c: int) -> list[tuple[int, int]]:
    """``(a_i, b_i)`` = (input, output) channels of each edge of a node of width c."""
    m = len(node.edges)
    ps = [stop - start for start, stop in parts(c, m)]
    a = [c if node.alloc == "rep" or m == 1 else p for p in ps]
    b = [c if node.merge == "add" or m == 1 else p for p in ps]
    return list(zip(a, b))


def walk(node: Node, path: Path = (), c: int | None = None) -> Iterator[tuple[Path, Node, int | None]]:
    """Pre-order ``(path, node, width)``; width is None when ``c`` is None."""
    yield path, node, c
    chans = child_channels(node, c) if c is not None else [(None, None)] * len(node.edges)
    for i, (_, child) in enumerate(node.edges):
        yield from walk(child, path + (i,), chans[i][1])


def node_at(node: Node, path: Path) -> Node:
    for i in path:
        node = node.edges[i][1]
    return node


def replace_at(node: Node, path: Path, new: Node) -> Node:
    if not path:
        return new
    i, rest = path[0], path[1:]
    edges = list(node.edges)
    op, child = edges[i]
    edges[i] = (op, replace_at(child, rest, new))
    return Node(node.alloc, node.merge, tuple(edges))


def count_edges(node: Node) -> int:
    return sum(1 + count_edges(child) for _, child in node.edges)


# --- string form -----------------------------------------------------------------------

_TOKEN = re.compile(r"leaf|[a-z0-9]+\.[a-z0-9]+\(|[a-z0-9]+>|,|\)")


def _parse_tree(s: str) -> Node:
    pos = 0

    def fail(why: str):
        raise GenomeError("tree", "genome", s, f"{why} at character {pos}")

    def node() -> Node:
        nonlocal pos
        m = _TOKEN.match(s, pos)
        if not m:
            fail("expected 'leaf' or 'alloc.merge('")
        tok = m.group()
        pos = m.end()
        if tok == "leaf":
            return LEAF
        if not tok.endswith("("):
            fail(f"unexpected {tok!r}")
        alloc, merge = tok[:-1].split(".")
        edges = []
        while True:
            m = _TOKEN.match(s, pos)
            if not m or not m.group().endswith(">"):
                fail("expected 'op>'")
            pos = m.end()
            edges.append((m.group()[:-1], node()))
            if s.startswith(",", pos):
                pos += 1
            elif s.startswith(")", pos):
                pos += 1
                return Node(alloc, merge, tuple(edges))
            else:
                fail("expected ',' or ')'")

    tree = node()
    if pos != len(s):
        fail("trailing characters")
    return tree


@dataclass(frozen=True)
class TreeSpace:
    """``C``: stage-0 channels (1..1024); ``S``: stages (1..6); ``N``: cells per
    stage (1..16); ``max_edges``: edges per cell tree (1..64); ``max_children``:
    children per node (1..8); ``max_head``: largest ``head`` width (1..4096)."""
    C: int = 8
    S: int = 2
    N: int = 1
    max_edges: int = 8
    max_children: int = 3
    max_head: int = 128


_SPACE_LIMITS = {"C": 1024, "S": 6, "N": 16, "max_edges": 64, "max_children": 8, "max_head": 4096}


@register_genome("tree")
@dataclass(frozen=True)
class TreeGenome(Genome):
    tree: Node
    head: int = 16
    space: TreeSpace = TreeSpace()
    Space = TreeSpace

    def validate(self) -> None:
        sp = self.space
        for name, hi in _SPACE_LIMITS.items():
            v = getattr(sp, name)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= hi:
                raise GenomeError("tree", f"space.{name}", v, f"must be an integer in 1..{hi}")
        if not isinstance(self.head, int) or isinstance(self.head, bool) or not 1 <= self.head <= sp.max_head:
            raise GenomeError("tree", "head", self.head, f"must be an integer in 1..{sp.max_head} (space.max_head)")
        if not isinstance(self.tree, Node):
            raise GenomeError("tree", "tree", self.tree, "must be a tree Node")
        for path, node, c in walk(self.tree, (), sp.C):  # stage 0 is the narrowest
            _check_node(path, node, c, sp)
        if count_edges(self.tree) > sp.max_edges:
            raise GenomeError("tree", "edges", count_edges(self.tree),
                              f"a cell may have at most {sp.max_edges} edges (space.max_edges)")

    @classmethod
    def sample(cls, rng: np.random.Generator, space: TreeSpace | None = None) -> "TreeGenome":
        """Random small tree: depth <= 2, 1..min(3, max_children) children per node,
        leaves with probability 1/2 below the root; head = widest stage width."""
        sp = space or TreeSpace()
        budget = [sp.max_edges]
        tree = _sample_node(rng, sp, sp.C, 0, budget)
        head = min(sp.max_head, sp.C * 2 ** (sp.S - 1))
        return cls(tree, head, sp)

    def to_string(self) -> str:
        return f"{self.tree.to_string()};head={self.head}"

    @classmethod
    def from_string(cls, s: str, space: TreeSpace | None = None) -> "TreeGenome":
        if not isinstance(s, str):
            raise GenomeError("tree", "genome", s, "must be a string like rep.add(conv1x1>leaf);head=16")
        body, sep, head = s.partition(";head=")
        if not sep or not head.isdigit() or head != str(int(head)):
            raise GenomeError("tree", "genome", s, "must end with ';head=<positive integer>'")
        return cls(_parse_tree(body), int(head), space or TreeSpace())

    def stage_widths(self) -> list[int]:
        return [self.space.C * 2 ** s for s in range(self.space.S)]

    def cells(self) -> list[tuple[str, int]]:
        """``(cell prefix, width)`` of every cell of the skeleton."""
        return [(f"s{s}c{k}", w) for s, w in enumerate(self.stage_widths()) for k in range(self.space.N)]

    def decode(self) -> nx.DiGraph:
        g = new_graph()
        widths = self.stage_widths()
        x = add_node(g, "stem", "conv_bn_relu", ["input"], C=widths[0], k=3)
        for s, w in enumerate(widths):
            if s:
                x = add_node(g, f"r{s}", "conv_bn_relu", [x], C=w, k=3, stride=2)
            for k in range(self.space.N):
                x = _decode_node(g, f"s{s}c{k}", self.tree, (), x, w)
        x = add_node(g, "mix", "conv_bn_relu", [x], C=self.head, k=1)
        add_node(g, "output", "output", [x])
        return g


def node_id(cell: str, path: Path, role: str) -> str:
    """DAG id of a tree element: role ``e`` (edge into path), ``m`` (merge), ``s<i>``."""
    return f"{cell}_p{'_'.join(map(str, path))}_{role}"


_ID = re.compile(r"^(?P<cell>s\d+c\d+)_p(?P<path>\d+(?:_\d+)*)?_(?P<role>e|m|s\d+)$")


def parse_node_id(nid: str) -> tuple[str, Path, str] | None:
    """Inverse of ``node_id``; None for skeleton nodes (stem, r1, mix, ...)."""
    m = _ID.match(nid)
    if not m:
        return None
    path = tuple(int(p) for p in m["path"].split("_")) if m["path"] else ()
    return m["cell"], path, m["role"]


def _decode_node(g: nx.DiGraph, cell: str, node: Node, path: Path, x: str, c: int) -> str:
    if node.is_leaf:
        return x
    m = len(node.edges)
    ys = []
    for i, ((op, child), (start, stop), (a, b)) in enumerate(
            zip(node.edges, parts(c, m), child_channels(node, c))):
        inp = x
        if a != c:
            inp = add_node(g, node_id(cell, path, f"s{i}"), "slice", [x], start=start, stop=stop)
        ir_op, params = EDGE_OPS[op]
        if op in CONV_OPS:
            params = {**params, "C": b}
        e = add_node(g, node_id(cell, path + (i,), "e"), ir_op, [inp], **params)
        ys.append(_decode_node(g, cell, child, path + (i,), e, b))
    if m == 1:
        return ys[0]
    if node.merge == "add":
        return add_node(g, node_id(cell, path, "m"), "add", ys, weights=[1.0 / m] * m)
    return add_node(g, node_id(cell, path, "m"), "concat", ys)


def _check_node(path: Path, node: Node, c: int, sp: TreeSpace) -> None:
    where = f"node {'/'.join(map(str, path)) or 'root'}"
    if not isinstance(node, Node) or not isinstance(node.edges, tuple):
        raise GenomeError("tree", where, node, "must be a Node with a tuple of edges")
    if node.is_leaf:
        if node.alloc or node.merge:
            raise GenomeError("tree", f"{where}.alloc/merge", (node.alloc, node.merge), "a leaf has none")
        return
    if node.alloc not in ALLOCS:
        raise GenomeError("tree", f"{where}.alloc", node.alloc, f"must be one of {ALLOCS}")
    if node.merge not in MERGES:
        raise GenomeError("tree", f"{where}.merge", node.merge, f"must be one of {MERGES}")
    m = len(node.edges)
    if m > sp.max_children:
        raise GenomeError("tree", f"{where} children", m, f"at most {sp.max_children} (space.max_children)")
    if (node.alloc == "split" or node.merge == "cat") and m > c:
        raise GenomeError("tree", f"{where} children", m,
                          f"cannot divide {c} channels (width at stage 0) among {m} children")
    for i, ((op, child), (a, b)) in enumerate(zip(node.edges, child_channels(node, c))):
        if op not in EDGE_OPS:
            raise GenomeError("tree", f"{where} edge {i} op", op, f"unknown op (known: {', '.join(EDGE_OPS)})")
        if op in FREE_OPS and a != b:
            raise GenomeError("tree", f"{where} edge {i} op", op,
                              f"{node.alloc}.{node.merge} maps {a} -> {b} channels: needs a conv edge")
        if not isinstance(child, Node):
            raise GenomeError("tree", f"{where} edge {i} child", child, "must be a Node")


def edge_ok(node: Node, op: str) -> bool:
    """Whether ``op`` may sit on an edge of ``node`` (channel rule of the docstring)."""
    return op in CONV_OPS or len(node.edges) == 1 or (node.alloc, node.merge) in (("rep", "add"), ("split", "cat"))


def _sample_node(rng: np.random.Generator, sp: TreeSpace, c: int, depth: int, budget: list) -> Node:
    if budget[0] <= 0 or (depth > 0 and (depth >= 2 or rng.random() < 0.5)):
        return LEAF
    m = int(rng.integers(1, min(3, sp.max_children, budget[0]) + 1))
    schemes = [(a, mg) for a in ALLOCS for mg in MERGES if m == 1 or ((a == "rep" and mg == "add") or m <= c)]
    alloc, merge = schemes[int(rng.integers(len(schemes)))] if m > 1 else ("rep", "add")
    shell = Node(alloc, merge, tuple(("conv1x1", LEAF) for _ in range(m)))
    ops = [op for op in EDGE_OPS if edge_ok(shell, op)]
    budget[0] -= m
    edges = []
    for _, b in child_channels(shell, c):
        op = ops[int(rng.integers(len(ops)))]
        edges.append((op, _sample_node(rng, sp, b, depth + 1, budget)))
    return Node(alloc, merge, tuple(edges))

