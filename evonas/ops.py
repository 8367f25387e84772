"""Torch module builders of the primitive ops: name -> ``build(input shapes, params)``.

The ops themselves (arity, params, shape rule, cost) are the torch-free table of
``evonas.opspec``; this module adds, for every name there, the ``nn.Module`` that
computes it (None: the op needs no module, e.g. ``identity``). Merge rule: see
``evonas.opspec``. ``OPS`` and ``Shape`` are re-exported for the compiler.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import RegistryError
from .opspec import OPS, Shape, out_channels, spatial, stride  # noqa: F401  (OPS, Shape re-exported)

Builder = Callable[[Sequence[Shape], dict], "nn.Module | None"]
BUILDERS: dict[str, Builder] = {}


def register_builder(name: str):
    """Decorator: the module builder of op ``name`` (which must be in ``opspec.OPS``)."""
    def wrap(fn: Builder) -> Builder:
        OPS.get(name)  # RegistryError for a builder of an op the spec does not know
        BUILDERS[name] = fn
        return fn
    return wrap


def build(name: str, ins: Sequence[Shape], params: dict) -> nn.Module | None:
    """The module of op ``name`` on input shapes ``ins`` with resolved ``params``."""
    try:
        fn = BUILDERS[name]
    except KeyError:
        raise RegistryError(f"op {name!r} has no torch builder (known: {', '.join(sorted(BUILDERS))})") from None
    return fn(ins, params)


def _conv(cin: int, cout: int, k: int, s: int, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=s, padding=(k - 1) // 2, groups=groups, bias=False)


# --- convolution blocks -----------------------------------------------------------

def _conv_block(name: str):
    order = OPS.get(name).extra["order"]

    def build_block(ins, p):
        cin, cout = ins[0][0], out_channels(ins[0], p)
        layers = {"c": [_conv(cin, cout, p["k"], stride(ins, p))],
                  "b": [nn.BatchNorm2d(cout)], "r": [nn.ReLU(inplace=False)]}
        return nn.Sequential(*[m for ch in order for m in layers[ch]])
    register_builder(name)(build_block)


for _name in ("conv_bn_relu", "relu_conv_bn", "conv", "conv_bn"):
    _conv_block(_name)


@register_builder("sep_conv")
def _sep_build(ins, p):
    cin, cout = ins[0][0], out_channels(ins[0], p)
    return nn.Sequential(_conv(cin, cin, p["k"], stride(ins, p), groups=cin),
                         _conv(cin, cout, 1, 1), nn.BatchNorm2d(cout), nn.ReLU())


class ResBlock(nn.Module):
    """CGP ResSet block as the authors wrote it (``cnn_model.py`` of sg-nm/cgp-cnn):
    conv-BN-ReLU-conv-BN plus the block's input as an identity shortcut, summed by
    the ``add`` merge rule (the fewer channels zero-padded, so the output has
    max(C, C_in) channels; with stride > 1 the input is max-pooled down), then ReLU."""

    def __init__(self, in_shape: Shape, cout: int, k: int, s: int):
        super().__init__()
        cin = in_shape[0]
        self.body = nn.Sequential(_conv(cin, cout, k, s), nn.BatchNorm2d(cout), nn.ReLU(),
                                  _conv(cout, cout, k, 1), nn.BatchNorm2d(cout))
        body = (cout, *spatial(in_shape, k, s))
        self.merge = Merge("add", [body, tuple(in_shape)], None)

    def forward(self, x):
        return F.relu(self.merge(self.body(x), x))


register_builder("res_block")(lambda ins, p: ResBlock(ins[0], out_channels(ins[0], p), p["k"], stride(ins, p)))
register_builder("bn_relu")(lambda ins, p: nn.Sequential(nn.BatchNorm2d(ins[0][0]), nn.ReLU()))


# --- pools and parameter-free ops -------------------------------------------------

def _pool(name: str, cls) -> None:
    shape = OPS.get(name).shape

    def build_pool(ins, p):
        if shape(ins, p) == ins[0] and p["stride"] > 1:  # nothing left to pool: skipped
            return nn.Identity()
        kw = {"count_include_pad": False} if cls is nn.AvgPool2d else {}
        return cls(p["k"], stride=stride(ins, p), padding=(p["k"] - 1) // 2, **kw)
    register_builder(name)(build_pool)


_pool("max_pool", nn.MaxPool2d)
_pool("avg_pool", nn.AvgPool2d)


class Zero(nn.Module):
    """Outputs zeros shaped like the input; ``x * 0`` (not ``zeros_like``) so that
    upstream parameters get a zero gradient rather than none."""

    def forward(self, x):
        return x * 0.0


for _name in ("input", "output", "identity"):
    register_builder(_name)(lambda ins, p: None)
register_builder("zero")(lambda ins, p: Zero())


class Slice(nn.Module):
    """Channels ``[start, stop)`` of the input (split allocation of tree cells)."""

    def __init__(self, start: int, stop: int):
        super().__init__()
        self.start, self.stop = int(start), int(stop)

    def forward(self, x):
        return x[:, self.start:self.stop]


register_builder("slice")(lambda ins, p: Slice(p["start"], p["stop"]))


# --- merges -------------------------------------------------------------------------

class Merge(nn.Module):
    """Sum or concatenation of inputs with the shape repair of ``evonas.opspec``.
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


register_builder("add")(lambda ins, p: Merge("add", ins, p["weights"]))
register_builder("concat")(lambda ins, p: Merge("concat", ins, None))
