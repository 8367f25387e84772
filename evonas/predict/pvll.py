"""PVLL-NAS's proxy validation-loss landscape (Li et al., ICML 2020), discretised.

PVLL learns a landscape L(alpha) of the validation loss over the continuous
architecture parameters alpha (per decision, a softmax over its options) from the
history of evaluated architectures, and descends it to propose the next one.
Here the landscape is the MLP ensemble (``mlp_ensemble``) on the relaxed
encoding p = softmax(alpha) (a one-hot per decision for an evaluated network),
predicting fitness (= -loss, so we ascend). ``descend`` starts at the relaxation
of a given architecture (logits ``tau`` * one-hot), takes gradient steps on the
logits through the softmax, and returns the argmax architectures it passes, in
order, so the caller can take the first one it has not evaluated yet.
"""
from __future__ import annotations

import numpy as np

from .mlp_ensemble import MLPEnsemble


def relax(choices: list[int], sizes: list[int], tau: float) -> np.ndarray:
    """Logits (L, K) of one architecture: ``tau`` on its option, 0 elsewhere,
    -inf on options a decision does not have."""
    K = max(sizes)
    z = np.where(np.arange(K)[None, :] < np.array(sizes)[:, None], 0.0, -np.inf)
    z[np.arange(len(choices)), choices] = tau
    return z


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def onehot(choices: list[int], sizes: list[int]) -> np.ndarray:
    v = np.zeros((len(sizes), max(sizes)))
    v[np.arange(len(choices)), choices] = 1.0
    return v.ravel()


def descend(model: MLPEnsemble, start: list[int], sizes: list[int], steps: int = 30, lr: float = 1.0,
            tau: float = 2.0) -> list[list[int]]:
    """Architectures (argmax per decision) met on gradient ascent of the predicted
    fitness from ``start``, first met first, without repeats (``start`` excluded)."""
    z = relax(start, sizes, tau)
    seen, out = {tuple(start)}, []
    shape = z.shape
    for _ in range(steps):
        p = softmax(z)
        g = model.input_grad(p.ravel()).reshape(shape)
        # chain rule through each decision's softmax: dp/dz = diag(p) - p p^T
        gz = p * (g - (g * p).sum(1, keepdims=True))
        z = z + lr * np.where(np.isfinite(z), gz / (np.abs(gz).max() + 1e-12), 0.0)
        a = [int(i) for i in np.argmax(z, 1)]
        if tuple(a) not in seen:
            seen.add(tuple(a))
            out.append(a)
    return out
