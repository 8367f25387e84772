"""The weight-transfer rule of the tree genome's operators (L3, torch): diff the
parent and child trees, then apply the path-level / Net2Net fix of every change
(the transformations themselves are ``evonas.genome.tree_ops``; exactness is
checked by tests/test_inherit.py).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .genome.tree import CONV_OPS, FREE_OPS, Node, Path, TreeGenome, node_id, parse_node_id, parts
from .transfer import (copy_bn, identity_bn, identity_kernel, net2wider, register_transfer, resize_kernel,
                       shape_transfer)

TREE_OPERATORS = ("branch", "deepen", "identity_to_conv", "widen", "swap_op", "remove_edge")


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


@register_transfer("tree", *TREE_OPERATORS)
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
