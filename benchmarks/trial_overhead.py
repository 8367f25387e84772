"""One trial through the evaluator vs a hand-written PyTorch loop, in one process.

    python benchmarks/trial_overhead.py                     # digits and the CIFAR-10 5k/1k subset
    python benchmarks/trial_overhead.py --datasets digits --genomes 6 --repeats 3

For each of ``--genomes`` random genomes (default space) and each data set,
alternately (the order flips every pair, so drift of a loaded machine falls on
both sides alike):

* evaluator: ``evaluate_job`` (decode, cost check, compile, train 1 epoch, score
  validation, save safetensors weights) on the data already in memory;
* hand loop: the same network compiled from the same seed, trained for the same
  epoch with ``torch.optim.SGD`` (same lr, momentum, Nesterov, weight decay),
  cosine schedule, same batch size and batch order, channels_last like the
  evaluator, then validation accuracy; nothing saved.

Printed: median wall seconds of each, and the median of the per-pair ratios
evaluator / hand loop (goal <= 1.15).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evonas.compile import compile_graph  # noqa: E402
from evonas.evaluate.base import Job  # noqa: E402
from evonas.evaluate.data import DataSpec  # noqa: E402
from evonas.evaluate.train import TrainConfig, evaluate_job  # noqa: E402
from evonas.genome import genome_type  # noqa: E402

CIFAR = ROOT / ".." / "shared" / "data" / "cifar10_5k1k.npz"


def hand_loop(genome, data, cfg: TrainConfig, seed: int) -> float:
    model = compile_graph(genome.decode(), data.input_shape, data.num_classes, seed=seed)
    model = model.to(memory_format=torch.channels_last)
    n = len(data.y_train)
    bs = min(cfg.batch_size, n)
    steps = max(1, n // bs) * cfg.epochs
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(n // bs):
            idx = perm[s * bs:(s + 1) * bs]
            x = data.x_train[idx].contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), data.y_train[idx]).backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        x = data.x_val.contiguous(memory_format=torch.channels_last)
        return 100.0 * float((model(x).argmax(1) == data.y_val).float().mean())


def measure(spec: str, genome: str, k: int, repeats: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    data = DataSpec(spec, "data", 0, 0.2).load()
    cls = genome_type(genome)
    rng = np.random.default_rng(0)
    cfg = TrainConfig(epochs=1, batch_size=64)
    ev_t, hand_t, ratios = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(k):
            g = cls.sample(rng)
            for rep in range(repeats):
                job = Job(i, g, seed=i, weights_out=str(Path(tmp) / f"{i}.safetensors"))
                times = {}
                for side in (("ev", "hand") if (i + rep) % 2 == 0 else ("hand", "ev")):
                    t0 = time.perf_counter()
                    if side == "ev":
                        r = evaluate_job(job, data, cfg)
                        if r.status != "ok":
                            raise SystemExit(f"trial failed: {r.reason}")
                    else:
                        hand_loop(g, data, cfg, i)
                    times[side] = time.perf_counter() - t0
                ev_t.append(times["ev"])
                hand_t.append(times["hand"])
                ratios.append(times["ev"] / times["hand"])
    return {"evaluator_s": statistics.median(ev_t), "hand_s": statistics.median(hand_t),
            "ratio": statistics.median(ratios), "pairs": len(ratios)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="digits,cifar", help="digits and/or cifar (the shared 5k/1k subset)")
    p.add_argument("--genome", default="tree")
    p.add_argument("--genomes", type=int, default=4)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    print("| data | genome | pairs | evaluator s (median) | hand loop s | ratio (median of pairs) |")
    print("|---|---|---|---|---|---|")
    for name in a.datasets.split(","):
        spec = "digits" if name == "digits" else f"npz:{CIFAR.resolve()}"
        if name != "digits" and not CIFAR.exists():
            print(f"| {name} | skipped: {CIFAR} not found | | | | |")
            continue
        r = measure(spec, a.genome, a.genomes, a.repeats, a.threads)
        print(f"| {name} | {a.genome} | {r['pairs']} | {r['evaluator_s']:.3f} | {r['hand_s']:.3f} | "
              f"{r['ratio']:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
