"""NAO's encoder-predictor-decoder (Luo et al., NeurIPS 2018), small, torch, CPU.

* encoder: each decision's option gets an embedding; the architecture's embedding
  is an MLP of their concatenation, z (``dim``), L2-normalised as NAO's encoder;
* predictor: an MLP z -> fitness (standardised);
* decoder: one linear softmax head per decision on z (NAO's LSTM decoder emits the
  decisions one by one; with a fixed-length decision vector a per-position head
  is its attention-free special case).

Trained jointly, loss = trade * MSE(predictor) + (1 - trade) * CE(decoder), full
batch Adam (deterministic on CPU). ``improve`` moves z along the predictor's
gradient with growing step sizes eta and decodes each point (NAO's inference).
Warm start: ``fit`` continues from the current weights. torch is imported only
when an NAO model is built. The optimiser is a hand-written Adam (``_Adam``, the
same update as ``torch.optim.Adam``): building the first ``torch.optim.Adam``
imports ``torch._dynamo``, 3.5 s on a loaded CPU, all of it inside the strategy's
``ask``, so a run's time budget overshot by that much on one call.
"""
from __future__ import annotations

import numpy as np


class NAOModel:
    # epochs per fit bound the time one ``ask`` takes (a fit runs inside it, and the
    # engine checks its time budget only between asks): ~2.5 ms an epoch on a loaded
    # CPU core, so 100 then 25 warm epochs cost ~0.25 s then ~0.06 s per proposal
    def __init__(self, sizes: list[int], dim: int = 16, hidden: int = 64, epochs: int = 25,
                 epochs_first: int = 100, lr: float = 0.005, trade: float = 0.8):
        self.sizes, self.dim, self.hidden = list(sizes), dim, hidden
        self.epochs, self.epochs_first, self.lr, self.trade = epochs, epochs_first, lr, trade
        self.net = None
        self.mu, self.sigma = 0.0, 1.0

    def _build(self, seed: int) -> None:
        import torch
        from torch import nn
        L, K = len(self.sizes), max(self.sizes)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.net = nn.ModuleDict({
                "emb": nn.Embedding(L * K, 8),
                "enc": nn.Sequential(nn.Linear(8 * L, self.hidden), nn.ReLU(), nn.Linear(self.hidden, self.dim)),
                "pred": nn.Sequential(nn.Linear(self.dim, self.hidden), nn.ReLU(), nn.Linear(self.hidden, 1)),
                "dec": nn.Linear(self.dim, L * K)}).double()
        self.opt = _Adam(list(self.net.parameters()), self.lr)
        mask = np.arange(K)[None, :] < np.array(self.sizes)[:, None]
        self.mask = torch.as_tensor(mask)
        self.offset = torch.arange(L) * K

    def encode(self, A):
        import torch.nn.functional as F
        e = self.net["emb"](A + self.offset)          # (n, L, 8)
        return F.normalize(self.net["enc"](e.flatten(1)), dim=1)

    def decode(self, z):
        L, K = len(self.sizes), max(self.sizes)
        logits = self.net["dec"](z).view(-1, L, K)
        return logits.masked_fill(~self.mask, -1e9)

    def predict_z(self, z):
        return self.net["pred"](z)[:, 0]

    def fit(self, A: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> None:
        import torch
        import torch.nn.functional as F
        first = self.net is None
        if first:
            self._build(int(rng.integers(2 ** 31)))
        self.mu, self.sigma = float(y.mean()), float(y.std()) or 1.0
        A_t = torch.as_tensor(A, dtype=torch.long)
        z_t = torch.as_tensor((y - self.mu) / self.sigma, dtype=torch.float64)
        for _ in range(self.epochs_first if first else self.epochs):
            self.opt.zero_grad()
            z = self.encode(A_t)
            mse = F.mse_loss(self.predict_z(z), z_t)
            ce = F.cross_entropy(self.decode(z).flatten(0, 1), A_t.flatten())
            (self.trade * mse + (1 - self.trade) * ce).backward()
            self.opt.step()

    def improve(self, a: list[int], etas=(0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)) -> list[list[int]]:
        """Decoded architectures along z + eta * d pred / d z from ``a``, in eta order."""
        import torch
        z = self.encode(torch.as_tensor([a], dtype=torch.long)).detach().requires_grad_(True)
        (g,) = torch.autograd.grad(self.predict_z(z).sum(), z)
        out = []
        with torch.no_grad():
            for eta in etas:
                out.append([int(i) for i in self.decode(z + eta * g).argmax(-1)[0]])
        return out


class _Adam:
    """``torch.optim.Adam``'s update (betas 0.9/0.999, eps 1e-8, no weight decay)
    without importing ``torch.optim`` (see the module docstring)."""

    def __init__(self, params, lr: float):
        import torch
        self.params, self.lr, self.t = params, lr, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        import torch
        self.t += 1
        c1, c2 = 1 - 0.9 ** self.t, (1 - 0.999 ** self.t) ** 0.5
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                if p.grad is None:
                    continue
                m.mul_(0.9).add_(p.grad, alpha=0.1)
                v.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                p.addcdiv_(m, (v.sqrt() / c2).add_(1e-8), value=-self.lr / c1)
