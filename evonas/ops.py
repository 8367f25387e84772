"""Primitive ops of the DAG IR: name -> shape rule, module builder and analytic cost.

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

import torch
import torch.nn.functional as F
from torch import nn

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
    build: Callable[[Sequence[Shape], dict], nn.Module | None]
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


def _reduce(side: int, stride: int) -> int:
    """Stride actually applied on a map side (1 on a 1-pixel side)."""
    return 1 if side <= 1 else stride


def _spatial(shape: Shape, k: int, stride: int) -> tuple[int, int]:
    _, h, w = shape
    s = _reduce(min(h, w), stride)
    pad = (k - 1) // 2
    return (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1


def _out_c(shape: Shape, p: dict) -> int:
    return p["C"] if p.get("C") else shape[0]


def _conv(cin: int, cout: int, k: int, stride: int, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=False)


def _conv_shape(ins, p):
    return (_out_c(ins[0], p), *_spatial(ins[0], p["k"], p["stride"]))


def _conv_macs(ins, out, p):
    return ins[0][0] * out[0] * p["k"] ** 2 * out[1] * out[2]


def _stride(ins, p) -> int:
    return _reduce(min(ins[0][1:]), p["stride"])


# --- convolution blocks -----------------------------------------------------------

def _conv_block(name: str, order: str) -> Op:
    """``order``: 'cbr' = conv-BN-ReLU, 'rcb' = ReLU-conv-BN, 'c' = conv alone."""

    def build(ins, p):
        cin, cout = ins[0][0], _out_c(ins[0], p)
        layers = {"c": [_conv(cin, cout, p["k"], _stride(ins, p))],
                  "b": [nn.BatchNorm2d(cout)], "r": [nn.ReLU(inplace=False)]}
        return nn.Sequential(*[m for ch in order for m in layers[ch]])

    def params(ins, p):
        cout = _out_c(ins[0], p)
        return ins[0][0] * cout * p["k"] ** 2 + (2 * cout if "b" in order else 0)

    return Op(name, 1, {"C": None, "k": 3, "stride": 1}, _conv_shape, build, params,
              _conv_macs, weighted=True, extra={"order": order})


register_op(_conv_block("conv_bn_relu", "cbr"))
register_op(_conv_block("relu_conv_bn", "rcb"))
register_op(_conv_block("conv", "c"))
register_op(_conv_block("conv_bn", "cb"))


def _sep_build(ins, p):
    cin, cout = ins[0][0], _out_c(ins[0], p)
    return nn.Sequential(_conv(cin, cin, p["k"], _stride(ins, p), groups=cin),
                         _conv(cin, cout, 1, 1), nn.BatchNorm2d(cout), nn.ReLU())


def _sep_params(ins, p):
    cin, cout = ins[0][0], _out_c(ins[0], p)
    return cin * p["k"] ** 2 + cin * cout + 2 * cout


def _sep_macs(ins, out, p):
    return (ins[0][0] * p["k"] ** 2 + ins[0][0] * out[0]) * out[1] * out[2]


register_op(Op("sep_conv", 1, {"C": None, "k": 3, "stride": 1}, _conv_shape, _sep_build,
               _sep_params, _sep_macs, weighted=True))


class ResBlock(nn.Module):
    """CGP ResSet block as the authors wrote it (``cnn_model.py`` of sg-nm/cgp-cnn):
    conv-BN-ReLU-conv-BN plus the block's input as an identity shortcut, summed by
    the ``add`` merge rule (the fewer channels zero-padded, so the output has
    max(C, C_in) channels; with stride > 1 the input is max-pooled down), then ReLU."""

    def __init__(self, in_shape: Shape, cout: int, k: int, stride: int):
        super().__init__()
        cin = in_shape[0]
        self.body = nn.Sequential(_conv(cin, cout, k, stride), nn.BatchNorm2d(cout), nn.ReLU(),
                                  _conv(cout, cout, k, 1), nn.BatchNorm2d(cout))
        body = (cout, *_spatial(in_shape, k, stride))
        self.merge = Merge("add", [body, tuple(in_shape)], None)

    def forward(self, x):
        return F.relu(self.merge(self.body(x), x))


def _res_shape(ins, p):
    out = _conv_shape(ins, p)
    return (max(out[0], ins[0][0]), *out[1:])


def _res_params(ins, p):
    cin, cout, k = ins[0][0], _out_c(ins[0], p), p["k"]
    return cin * cout * k * k + cout * cout * k * k + 4 * cout


def _res_macs(ins, out, p):
    cin, cout, k = ins[0][0], _out_c(ins[0], p), p["k"]
    return (cin * cout * k * k + cout * cout * k * k) * out[1] * out[2]


register_op(Op("res_block", 1, {"C": None, "k": 3, "stride": 1}, _res_shape,
               lambda ins, p: ResBlock(ins[0], _out_c(ins[0], p), p["k"], _stride(ins, p)),
               _res_params, _res_macs, weighted=True))

register_op(Op("bn_relu", 1, {}, lambda ins, p: ins[0],
               lambda ins, p: nn.Sequential(nn.BatchNorm2d(ins[0][0]), nn.ReLU()),
               lambda ins, p: 2 * ins[0][0], lambda ins, out, p: 0, weighted=True))


# --- pools and parameter-free ops -------------------------------------------------

def _pool(name: str, cls) -> Op:
    def shape(ins, p):
        _, h, w = ins[0]
        if min(h, w) < p["k"] and p["stride"] > 1:  # nothing left to pool: skipped
            return ins[0]
        return (ins[0][0], *_spatial(ins[0], p["k"], p["stride"]))

    def build(ins, p):
        if shape(ins, p) == ins[0] and p["stride"] > 1:
            return nn.Identity()
        kw = {"count_include_pad": False} if cls is nn.AvgPool2d else {}
        return cls(p["k"], stride=_stride(ins, p), padding=(p["k"] - 1) // 2, **kw)

    return Op(name, 1, {"k": 2, "stride": 2}, shape, build, lambda ins, p: 0,
              lambda ins, out, p: 0)


register_op(_pool("max_pool", nn.MaxPool2d))
register_op(_pool("avg_pool", nn.AvgPool2d))


class Zero(nn.Module):
    """Outputs zeros shaped like the input; ``x * 0`` (not ``zeros_like``) so that
    upstream parameters get a zero gradient rather than none."""

    def forward(self, x):
        return x * 0.0


def _free(name: str, arity: int, module=None) -> Op:
    return Op(name, arity, {}, lambda ins, p: ins[0] if ins else None,
              lambda ins, p: module() if module else None, lambda ins, p: 0,
              lambda ins, out, p: 0)


register_op(_free("input", 0))
register_op(_free("output", 1))
register_op(_free("identity", 1))
register_op(_free("zero", 1, Zero))


class Slice(nn.Module):
    """Channels ``[start, stop)`` of the input (split allocation of tree cells)."""

    def __init__(self, start: int, stop: int):
        super().__init__()
        self.start, self.stop = int(start), int(stop)

    def forward(self, x):
        return x[:, self.start:self.stop]


def _slice_shape(ins, p):
    c = ins[0][0]
    start, stop = p["start"], p["stop"]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, stop)) \
            or not 0 <= start < stop <= c:
        raise GraphError("op slice", "start/stop", (start, stop),
                         f"need integers with 0 <= start < stop <= {c} (input channels)")
    return (stop - start, ins[0][1], ins[0][2])


# ``slice``: channels [start, stop) of its input; no parameters, no MACs.
register_op(Op("slice", 1, {"start": 0, "stop": 1}, _slice_shape,
               lambda ins, p: Slice(p["start"], p["stop"]), lambda ins, p: 0,
               lambda ins, out, p: 0))


# --- merges -------------------------------------------------------------------------

class Merge(nn.Module):
    """Sum or concatenation of inputs with the shape repair of the module docstring.
    All decisions are made at build time from the static input shapes."""

    def __init__(self, kind: str, ins: Sequence[Shape], weights: Sequence[float] | None):
        super().__init__()
        self.kind = kind
        self.h, self.w = min(s[1] for s in ins), min(s[2] for s in ins)
        self.c = max(s[0] for s in ins)
        self.resize = [(s[1], s[2]) != (self.h, self.w) for s in ins]
        self.pad = [self.c - s[0] if kind == "add" else 0 for s in ins]
        self.weights = list(weights) if weights else None

    def _fit(self, i: int, x: torch.Tensor) -> torch.Tensor:
        if self.resize[i]:
            fh, fw = x.shape[2] // self.h, x.shape[3] // self.w
            if fh * self.h == x.shape[2] and fw * self.w == x.shape[3]:
                x = F.max_pool2d(x, (fh, fw))
            else:
                x = F.adaptive_max_pool2d(x, (self.h, self.w))
        if self.pad[i]:
            x = F.pad(x, (0, 0, 0, 0, 0, self.pad[i]))
        if self.weights is not None:
            x = x * self.weights[i]
        return x

    def forward(self, *xs):
        xs = [self._fit(i, x) for i, x in enumerate(xs)]
        if self.kind == "concat":
            return torch.cat(xs, dim=1)
        out = xs[0]
        for x in xs[1:]:
            out = out + x
        return out


def _merge_shape(kind):
    def shape(ins, p):
        h, w = min(s[1] for s in ins), min(s[2] for s in ins)
        c = max(s[0] for s in ins) if kind == "add" else sum(s[0] for s in ins)
        return (c, h, w)
    return shape


register_op(Op("add", -1, {"weights": None}, _merge_shape("add"),
               lambda ins, p: Merge("add", ins, p["weights"]), lambda ins, p: 0,
               lambda ins, out, p: 0))
register_op(Op("concat", -1, {}, _merge_shape("concat"),
               lambda ins, p: Merge("concat", ins, None), lambda ins, p: 0,
               lambda ins, out, p: 0, commutative=False))
