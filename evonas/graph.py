"""The DAG IR every genome decodes to: a ``networkx.DiGraph``.

Schema
------
* Node ids are strings of ``[A-Za-z0-9_]`` (they become module names, and weight
  inheritance matches tensors by node id, so decoders keep ids stable).
* Node attribute ``op``: a name in ``evonas.opspec.OPS``; ``params``: a dict of that
  op's parameters (missing keys take the op's defaults).
* Exactly one node has op ``input`` (no predecessors) and one has op ``output``
  (exactly one predecessor, no successors).
* Single-input ops (``arity == 1``) have exactly one predecessor; merges (``add``,
  ``concat``) have one or more.
* Edge attribute ``order`` (int, default 0) fixes the position of an input; inputs
  are taken sorted by ``(order, source id)``. ``concat`` inputs need distinct orders.
* The graph is acyclic and every node lies on a path from input to output.

The graph describes the network body including its stem; the compiler appends the
classifier head (global average pool + linear) sized from the number of classes.
"""
from __future__ import annotations

import hashlib
import json
import re

import networkx as nx

from .errors import GraphError, RegistryError
from .opspec import OPS

_ID = re.compile(r"^[A-Za-z0-9_]+$")


def new_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    g.add_node("input", op="input", params={})
    return g


def add_node(g: nx.DiGraph, node: str, op: str, inputs: list[str] | tuple = (), **params) -> str:
    """Add ``node`` computing ``op(params)`` of ``inputs`` (in that order)."""
    g.add_node(node, op=op, params={k: v for k, v in params.items() if v is not None})
    for i, src in enumerate(inputs):
        g.add_edge(src, node, order=i)
    return node


def ordered_inputs(g: nx.DiGraph, node: str) -> list[str]:
    return sorted(g.predecessors(node), key=lambda u: (g.edges[u, node].get("order", 0), u))


def io_nodes(g: nx.DiGraph) -> tuple[str, str]:
    ins = [n for n, d in g.nodes(data=True) if d.get("op") == "input"]
    outs = [n for n, d in g.nodes(data=True) if d.get("op") == "output"]
    if len(ins) != 1:
        raise GraphError("graph", "input nodes", ins, "need exactly one node with op 'input'")
    if len(outs) != 1:
        raise GraphError("graph", "output nodes", outs, "need exactly one node with op 'output'")
    return ins[0], outs[0]


def validate(g: nx.DiGraph) -> nx.DiGraph:
    """Check the schema above; raise GraphError naming the first violation."""
    if not isinstance(g, nx.DiGraph) or isinstance(g, nx.MultiDiGraph):
        raise GraphError("graph", "type", type(g).__name__, "must be a networkx.DiGraph")
    src, dst = io_nodes(g)
    for n, d in g.nodes(data=True):
        if not isinstance(n, str) or not _ID.match(n):
            raise GraphError("graph", "node id", n, "must match [A-Za-z0-9_]+")
        try:
            op = OPS.get(d.get("op"))
        except RegistryError:
            raise GraphError("graph", f"node {n}.op", d.get("op"),
                             f"unknown op (known: {', '.join(OPS.names())})") from None
        op.resolve(d.get("params"))
        deg = g.in_degree(n)
        if (op.arity == 0 and deg) or (op.arity == 1 and deg != 1) or (op.arity == -1 and deg < 1):
            need = {0: "no inputs", 1: "exactly one input", -1: "at least one input"}[op.arity]
            raise GraphError("graph", f"node {n} inputs", deg, f"op {op.name} needs {need}")
        if not op.commutative:
            orders = [g.edges[u, n].get("order", 0) for u in g.predecessors(n)]
            if len(set(orders)) != len(orders):
                raise GraphError("graph", f"node {n} input orders", sorted(orders),
                                 f"op {op.name} needs distinct 'order' on its input edges")
    if g.out_degree(dst):
        raise GraphError("graph", "output node", dst, "must have no successors")
    if not nx.is_directed_acyclic_graph(g):
        raise GraphError("graph", "cycle", nx.find_cycle(g), "the graph must be acyclic")
    live = (nx.descendants(g, src) | {src}) & (nx.ancestors(g, dst) | {dst})
    dead = sorted(set(g) - live)
    if dead:
        raise GraphError("graph", "dangling nodes", dead, "not on any input->output path")
    return g


