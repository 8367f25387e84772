"""Weight inheritance: a child starts from its parent's trained state.

Modes of ``inherit``:

* ``exact``: the operator's weight-transfer rule (function-preserving where the
  operator is, e.g. the tree genome's Net2Net / path-level transformations);
  an operator that declares no rule falls back to ``shape`` plus *kernel growth*:
  a node whose module structure is unchanged but whose conv kernel grew (e.g. an
  NB201 edge nor_conv_1x1 -> nor_conv_3x3, a CGP ConvSet 3x3 -> 5x5) gets its
  parent's kernel zero-padded centrally, which computes the same function (odd
  kernels, 'same' padding, same stride) -- so that node is not re-initialised.
* ``shape``: copy every tensor whose state-dict key (``nodes.<node id>.<param>``,
  ``head.*``) and shape are unchanged (the Large-Scale Evolution rule). Default for
  genetic-cnn, cgp, nb201 and user operators without a rule.
* ``none``: keep the child's fresh initialisation.

BN running statistics and ``num_batches_tracked`` are state-dict entries, so all
modes carry them along with the weights.

Transfer rules are registered per operator in ``evonas.transfer`` (its docstring
gives the signature); the built-in ones of the tree genome are in
``evonas.transfer_tree``, imported here so they are always registered.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from . import transfer_tree  # noqa: F401  (registers the tree genome's transfer rules)
from .errors import ConfigError
from .evaluate.base import INHERIT
from .transfer import (BN_EPS, BN_KEYS, TRANSFERS, TransferRule, copy_bn, identity_bn,  # noqa: F401  (re-exported)
                       identity_kernel, net2wider, register_transfer, resize_kernel, shape_transfer,
                       transfer_rule)

MODES = INHERIT


@dataclass
class InheritReport:
    """What happened to each child state-dict key (lists of keys, sorted)."""
    mode: str
    rule: str  # "shape", "none" or the transfer rule's name
    copied: list[str] = field(default_factory=list)  # bit-identical to the parent's key
    transformed: list[str] = field(default_factory=list)  # derived from parent tensors
    fresh: list[str] = field(default_factory=list)  # child's own initialisation

    def summary(self) -> str:
        return (f"{self.mode}/{self.rule}: {len(self.copied)} copied, "
                f"{len(self.transformed)} transformed, {len(self.fresh)} fresh")


def kernel_growth_transfer(parent_state: Mapping[str, Tensor], child_state: Mapping[str, Tensor],
                           child_module: nn.Module) -> dict[str, Tensor]:
    """Conv weights of nodes (``nodes.<id>``) that kept their state-dict keys and every
    other shape, but whose odd k x k kernel grew to k' x k' (same channels): the
    parent's kernel zero-padded centrally. Exact only for a ``Conv2d`` with padding
    (k-1)//2 and no dilation, which the child's module is checked to be."""
    def by_node(state):
        nodes: dict[str, dict[str, tuple]] = {}
        for k, v in state.items():
            parts = k.split(".")
            if parts[0] == "nodes" and len(parts) > 2:
                nodes.setdefault(".".join(parts[:2]), {})[k] = tuple(v.shape)
        return nodes
    old, new, out = by_node(parent_state), by_node(child_state), {}
    for node, shapes in new.items():
        if set(old.get(node, {})) != set(shapes):
            continue  # another op at this node (or a new node): nothing to pad
        grown = [k for k in shapes if shapes[k] != old[node][k]]
        if grown and all(_grown_conv(k, old[node][k], shapes[k], child_module) for k in grown):
            for k in grown:
                out[k] = resize_kernel(parent_state[k].detach().clone(), shapes[k][-1])
    return out


