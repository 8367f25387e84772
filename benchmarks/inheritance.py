"""Inherited vs from-scratch training after an exact path-level transformation (CPU).

Trains a tree-cell parent for ``--epochs`` epochs on the CIFAR-10 subset, applies
an exact transformation (``--op``, default ``identity_to_conv``), and reports:

(a) the child's validation accuracy before any training (equal to the parent's,
    the transformation being function preserving) and the max |logit difference|;
(b) training epochs (at least one) for the inherited child to reach the parent's
    validation accuracy, vs epochs for the same child architecture trained from
    scratch (``None`` if not reached within ``--max-epochs``).

All three runs use the same loop: SGD (Nesterov momentum 0.9, weight decay 5e-4)
at a constant learning rate, batch 128, one validation pass per epoch (eval mode,
BN running statistics). Data: ``evonas.evaluate.data.load_dataset``; accuracy:
``evonas.evaluate.train.accuracy``; the loop is local because the shared one does
not expose per-epoch checkpoints.

    python benchmarks/inheritance.py --epochs 5 --subset 2500 --seed 0
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from evonas.compile import build  # noqa: E402
from evonas.evaluate.data import load_dataset  # noqa: E402
from evonas.evaluate.train import accuracy  # noqa: E402
from evonas.genome.tree import TreeGenome, TreeSpace  # noqa: E402
from evonas.inherit import inherit  # noqa: E402
from evonas.operators import operators  # noqa: E402

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cifar10_5k1k.npz")


def train_epoch(model, data, opt, gen: torch.Generator, batch: int = 128) -> None:
    model.train()
    n = len(data.y_train)
    perm = torch.randperm(n, generator=gen)
    for s in range(n // batch):
        idx = perm[s * batch:(s + 1) * batch]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(data.x_train[idx]), data.y_train[idx]).backward()
        opt.step()


def sgd(model, lr: float):
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)


def run(model, data, epochs: int, lr: float, seed: int, target: float | None = None):
    """Train up to ``epochs``; return (accuracy per epoch, first epoch >= target)."""
    opt, gen = sgd(model, lr), torch.Generator().manual_seed(seed)
    accs, reached = [], None
    for e in range(1, epochs + 1):
        train_epoch(model, data, opt, gen)
        accs.append(accuracy(model, data.x_val, data.y_val))
        if target is not None and reached is None and accs[-1] >= target:
            reached = e
            break
    return accs, reached


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DATA)
    ap.add_argument("--epochs", type=int, default=5, help="parent training epochs E")
    ap.add_argument("--max-epochs", type=int, default=None, help="child budget (default 2E)")
    ap.add_argument("--subset", type=int, default=2500, help="training images (<= 4500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--parent", default="rep.add(sep3x3>leaf,identity>leaf);head=64")
    ap.add_argument("--op", default="identity_to_conv", help="exact tree operator")
    ap.add_argument("--C", type=int, default=8, help="stage-0 channels")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    if not os.path.exists(a.data):
        print(f"data file {a.data} not found")
        return 1
    torch.set_num_threads(a.threads)
    t0 = time.time()
    data = load_dataset(f"npz:{a.data}", seed=a.seed, val_fraction=0.1, max_train=a.subset)
    space = TreeSpace(C=a.C, S=2, N=1, max_edges=16, max_head=256)
    parent = TreeGenome.from_string(a.parent, space)
    op = operators("tree").get(a.op)
    rng = np.random.default_rng(a.seed)
    child = op(parent, rng)
    print(f"data {len(data.y_train)} train / {len(data.y_val)} val; parent {parent}; {a.op} -> child {child}")

    pmodel = build(parent, data.input_shape, data.num_classes, seed=a.seed)
    paccs, _ = run(pmodel, data, a.epochs, a.lr, a.seed)
    target = paccs[-1]
    print(f"parent: {a.epochs} epochs, val acc per epoch {[round(x, 1) for x in paccs]}  ({time.time() - t0:.0f} s)")

    budget = a.max_epochs or 2 * a.epochs
    inh = build(child, data.input_shape, data.num_classes, seed=a.seed + 1)
    report = inherit(parent, pmodel.state_dict(), child, inh, "exact", op, rng)
    pmodel.eval(), inh.eval()
    with torch.no_grad():
        xb = data.x_val[:256]
        diff = (inh(xb) - pmodel(xb)).abs().max().item()
    acc0 = accuracy(inh, data.x_val, data.y_val)
    print(f"(a) child before training: val acc {acc0:.2f} vs parent {target:.2f}; "
          f"max |logit diff| {diff:.2e}; {report.summary()}")
    iaccs, ie = run(inh, data, budget, a.lr, a.seed + 2, target)
    print(f"    inherited child: acc per epoch {[round(x, 1) for x in iaccs]} -> reached {target:.2f} at epoch {ie}")
    scratch = build(child, data.input_shape, data.num_classes, seed=a.seed + 1)
    saccs, se = run(scratch, data, budget, a.lr, a.seed + 2, target)
    print(f"    scratch child:   acc per epoch {[round(x, 1) for x in saccs]} -> reached {target:.2f} at epoch {se}")
    ratio = f"{ie / se:.2f}" if ie and se else "n/a"
    print(f"(b) epochs to parent accuracy: inherited {ie}, scratch {se} (budget {budget}); ratio {ratio}; "
          f"total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
