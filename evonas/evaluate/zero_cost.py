"""Zero-cost proxy: the NASWOT score (Mellor et al., ICML 2021), on one mini-batch.

An untrained network is run once on a batch of N training images. For every ReLU
(every ``nn.ReLU`` module, and every ``relu`` call in the compiled graph), each
image gets a binary code (which units are active); ``K[i, j]`` counts, over all
units, the codes on which images i and j agree (Hamming similarity). The score is
``log |det K|``: networks whose activation patterns separate the images well score
high, and the score correlates with trained accuracy (NB201 C10: Kendall tau
about 0.57 in the paper) at the cost of one forward pass, no training.

``NaswotScreen`` (``--surrogate naswot``) is a ``Screen`` for ``strategy surrogate``:
ready from the first child on, it needs no results. The batch is the first
``batch`` images of a seeded permutation of the training split; the network is
built with ``seed`` (its init), so the score of a genome is a fixed number for a
run. torch is imported here only, never by the strategies that use the screen.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..errors import ConfigError
from ..predict.screen import SCREENS, Screen


def naswot_score(net, x) -> float:
    """log|det K| of ``net``'s ReLU codes on batch ``x`` (-inf-safe: slogdet)."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    n = x.shape[0]
    K = torch.zeros(n, n, dtype=torch.float64)

    def add(act: torch.Tensor) -> None:
        c = (act.detach().reshape(n, -1) > 0).double()
        K.add_(c @ c.t() + (1 - c) @ (1 - c).t())

    hooks = [m.register_forward_hook(lambda _m, _i, out: add(out)) for m in net.modules()
             if isinstance(m, nn.ReLU)]
    real_relu = F.relu

    def relu(t, inplace=False):  # functional relus in the fx graph count too
        out = real_relu(t, inplace=inplace)
        add(out)
        return out
    try:
        F.relu = relu
        with torch.no_grad():
            net(x)
    finally:
        F.relu = real_relu
        for h in hooks:
            h.remove()
    sign, logdet = torch.linalg.slogdet(K)
    return float(logdet) if sign > 0 else -1e9


@SCREENS.class_decorator("naswot", "name")
class NaswotScreen(Screen):
    """``data``: a ``Data`` (or ``DataSpec``, loaded once) whose training split gives
    the batch; ``batch`` images (>= 2); ``seed``: the batch permutation and the
    networks' init."""

    def __init__(self, genome_type: str, data: Any = None, batch: int = 64, seed: int = 0):
        super().__init__(genome_type)
        if data is None:
            raise ConfigError("surrogate", "naswot", "table", "needs image data (a --dataset run, not a table)")
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 2:
            raise ConfigError("surrogate", "batch", batch, "must be an integer >= 2")
        self.data, self.n, self.seed = data, batch, int(seed)
        self._x = None
        self.cache: dict[str, float] = {}  # arch_hash -> score: a fixed number per run

    def _batch(self):
        if self._x is None:
            import torch
            d = self.data.load() if hasattr(self.data, "load") else self.data
            idx = np.random.default_rng(self.seed).permutation(len(d.y_train))[:self.n]
            self._x = d.x_train[torch.as_tensor(idx)]
            self.shape, self.classes = d.input_shape, d.num_classes
        return self._x

    def score_one(self, genome) -> float:
        h = genome.arch_hash()
        if h not in self.cache:
            import torch
            from ..compile import build
            x = self._batch()
            with torch.random.fork_rng():  # never disturb the caller's torch rng
                net = build(genome, self.shape, self.classes, seed=self.seed).eval()
                self.cache[h] = naswot_score(net, x)
        return self.cache[h]

    def score(self, genomes, rng: Optional[np.random.Generator] = None):
        s = np.array([self.score_one(g) for g in genomes])
        return s, np.zeros_like(s)