def _grown_conv(key: str, before: tuple, after: tuple, module: nn.Module) -> bool:
    if len(before) != 4 or before[:2] != after[:2] or before[2] != before[3] or after[2] != after[3]:
        return False
    k0, k = before[-1], after[-1]
    if k <= k0 or k0 % 2 == 0 or k % 2 == 0 or not key.endswith(".weight"):
        return False
    try:
        conv = module.get_submodule(key[:-len(".weight")])
    except AttributeError:
        return False
    return (isinstance(conv, nn.Conv2d) and conv.padding == ((k - 1) // 2,) * 2
            and conv.dilation == (1, 1) and conv.padding_mode == "zeros")


def _resolve_rule(operator, child_genome) -> TransferRule | None:
    """The rule registered in ``evonas.transfer`` for the operator (an
    ``evonas.operators.Operator`` or its name) that made the child."""
    if operator is None:
        return None
    name = operator if isinstance(operator, str) else getattr(operator, "name", None)
    return transfer_rule(child_genome.type_name, name) if isinstance(name, str) else None


def inherit(parent_genome, parent_state: Mapping[str, Tensor], child_genome, child_module: nn.Module,
            mode: str = "exact", operator=None, rng: np.random.Generator | None = None) -> InheritReport:
    """Load inherited tensors into ``child_module`` (in place) and report.

    ``operator``: the ``evonas.operators.Operator`` (or its registered name) that
    made the child; ``rng``: numpy Generator for stochastic rules (default seed 0).
    """
    if mode not in MODES:
        raise ConfigError("inherit", "mode", mode, f"must be one of {MODES}")
    fresh_state = {k: v.detach().clone() for k, v in child_module.state_dict().items()}
    rule = _resolve_rule(operator, child_genome) if mode == "exact" else None
    rng = rng if rng is not None else np.random.default_rng(0)
    if mode == "none":
        got, name = {}, "none"
    elif rule is None:
        got, name = shape_transfer(parent_state, fresh_state), "shape"
        grown = kernel_growth_transfer(parent_state, fresh_state, child_module) if mode == "exact" else {}
        if grown:
            got.update(grown)
            name = "shape+kernel_growth"
    else:
        got = rule(parent_genome, child_genome, parent_state, fresh_state, rng)
        name = getattr(rule, "__name__", "rule")
    report = InheritReport(mode, name)
    merged = dict(fresh_state)
    for key, fresh in fresh_state.items():
        if key not in got:
            report.fresh.append(key)
            continue
        value = got[key]
        if value.shape != fresh.shape:
            raise ConfigError("inherit", f"rule {name} key {key}", tuple(value.shape),
                              f"child expects shape {tuple(fresh.shape)}")
        merged[key] = value.to(fresh.dtype)
        same = key in parent_state and parent_state[key].shape == value.shape and torch.equal(parent_state[key], value)
        (report.copied if same else report.transformed).append(key)
    child_module.load_state_dict(merged)
    return report


def check_parent_state(parent_genome, parent_state: Mapping[str, Tensor], input_shape, num_classes: int,
                       path: str = "parent weights") -> None:
    """The parent's saved tensors are exactly those of its recorded network (same
    keys, shapes, dtypes): a file of another network, or with larger tensors, would
    otherwise be sliced into the child by the rules. ConfigError naming ``path``.
    The parent is built on the meta device: shapes only, no memory, no init."""
    from .compile import compile_graph
    with torch.device("meta"):
        expected = compile_graph(parent_genome.decode(), tuple(input_shape), int(num_classes)).state_dict()
    missing = sorted(set(expected) - set(parent_state))
    extra = sorted(set(parent_state) - set(expected))
    where = f"parent weights {path}"  # the path in full: the value field is shortened
    if missing or extra:
        raise ConfigError(where, "tensors", f"{len(parent_state)} tensors",
                          f"do not match the parent's network (missing {missing[:3]}, unexpected {extra[:3]})")
    for k, v in expected.items():
        got = parent_state[k]
        if tuple(got.shape) != tuple(v.shape) or got.dtype != v.dtype:
            raise ConfigError(where, k, f"{tuple(got.shape)} {got.dtype}",
                              f"the parent's network has {tuple(v.shape)} {v.dtype}")
