"""Path-level transformations of tree cells as mutation operators, and their
weight-transfer rule ``tree_transfer`` (signature: ``evonas.inherit``).

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
import torch
from torch import Tensor

from ..inherit import copy_bn, identity_bn, identity_kernel, net2wider, resize_kernel, shape_transfer
from ..operators import register_mutation
from .tree import (CONV_OPS, EDGE_OPS, FREE_OPS, LEAF, Node, Path, TreeGenome, count_edges,
                   edge_ok, node_at, node_id, parse_node_id, parts, replace_at, walk)

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
    from ..errors import GenomeError
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


# --- the transfer rule -------------------------------------------------------------------

def _diff(p: Node, c: Node, path: Path) -> list[tuple]:
    """Local transformations turning tree ``p`` into ``c`` (pre-order)."""
    if p == c or p.is_leaf or c.is_leaf:
        return []  # unchanged, or a new / removed subtree: nothing beyond shape
    if len(p.edges) == 1 and len(c.edges) > 1 and all(e == p.edges[0] for e in c.edges):
        op, t = p.edges[0]
        if (c.alloc, c.merge) == ("rep", "add"):
            return [("copy", path + (0,), path + (i,)) for i in range(1, len(c.edges))]
        if (c.alloc, c.merge) == ("rep", "cat") and op in CONV_OPS and t.is_leaf:
            return [("filters", path, op, len(c.edges))]
        return []
    events: list[tuple] = []
    if len(p.edges) == len(c.edges):
        for i, ((po, pt), (co, ct)) in enumerate(zip(p.edges, c.edges)):
            if po != co:
                events.append(("op", path + (i,), po, co))
            events += _diff(pt, ct, path + (i,))
    elif len(c.edges) == len(p.edges) - 1:
        j = next((j for j in range(len(p.edges)) if c.edges == p.edges[:j] + p.edges[j + 1:]), None)
        if j is not None:
            events += [("copy", path + (i + 1,), path + (i,)) for i in range(j, len(c.edges))]
    return events


def _local(state: dict, nid: str) -> dict[str, Tensor]:
    pre = f"nodes.{nid}."
    return {k[len(pre):]: v for k, v in state.items() if k.startswith(pre)}


def _put(out: dict, fresh: dict, nid: str, local: dict[str, Tensor]) -> None:
    """Store ``local`` entries of node ``nid`` where their shapes match the child."""
    for k, v in local.items():
        key = f"nodes.{nid}.{k}"
        if key in fresh and fresh[key].shape == v.shape:
            out[key] = v.clone()


def convert_edge(old_op: str, new_op: str, old: dict[str, Tensor], fresh: dict[str, Tensor]) -> dict[str, Tensor]:
    """Local state of a ``new_op`` edge derived from an ``old_op`` edge's state.
    Exact for identity -> conv (identity init), conv1x1 -> sep and sep k -> sep k' > k."""
    if new_op in FREE_OPS:
        return {}
    if new_op == "conv1x1":
        if old_op in FREE_OPS:
            return {"0.weight": identity_kernel(fresh["0.weight"].shape[0], 1, False), **identity_bn(fresh, "1.")}
        k = old["0.weight"].shape[-1]
        w = old["1.weight"] * old["0.weight"][:, 0, k // 2, k // 2][None, :, None, None]
        return {"0.weight": w, **copy_bn(old, "2.", "1.")}
    k = fresh["0.weight"].shape[-1]
    c = fresh["0.weight"].shape[0]
    if old_op in FREE_OPS:
        return {"0.weight": identity_kernel(c, k, True), "1.weight": identity_kernel(c, 1, False),
                **identity_bn(fresh, "2.")}
    if old_op == "conv1x1":
        return {"0.weight": identity_kernel(c, k, True), "1.weight": old["0.weight"].clone(), **copy_bn(old, "1.", "2.")}
    return {"0.weight": resize_kernel(old["0.weight"], k), "1.weight": old["1.weight"].clone(), **copy_bn(old, "2.", "2.")}


def _split_filters(op: str, old: dict[str, Tensor], start: int, stop: int) -> dict[str, Tensor]:
    idx = torch.arange(start, stop)
    if op == "conv1x1":
        return {"0.weight": old["0.weight"][idx], **copy_bn(old, "1.", "1.", idx)}
    return {"0.weight": old["0.weight"].clone(), "1.weight": old["1.weight"][idx], **copy_bn(old, "2.", "2.", idx)}


def _apply(ev: tuple, cell: str, parent_state: dict, fresh: dict, out: dict) -> None:
    kind = ev[0]
    if kind == "copy":
        src, dst = ev[1], ev[2]
        for key in fresh:
            nid, _, rest = key[len("nodes."):].partition(".")
            parsed = parse_node_id(nid) if key.startswith("nodes.") else None
            if not parsed or parsed[0] != cell or parsed[1][:len(dst)] != dst:
                continue
            skey = f"nodes.{node_id(cell, src + parsed[1][len(dst):], parsed[2])}.{rest}"
            if skey in parent_state and parent_state[skey].shape == fresh[key].shape:
                out[key] = parent_state[skey].clone()
    elif kind == "filters":
        path, op, m = ev[1], ev[2], ev[3]
        old = _local(parent_state, node_id(cell, path + (0,), "e"))
        width = old["0.weight"].shape[0] if op == "conv1x1" else old["1.weight"].shape[0]
        for i, (start, stop) in enumerate(parts(width, m)):
            _put(out, fresh, node_id(cell, path + (i,), "e"), _split_filters(op, old, start, stop))
    elif kind == "op":
        nid = node_id(cell, ev[1], "e")
        local = convert_edge(ev[2], ev[3], _local(parent_state, nid), _local(fresh, nid))
        _put(out, fresh, nid, local)


def tree_transfer(parent: TreeGenome, child: TreeGenome, parent_state: dict, child_state: dict,
                  rng: np.random.Generator) -> dict[str, Tensor]:
    """Shape rule, then the path-level / Net2Net fixes of every change found by
    diffing the parent and child trees (applied to every cell of the skeleton)."""
    out = shape_transfer(parent_state, child_state)
    if not isinstance(parent, TreeGenome) or parent.space != child.space:
        return out  # another skeleton: only unchanged keys and shapes carry over
    events = _diff(parent.tree, child.tree, ())
    for cell, _ in child.cells():
        for ev in events:
            _apply(ev, cell, parent_state, child_state, out)
    if child.head > parent.head and "head.weight" in parent_state \
            and parent_state["head.weight"].shape[0] == child_state["head.weight"].shape[0]:
        old = _local(parent_state, "mix")
        conv, bn, nxt = net2wider(old["0.weight"], {k: old[f"1.{k}"] for k in ("weight", "bias", "running_mean", "running_var")},
                                  parent_state["head.weight"], child.head, rng)
        local = {"0.weight": conv, **{f"1.{k}": v for k, v in bn.items()},
                 "1.num_batches_tracked": old["1.num_batches_tracked"].clone()}
        _put(out, child_state, "mix", local)
        out["head.weight"], out["head.bias"] = nxt, parent_state["head.bias"].clone()
    return out


# --- registration ---------------------------------------------------------------------------

def _register(name: str, doc: str, weight: float = 1.0):
    def fn(genome: TreeGenome, rng: np.random.Generator) -> TreeGenome:
        return _run(genome, rng, name)
    fn.__name__, fn.__doc__ = f"mut_{name}", doc
    register_mutation("tree", name=name, transfer=tree_transfer, weight=weight)(fn)
    return fn


mut_branch = _register("branch", "Single edge -> two-branch motif (exact).")
mut_deepen = _register("deepen", "Leaf -> rep.add(identity>leaf) (exact).")
mut_identity_to_conv = _register("identity_to_conv", "Identity edge -> identity-initialised conv (exact).")
mut_widen = _register("widen", "Net2WiderNet on the head conv (exact).", weight=0.5)
mut_swap_op = _register("swap_op", "Edge op -> another allowed op (inherits what it can).")
mut_remove_edge = _register("remove_edge", "Drop one branch of a multi-branch node (shrinks the tree).", weight=0.5)

EXACT = ("branch", "deepen", "identity_to_conv", "widen")
