"""Synthetic stand-ins for ../shared/data (helper, not a test), so that the suite runs
in a clone without it. ``conftest.py`` wraps them as fixtures.

The NAS-Bench-201 table has the real file's columns and number format. Its accuracies
are made up but shaped like the real ones: every one of the 15,625 cells is there
(searches sample the whole space), cells whose output is cut off from the input sit
at chance (10 %), the others rise with the convolutions on the edges (a landscape
that a search can climb, so "aging beats random" can fail), plus seeded noise.
Strings are formatted here from the NB201 spec, not by ``NB201Genome``, so a round
trip through the genome is a real check.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
COLUMNS = ("nb201_index", "arch_str", "c10_val_12", "c10_test_12", "c10_val_200", "c10_test_200")
# how much an op on an edge is worth (convolutions most), and how much each edge matters
OP_VALUE = {"none": 0.0, "skip_connect": 0.35, "nor_conv_1x1": 0.7, "nor_conv_3x3": 1.0, "avg_pool_3x3": 0.2}
EDGE_WEIGHT = (1.0, 0.8, 1.0, 0.6, 1.0, 1.2)


def arch_str(ops) -> str:
    return f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|"


def _reaches_output(ops) -> bool:
    """Is node 3 reachable from node 0 over edges that are not ``none``?"""
    seen = {0}
    for (a, b), op in zip(EDGES, ops):  # EDGES is in topological order
        if op != "none" and a in seen:
            seen.add(b)
    return 3 in seen


def nb201_rows(seed: int = 0) -> list[tuple]:
    """All 15,625 cells as rows of ``COLUMNS`` (deterministic for the seed)."""
    rng = np.random.default_rng(seed)
    rows = []
    top = sum(EDGE_WEIGHT)
    for i, ops in enumerate(itertools.product(OPS, repeat=6)):
        n = rng.normal(size=4)
        if _reaches_output(ops):
            q = sum(w * OP_VALUE[o] for w, o in zip(EDGE_WEIGHT, ops)) / top  # 0..1
            val200 = min(91.6, 72.0 + 19.0 * q + 0.6 * n[0])
            test200 = val200 + 2.7 + 0.25 * n[1]
            val12 = 45.0 + 38.0 * q + 1.5 * n[2]
            test12 = val12 + 5.0 + 0.5 * n[3]
        else:  # the output sees only zeros: chance level
            val200, test200, val12, test12 = (10.0 + 0.05 * abs(x) for x in n)
        rows.append((i, arch_str(ops), round(val12, 3), round(test12, 2), round(val200, 4), round(test200, 4)))
    return rows


def write_nb201_table(path: Path, seed: int = 0) -> Path:
    """The synthetic table as a CSV in the real file's format."""
    path = Path(path)
    lines = [",".join(COLUMNS)] + [",".join(map(str, r)) for r in nb201_rows(seed)]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_npz_like_shared(path: Path, layout: str, per_class: int, seed: int = 0) -> Path:
    """A class-balanced uint8 npz in the layout of a shared data set: ``mnist``
    (``x`` (N, 28, 28), ``y``) or ``cifar10`` (``x_train``/``y_train`` and
    ``x_test``/``y_test`` at (N, 32, 32, 3), a fifth of it test)."""
    rng = np.random.default_rng(seed)
    if layout == "mnist":
        y = np.repeat(np.arange(10, dtype=np.uint8), per_class)
        rng.shuffle(y)
        np.savez(path, x=rng.integers(0, 256, (len(y), 28, 28), dtype=np.uint8), y=y)
    elif layout == "cifar10":
        arrays = {}
        for part, n in (("train", per_class), ("test", per_class // 5)):
            y = np.repeat(np.arange(10, dtype=np.uint8), n)
            rng.shuffle(y)
            arrays[f"x_{part}"] = rng.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8)
            arrays[f"y_{part}"] = y
        np.savez(path, **arrays)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    return Path(path)
