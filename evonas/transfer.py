"""Weight-transfer rules (L3): the registry that ``inherit`` looks a rule up in,
the shape rule, and the Net2Net tensor helpers that rules are built from.

A rule belongs to one operator of one genome type and is registered here, not
with the operator, so the genome layer stays torch-free::

    @register_transfer("tree", "branch", "deepen")
    def rule(parent_genome, child_genome, parent_state, child_state, rng) -> dict[str, Tensor]

``parent_state`` is the parent's trained state dict, ``child_state`` the child's
freshly initialised state dict (read-only: it tells the rule every key and shape);
``rng`` a ``numpy.random.Generator`` (e.g. for the Net2WiderNet mapping). The rule
returns the child entries it inherits; every other key keeps its fresh value. A
rule learns where the transformation happened by comparing the two genomes (the
child genome alone is enough to rebuild the child, the pair is enough to find the
change), so it also works after a restart, from genomes read back from disk.
Operators without a rule inherit by shape (``evonas.inherit``).

The Net2Net helpers work on the local state of one ``evonas.ops`` module (keys
such as ``0.weight``, ``1.running_var``) and are shared by genome types.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch
from torch import Tensor

from .errors import ConfigError
from .registry import Registry

BN_EPS = 1e-5  # nn.BatchNorm2d default, used by every BN of evonas.ops
BN_KEYS = ("weight", "bias", "running_mean", "running_var")

TransferRule = Callable[..., dict]
TRANSFERS: Registry[TransferRule] = Registry("transfer rule")  # key: "<genome type>/<operator>"


def register_transfer(genome_type: str, *operator_names: str):
    """Decorator: ``rule`` is the weight-transfer rule of each named operator of
    ``genome_type``. A second rule for the same operator raises RegistryError."""
    def wrap(rule: TransferRule) -> TransferRule:
        for name in operator_names:
            TRANSFERS.register(f"{genome_type}/{name}", rule)
        return rule
    return wrap


def transfer_rule(genome_type: str, operator_name: str) -> TransferRule | None:
    """The registered rule of an operator, None if it has none (inherit by shape)."""
    key = f"{genome_type}/{operator_name}"
    return TRANSFERS.get(key) if key in TRANSFERS else None


def shape_transfer(parent_state: Mapping[str, Tensor], child_state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Parent tensors whose key and shape exist unchanged in the child (copies)."""
    return {k: parent_state[k].detach().clone() for k, v in child_state.items()
            if k in parent_state and parent_state[k].shape == v.shape and parent_state[k].dtype == v.dtype}



# --- Net2Net helpers on one module's local state -----------------------------------------
# conv_bn_relu: 0 = conv, 1 = BN; sep_conv: 0 = depthwise, 1 = pointwise, 2 = BN.

def identity_bn(fresh: Mapping[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """BN that is the identity in eval mode on its fresh running statistics:
    gamma = sqrt(var + eps), beta = mean (Net2DeeperNet)."""
    mean, var = fresh[f"{prefix}running_mean"], fresh[f"{prefix}running_var"]
    return {f"{prefix}weight": torch.sqrt(var + BN_EPS), f"{prefix}bias": mean.clone(),
            f"{prefix}running_mean": mean.clone(), f"{prefix}running_var": var.clone(),
            f"{prefix}num_batches_tracked": fresh[f"{prefix}num_batches_tracked"].clone()}


def copy_bn(old: Mapping[str, Tensor], src: str, dst: str, index: Tensor | None = None) -> dict[str, Tensor]:
    """BN entries ``src*`` -> ``dst*``, optionally gathered along channel ``index``."""
    out = {f"{dst}{k}": (old[f"{src}{k}"] if index is None else old[f"{src}{k}"][index]).clone() for k in BN_KEYS}
    out[f"{dst}num_batches_tracked"] = old[f"{src}num_batches_tracked"].clone()
    return out


def identity_kernel(c: int, k: int, depthwise: bool) -> Tensor:
    """Conv kernel that maps c channels to themselves: (c, 1 or c, k, k)."""
    w = torch.zeros(c, 1 if depthwise else c, k, k)
    idx = torch.arange(c)
    w[idx, 0 if depthwise else idx, k // 2, k // 2] = 1.0
    return w


def resize_kernel(w: Tensor, k: int) -> Tensor:
    """Zero-pad (exact) or centre-crop (approximate) a kernel to k x k."""
    k0 = w.shape[-1]
    if k >= k0:
        p = (k - k0) // 2
        return torch.nn.functional.pad(w, (p, p, p, p))
    p = (k0 - k) // 2
    return w[..., p:p + k, p:p + k].clone()


def net2wider(conv_w: Tensor, bn: Mapping[str, Tensor], next_w: Tensor, width: int,
              rng: np.random.Generator) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """Net2WiderNet of a conv -> BN -> ReLU layer with h units feeding ``next_w``
    (input units on dim 1) to ``width`` >= h units. The mapping g keeps unit j for
    j < h and copies a random unit for the new ones; incoming weights and BN
    statistics are copied along g, outgoing weights divided by the copy count.
    ``bn`` has keys ``weight``/``bias``/``running_mean``/``running_var``."""
    h = conv_w.shape[0]
    if width < h:
        raise ConfigError("net2wider", "width", width, f"must be >= the current {h} units")
    g = torch.as_tensor(np.concatenate([np.arange(h), rng.integers(0, h, width - h)]), dtype=torch.long)
    counts = torch.bincount(g, minlength=h).to(next_w.dtype)
    new_bn = {k: bn[k][g].clone() for k in BN_KEYS}
    return conv_w[g].clone(), new_bn, (next_w[:, g] / counts[g]).clone()
