"""Plain functions and constants shared by many test files (helper, not a test).
Fixtures built on them are in ``conftest.py``."""
from __future__ import annotations

import hashlib
from pathlib import Path

from evonas.evaluate.base import Result

ROOT = Path(__file__).resolve().parents[1]  # the checkout
SHARED_DATA = ROOT.parent / "shared" / "data"  # real data beside the checkout (CI has it, a clone not)
REAL_NB201 = SHARED_DATA / "nb201_cifar10.csv"
TIMING = ("started_s", "finished_s")

# a deterministic stand-in fitness for NB201 cells: op scores weighted by edge
SCORE = {"none": 0.0, "skip_connect": 1.0, "nor_conv_1x1": 2.0, "nor_conv_3x3": 3.0, "avg_pool_3x3": 0.5}


def nb201_fitness(ops) -> float:
    return sum(SCORE[o] * (1 + 0.1 * i) for i, o in enumerate(ops))


def nb201_score(job) -> Result:
    """``FunctionEvaluator`` function: ``nb201_fitness`` and a params count that
    grows with the ops (a second objective for nsga2)."""
    ops = job.genome.ops
    return Result(job.id, "ok", fitness=nb201_fitness(ops), params=int(sum(SCORE[o] for o in ops) * 100))


def untimed(rows, drop=TIMING):
    """Lineage rows without the wall-clock columns (which differ between runs)."""
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def tree_hash(root: Path) -> dict:
    """{relative path: sha256} of every file under root ("dir" for directories)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(Path(root).rglob("*"))}
