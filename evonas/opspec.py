"""Primitive ops of the DAG IR, torch-free: name -> arity, params, shape rule and
analytic cost. ``evonas.graph`` validates against this table; the torch module
builders of the same names live in ``evonas.ops`` (L3).

Shapes are ``(C, H, W)`` tuples of one sample. Every op with a stride > 1 keeps
stride 1 on a map whose side is already 1 (the CGP rule "pooling on a 1x1 map is
skipped", applied to every reduction), so any genome compiles on any input size.

Cost: ``params`` counts trainable scalars exactly as the built module has them;
``macs`` counts multiply-accumulates of convolutions and linear layers (the NAS
convention for "FLOPs"); pools, BN, activations and merges are not counted.

Merge rule (``add`` / ``concat``), documented once here and used by every genome:
inputs whose spatial size is larger than the smallest input are max-pooled down to
it (kernel = stride = the integer ratio, adaptive max-pool if not an integer);
``add`` zero-pads inputs with fewer channels up to the largest channel count;
``concat`` stacks channels in input order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .errors import GraphError
from .registry import Registry

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class Op:
    """One primitive. ``arity`` is ``1`` (exactly one input), ``0`` (the input node)
    or ``-1`` (one or more inputs: merges). ``defaults`` lists every allowed param."""

    name: str
    arity: int
    defaults: dict[str, Any]
    shape: Callable[[Sequence[Shape], dict], Shape]
    params: Callable[[Sequence[Shape], dict], int]
    macs: Callable[[Sequence[Shape], Shape, dict], int]
    commutative: bool = True  # whether input order is irrelevant (hashing)
    weighted: bool = False  # has trainable tensors
    extra: dict = field(default_factory=dict)

    def resolve(self, params: dict | None) -> dict:
        """Defaults overlaid with ``params``; unknown keys raise GraphError."""
        params = dict(params or {})
        for key in params:
            if key not in self.defaults:
                raise GraphError(f"op {self.name}", "params", key,
                                 f"unknown parameter (allowed: {sorted(self.defaults)})")
        return {**self.defaults, **params}


OPS: Registry[Op] = Registry("op")


def register_op(op: Op) -> Op:
    return OPS.register(op.name, op)


def reduce(side: int, stride: int) -> int:
    """Stride actually applied on a map side (1 on a 1-pixel side)."""
    return 1 if side <= 1 else stride


def spatial(shape: Shape, k: int, stride: int) -> tuple[int, int]:
    _, h, w = shape
    s = reduce(min(h, w), stride)
    pad = (k - 1) // 2
    return (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1


def out_channels(shape: Shape, p: dict) -> int:
    return p["C"] if p.get("C") else shape[0]


def conv_shape(ins, p):
    return (out_channels(ins[0], p), *spatial(ins[0], p["k"], p["stride"]))


def _conv_macs(ins, out, p):
    return ins[0][0] * out[0] * p["k"] ** 2 * out[1] * out[2]


def stride(ins, p) -> int:
    """The stride a unary op really applies to its input (see ``reduce``)."""
    return reduce(min(ins[0][1:]), p["stride"])


def _none(ins, p):
    return 0


def _no_macs(ins, out, p):
    return 0


_CONV = {"C": None, "k": 3, "stride": 1}


# --- convolution blocks -----------------------------------------------------------

def _conv_block(name: str, order: str) -> Op:
    """``order``: 'cbr' = conv-BN-ReLU, 'rcb' = ReLU-conv-BN, 'c' = conv alone."""

    def params(ins, p):
        cout = out_channels(ins[0], p)
        return ins[0][0] * cout * p["k"] ** 2 + (2 * cout if "b" in order else 0)

    return Op(name, 1, dict(_CONV), conv_shape, params, _conv_macs, weighted=True, extra={"order": order})


register_op(_conv_block("conv_bn_relu", "cbr"))
register_op(_conv_block("relu_conv_bn", "rcb"))
register_op(_conv_block("conv", "c"))
register_op(_conv_block("conv_bn", "cb"))


def _sep_params(ins, p):
    cin, cout = ins[0][0], out_channels(ins[0], p)
    return cin * p["k"] ** 2 + cin * cout + 2 * cout


def _sep_macs(ins, out, p):
    return (ins[0][0] * p["k"] ** 2 + ins[0][0] * out[0]) * out[1] * out[2]


register_op(Op("sep_conv", 1, dict(_CONV), conv_shape, _sep_params, _sep_macs, weighted=True))


def _res_shape(ins, p):
    # the CGP ResBlock's identity shortcut is summed by the ``add`` rule: max(C, C_in)
    out = conv_shape(ins, p)
    return (max(out[0], ins[0][0]), *out[1:])


def _res_params(ins, p):
    cin, cout, k = ins[0][0], out_channels(ins[0], p), p["k"]
    return cin * cout * k * k + cout * cout * k * k + 4 * cout


def _res_macs(ins, out, p):
    cin, cout, k = ins[0][0], out_channels(ins[0], p), p["k"]
    return (cin * cout * k * k + cout * cout * k * k) * out[1] * out[2]


register_op(Op("res_block", 1, dict(_CONV), _res_shape, _res_params, _res_macs, weighted=True))
register_op(Op("bn_relu", 1, {}, lambda ins, p: ins[0], lambda ins, p: 2 * ins[0][0], _no_macs, weighted=True))


# --- pools and parameter-free ops -------------------------------------------------

def pool_skipped(ins, p) -> bool:
    """Nothing left to pool (the map is smaller than the kernel): the op is identity."""
    _, h, w = ins[0]
    return min(h, w) < p["k"] and p["stride"] > 1


def _pool_shape(ins, p):
    if pool_skipped(ins, p):
        return ins[0]
    return (ins[0][0], *spatial(ins[0], p["k"], p["stride"]))


register_op(Op("max_pool", 1, {"k": 2, "stride": 2}, _pool_shape, _none, _no_macs))
register_op(Op("avg_pool", 1, {"k": 2, "stride": 2}, _pool_shape, _none, _no_macs))


def _same(ins, p):
    return ins[0] if ins else None


for _name, _arity in (("input", 0), ("output", 1), ("identity", 1), ("zero", 1)):
    register_op(Op(_name, _arity, {}, _same, _none, _no_macs))


def _slice_shape(ins, p):
    c = ins[0][0]
    start, stop = p["start"], p["stop"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop)) \
            or not 0 <= start < stop <= c:
        raise GraphError("op slice", "start/stop", (start, stop),
                         f"need integers with 0 <= start < stop <= {c} (input channels)")
    return (stop - start, ins[0][1], ins[0][2])


# ``slice``: channels [start, stop) of its input; no parameters, no MACs.
register_op(Op("slice", 1, {"start": 0, "stop": 1}, _slice_shape, _none, _no_macs))


# --- merges -------------------------------------------------------------------------

def _merge_shape(kind):
    def shape(ins, p):
        h, w = min(s[1] for s in ins), min(s[2] for s in ins)
        c = max(s[0] for s in ins) if kind == "add" else sum(s[0] for s in ins)
        return (c, h, w)
    return shape


register_op(Op("add", -1, {"weights": None}, _merge_shape("add"), _none, _no_macs))
register_op(Op("concat", -1, {}, _merge_shape("concat"), _none, _no_macs, commutative=False))