def prune(g: nx.DiGraph) -> nx.DiGraph:
    """Copy of ``g`` without nodes that are off every input->output path."""
    src, dst = io_nodes(g)
    live = (nx.descendants(g, src) | {src}) & (nx.ancestors(g, dst) | {dst})
    return g.subgraph(live).copy()


def _label(g: nx.DiGraph, n: str) -> str:
    d = g.nodes[n]
    params = OPS.get(d["op"]).resolve(d.get("params"))
    return d["op"] + json.dumps(params, sort_keys=True)


def canonical(g: nx.DiGraph) -> nx.DiGraph:
    """Function-preserving normal form used for hashing: identity nodes and
    single-input merges without weights are spliced out (when that does not need a
    parallel edge). Node ids are kept; the result is a new graph."""
    g = prune(g)
    for n in list(nx.topological_sort(g)):
        d = g.nodes[n]
        single_merge = d["op"] in ("add", "concat") and g.in_degree(n) == 1 and not d["params"].get("weights")
        if d["op"] != "identity" and not single_merge:
            continue
        (u,) = list(g.predecessors(n))
        if any(g.has_edge(u, w) for w in g.successors(n)):
            continue  # splicing would need a parallel edge: keep the node
        for w in list(g.successors(n)):
            g.add_edge(u, w, order=g.edges[n, w].get("order", 0))
        g.remove_node(n)
    return g


def _h(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def arch_hash(g: nx.DiGraph) -> str:
    """Isomorphism-invariant hash (hex, 16 chars) of the canonical form.

    Each node gets a forward digest (its label and its inputs' digests: sorted for
    commutative ops, in order for concat) and a backward digest (its label and its
    consumers' digests with the input slot). The hash digests the sorted multiset of
    (forward, backward) pairs, so relabelling nodes never changes it. Distinct graphs
    could collide in principle; ``isomorphic`` confirms with an isomorphism check."""
    g = canonical(g)
    order = list(nx.topological_sort(g))
    labels = {n: _label(g, n) for n in g}
    fwd: dict[str, str] = {}
    for n in order:
        ins = [fwd[u] for u in ordered_inputs(g, n)]
        if OPS.get(g.nodes[n]["op"]).commutative:
            ins.sort()
        fwd[n] = _h(labels[n], *ins)
    bwd: dict[str, str] = {}
    for n in reversed(order):
        outs = []
        for w in g.successors(n):
            slot = "" if OPS.get(g.nodes[w]["op"]).commutative else str(ordered_inputs(g, w).index(n))
            outs.append(bwd[w] + slot)
        bwd[n] = _h(labels[n], *sorted(outs))
    return _h(*sorted(fwd[n] + bwd[n] for n in g))[:16]


def isomorphic(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    """Whether two DAGs are the same architecture: isomorphic with equal ops, and
    equal input order where an op is not commutative (confirms an ``arch_hash`` match)."""
    a, b = canonical(a), canonical(b)
    for g in (a, b):
        for n in g:
            g.nodes[n]["_label"] = _label(g, n)
        for u, w, d in g.edges(data=True):  # input order only matters for non-commutative ops
            d["_slot"] = 0 if OPS.get(g.nodes[w]["op"]).commutative else d.get("order", 0)
    return nx.is_isomorphic(a, b, node_match=lambda x, y: x["_label"] == y["_label"],
                            edge_match=lambda x, y: x["_slot"] == y["_slot"])
