"""Predictor interface and an ensemble of small MLPs (numpy, deterministic).

A ``Predictor`` learns fitness from (encoding, fitness) pairs::

    fit(X, y, rng)  -> None          # warm start: keeps its weights between calls
    predict(X)      -> (mean, std)   # std: the uncertainty (ensemble spread)

``PREDICTORS`` registers them by name. ``MLPEnsemble``: E independent one-hidden-
layer ReLU MLPs, each on its own bootstrap resample of the data, trained by
full-batch Adam on the mean squared error of standardised targets; the ensemble's
mean is the prediction, its standard deviation the uncertainty (Lakshminarayanan
et al. 2017; BANANAS' predictor). Plain numpy: on ~100 points and a 30-dim
encoding one refit of 5 nets x 150 steps takes a few ms, torch's dispatch
overhead would dominate, and numpy's float64 matmul is deterministic on CPU. The
first fit trains ``steps_first`` steps from a seeded init; later fits continue
from the current weights (``steps``), the warm start that bounds the refit cost.
``target`` picks what the nets regress (``_target``): the fitness itself, a floored
or a log-stretched version; predictions are then on that scale, an increasing
function of fitness, which is all a screen that ranks candidates needs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError
from ..registry import Registry

PREDICTORS: Registry[type] = Registry("predictor")
TARGETS = ("raw", "clip", "log", "log-clip")


def register_predictor(name: str):
    return PREDICTORS.class_decorator(name, "name")


class Predictor:
    name = ""

    def fit(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


def _positive_int(owner: str, field: str, v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ConfigError(owner, field, v, "must be an integer >= 1")
    return v


@register_predictor("mlp")
class MLPEnsemble(Predictor):
    def __init__(self, members: int = 5, hidden: int = 32, steps: int = 60, steps_first: int = 300,
                 lr: float = 0.01, weight_decay: float = 1e-4, target: str = "raw", clip_quantile: float = 0.25,
                 upper: float = 100.5):
        self.E = _positive_int("predictor", "members", members)
        self.H = _positive_int("predictor", "hidden", hidden)
        self.steps = _positive_int("predictor", "steps", steps)
        self.steps_first = _positive_int("predictor", "steps_first", steps_first)
        if not lr > 0:
            raise ConfigError("predictor", "lr", lr, "must be > 0")
        self.lr, self.wd = float(lr), float(weight_decay)
        if target not in TARGETS:
            raise ConfigError("predictor", "target", target, f"must be one of {', '.join(TARGETS)}")
        if not 0 <= clip_quantile < 1:
            raise ConfigError("predictor", "clip_quantile", clip_quantile, "must be in [0, 1)")
        self.target, self.q, self.upper = target, float(clip_quantile), float(upper)
        self.params: list[np.ndarray] | None = None  # W1 (E,d,H), b1 (E,H), W2 (E,H), b2 (E,)
        self.moments: list[list[np.ndarray]] = []
        self.t = 0
        self.mu, self.sigma = 0.0, 1.0

    def _init(self, d: int, rng: np.random.Generator) -> None:
        E, H = self.E, self.H
        self.params = [rng.normal(0, np.sqrt(2.0 / d), (E, d, H)), np.zeros((E, H)),
                       rng.normal(0, np.sqrt(1.0 / H), (E, H)), np.zeros(E)]
        self.moments = [[np.zeros_like(p), np.zeros_like(p)] for p in self.params]
        self.t = 0

    def fit(self, X: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        X, y = np.asarray(X, float), self._target(np.asarray(y, float))
        first = self.params is None or self.params[0].shape[1] != X.shape[1]
        if first:
            self._init(X.shape[1], rng)
        # targets standardised on the current data: the nets learn ranks and gaps,
        # not the scale of the fitness column
        self.mu, self.sigma = float(y.mean()), float(y.std()) or 1.0
        z = (y - self.mu) / self.sigma
        idx = rng.integers(len(y), size=(self.E, len(y)))  # one bootstrap per member
        Xb, zb = X[idx], z[idx]                             # (E, n, d), (E, n)
        for _ in range(self.steps_first if first else self.steps):
            self._adam_step(Xb, zb)

    def _target(self, y: np.ndarray) -> np.ndarray:
        """What the nets regress. ``clip`` floors y at its ``clip_quantile``: the
        search only needs to rank the good cells, and a few collapsed ones (10 %
        accuracy) would otherwise take most of the squared error. ``log`` maps y to
        -log(upper - y), which stretches the gaps between the best cells, where the
        search is choosing, and shrinks those between poor ones (``upper`` 100.5
        suits accuracies in %; a larger fitness raises it to max + 5 % of the range)."""
        if self.target in ("clip", "log-clip"):
            y = np.maximum(y, np.quantile(y, self.q))
        if self.target in ("log", "log-clip"):
            # a fitness at or above ``upper`` (not an accuracy in %) moves the bound up
            # rather than failing a run mid-search: the map stays increasing
            upper = max(self.upper, y.max() + 0.05 * (np.ptp(y) or 1.0))
            y = -np.log(upper - y)
        return y

    def _adam_step(self, Xb: np.ndarray, zb: np.ndarray) -> None:
        W1, b1, W2, b2 = self.params
        n = Xb.shape[1]
        pre = Xb @ W1 + b1[:, None, :]                    # batched matmul: (E,n,d)@(E,d,H)
        h = np.maximum(pre, 0.0)
        out = (h @ W2[:, :, None])[:, :, 0] + b2[:, None]
        g_out = 2.0 * (out - zb) / n                       # d mse / d out
        g_W2 = (g_out[:, None, :] @ h)[:, 0, :] + self.wd * W2
        g_b2 = g_out.sum(1)
        g_pre = g_out[:, :, None] * W2[:, None, :] * (pre > 0)
        g_W1 = Xb.transpose(0, 2, 1) @ g_pre + self.wd * W1
        g_b1 = g_pre.sum(1)
        self.t += 1
        b1c, b2c = 1 - 0.9 ** self.t, 1 - 0.999 ** self.t
        for p, g, (m, v) in zip(self.params, (g_W1, g_b1, g_W2, g_b2), self.moments):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= self.lr * (m / b1c) / (np.sqrt(v / b2c) + 1e-8)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.params is None:
            raise RuntimeError("MLPEnsemble.predict before fit")
        W1, b1, W2, b2 = self.params
        h = np.maximum(np.asarray(X, float) @ W1 + b1[:, None, :], 0.0)
        out = ((h @ W2[:, :, None])[:, :, 0] + b2[:, None]) * self.sigma + self.mu
        return out.mean(0), out.std(0)

    def input_grad(self, x: np.ndarray) -> np.ndarray:
        """d mean prediction / d x at one point ``x`` (d,), in fitness units: what
        PVLL descends (the landscape's slope)."""
        W1, b1, W2, _ = self.params
        active = (x @ W1 + b1) > 0                      # (E, H)
        g = np.einsum("edh,eh->ed", W1, W2 * active)   # (E, d)
        return g.mean(0) * self.sigma
