"""Path-level transformations of tree cells as mutation operators (pure genome ->
genome; their weight-transfer rule ``tree_transfer`` is ``evonas.transfer_tree``).

Exact (function-preserving, checked by tests/test_inherit.py):

* ``branch``: a node with a single edge ``op>T`` becomes a two-branch motif:
  ``rep.add`` of two copies (mean merge = weights 0.5/0.5; the copy inherits T's
  weights), ``rep.cat`` for a conv edge to a leaf (filters divided between the
  branches), ``split.cat`` for a parameter-free edge to a leaf.
* ``deepen``: a leaf becomes ``rep.add(identity>leaf)`` (no new weights).
* ``identity_to_conv``: an identity edge becomes conv1x1 / sep3x3 / sep5x5 / sep7x7
  initialised to identity (Net2DeeperNet).
* ``widen``: the ``head`` 1x1 conv gets more units (Net2WiderNet, mapping from rng).

Not exact, inheriting what they can: ``swap_op`` (any edge op to another allowed
one; pooling has no weights to fit; conv1x1 -> sep and sep k -> larger k are still
exact, sep -> conv1x1 folds the depthwise centre tap) and ``remove_edge`` (drops a
branch; later siblings keep their weights where their shapes allow).

When an operator applies nowhere in a genome, the exact ones fall back to another
exact one (deepen, identity_to_conv, branch, widen), then to swap_op; the transfer
rule diffs the trees, so the inherited weights always follow what changed.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import GenomeError
from ..operators import register_mutation
from .tree import (CONV_OPS, EDGE_OPS, LEAF, Node, Path, TreeGenome, count_edges, edge_ok, node_at,
                   replace_at, walk)

Candidate = Callable[[], TreeGenome]


def _with(g: TreeGenome, tree: Node | None = None, head: int | None = None) -> TreeGenome:
    return TreeGenome(tree if tree is not None else g.tree, head if head is not None else g.head, g.space)


# --- candidates of each transformation -------------------------------------------------

def _deepen(g: TreeGenome) -> list[Candidate]:
    if count_edges(g.tree) >= g.space.max_edges:
        return []
    new = Node("rep", "add", (("identity", LEAF),))
    return [lambda p=p: _with(g, replace_at(g.tree, p, new)) for p, n, _ in walk(g.tree) if n.is_leaf]


def _branch(g: TreeGenome) -> list[Candidate]:
    out = []
    if g.space.max_children < 2:
        return out
    for path, node, c in walk(g.tree, (), g.space.C):
        if len(node.edges) != 1:
            continue
        op, child = node.edges[0]
        if count_edges(g.tree) + 1 + count_edges(child) <= g.space.max_edges:
            out.append(lambda p=path, e=node.edges[0]: _with(g, replace_at(g.tree, p, Node("rep", "add", (e, e)))))
        if child.is_leaf and c >= 2 and count_edges(g.tree) < g.space.max_edges:
            scheme = ("rep", "cat") if op in CONV_OPS else ("split", "cat")
            out.append(lambda p=path, e=node.edges[0], s=scheme: _with(g, replace_at(g.tree, p, Node(*s, (e, e)))))
    return out


def _edges(g: TreeGenome) -> list[tuple[Path, Node, int, str]]:
    """(path of the parent node, parent node, edge index, op) of every edge."""
    return [(p, n, i, op) for p, n, _ in walk(g.tree) for i, (op, _) in enumerate(n.edges)]


def _set_op(g: TreeGenome, path: Path, i: int, op: str) -> TreeGenome:
    node = node_at(g.tree, path)
    edges = list(node.edges)
    edges[i] = (op, edges[i][1])
    return _with(g, replace_at(g.tree, path, Node(node.alloc, node.merge, tuple(edges))))


def _identity_to_conv(g: TreeGenome, rng: np.random.Generator) -> list[Candidate]:
    return [lambda p=p, i=i: _set_op(g, p, i, CONV_OPS[int(rng.integers(len(CONV_OPS)))])
            for p, n, i, op in _edges(g) if op == "identity"]


def _widen(g: TreeGenome, rng: np.random.Generator) -> list[Candidate]:
    if g.head >= g.space.max_head:
        return []
    return [lambda: _with(g, head=min(g.space.max_head, g.head + int(rng.integers(1, g.head + 1))))]


def _swap_op(g: TreeGenome, rng: np.random.Generator) -> list[Candidate]:
    out = []
    for p, n, i, op in _edges(g):
        choices = [o for o in EDGE_OPS if o != op and edge_ok(n, o)]
        if choices:
            out.append(lambda p=p, i=i, ch=choices: _set_op(g, p, i, ch[int(rng.integers(len(ch)))]))
    return out


def _remove_edge(g: TreeGenome, rng: np.random.Generator) -> list[Candidate]:
    out = []
    for path, node, _ in walk(g.tree):
        if len(node.edges) >= 2:
            def cand(p=path, n=node):
                j = int(rng.integers(len(n.edges)))
                edges = n.edges[:j] + n.edges[j + 1:]
                return _with(g, replace_at(g.tree, p, Node(n.alloc, n.merge, edges)))
            out.append(cand)
    return out


def _valid(cands: list[Candidate], rng: np.random.Generator) -> TreeGenome | None:
    for k in rng.permutation(len(cands)):
        try:
            return cands[int(k)]()
        except GenomeError:  # e.g. a channel rule at a narrow node: try another site
            continue
    return None


def _run(g: TreeGenome, rng: np.random.Generator, first: str) -> TreeGenome:
    makers = {"deepen": lambda: _deepen(g), "identity_to_conv": lambda: _identity_to_conv(g, rng),
              "branch": lambda: _branch(g), "widen": lambda: _widen(g, rng),
              "swap_op": lambda: _swap_op(g, rng), "remove_edge": lambda: _remove_edge(g, rng)}
    order = [first] + [n for n in ("deepen", "identity_to_conv", "branch", "widen", "swap_op") if n != first]
    for name in order:
        child = _valid(makers[name](), rng)
        if child is not None:
            return child
    return g  # nothing applies (a 1-edge, max-size, max-head genome with a fixed op)


# --- registration ---------------------------------------------------------------------------

def _register(name: str, doc: str, weight: float = 1.0):
    def fn(genome: TreeGenome, rng: np.random.Generator) -> TreeGenome:
        return _run(genome, rng, name)
    fn.__name__, fn.__doc__ = f"mut_{name}", doc
    register_mutation("tree", name=name, weight=weight)(fn)
    return fn


mut_branch = _register("branch", "Single edge -> two-branch motif (exact).")
mut_deepen = _register("deepen", "Leaf -> rep.add(identity>leaf) (exact).")
mut_identity_to_conv = _register("identity_to_conv", "Identity edge -> identity-initialised conv (exact).")
mut_widen = _register("widen", "Net2WiderNet on the head conv (exact).", weight=0.5)
mut_swap_op = _register("swap_op", "Edge op -> another allowed op (inherits what it can).")
mut_remove_edge = _register("remove_edge", "Drop one branch of a multi-branch node (shrinks the tree).", weight=0.5)

EXACT = ("branch", "deepen", "identity_to_conv", "widen")
