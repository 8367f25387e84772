"""Training time per trial, NCHW-contiguous vs channels_last, for every genome type.

    python benchmarks/memory_format.py                     # CPU, 1 torch thread, CIFAR-10 subset
    python benchmarks/memory_format.py --threads 2 --genomes 6
    python benchmarks/memory_format.py --device cuda --precision bf16   # on a GPU

For each registered genome type, ``--genomes`` random genomes of its default space
(seeded) are trained for one epoch on ``--max-train`` images with each memory
format, alternating the order per genome so that neither format always runs
second (warm caches); the same seeds, so both formats train the same network on
the same batches. Prints the summed seconds per format, the ratio
t(contiguous) / t(channels_last) (> 1: channels_last is faster) and the mean
absolute difference of the two validation accuracies (numerics differ only by
summation order). This is the measurement behind ``memory_format=auto``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evonas.evaluate.base import Job  # noqa: E402
from evonas.evaluate.data import DataSpec  # noqa: E402
from evonas.evaluate.train import TrainConfig, evaluate_job  # noqa: E402
from evonas.genome import GENOMES  # noqa: E402

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10_5k1k.npz"
FORMATS = ("contiguous", "channels_last")


def measure(genome_type: str, data, n: int, seed: int, device: str, precision: str, batch: int) -> dict:
    rng = np.random.default_rng(seed)
    cls = GENOMES.get(genome_type)
    genomes = [cls.sample(rng) for _ in range(n)]
    secs, accs = {f: 0.0 for f in FORMATS}, {f: [] for f in FORMATS}
    for i, g in enumerate(genomes):
        for fmt in (FORMATS if i % 2 == 0 else FORMATS[::-1]):
            cfg = TrainConfig(batch_size=batch, precision=precision, memory_format=fmt)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            r = evaluate_job(Job(i, g, seed=seed + i), data, cfg, device)
            secs[fmt] += time.perf_counter() - t
            accs[fmt].append(r.fitness if r.status == "ok" else float("nan"))
    diff = np.nanmean(np.abs(np.array(accs["contiguous"]) - np.array(accs["channels_last"])))
    return {"type": genome_type, **secs, "ratio": secs["contiguous"] / secs["channels_last"], "acc_diff": diff}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=f"npz:{SHARED_CIFAR}" if SHARED_CIFAR.exists() else "digits")
    ap.add_argument("--max-train", type=int, default=1000)
    ap.add_argument("--genomes", type=int, default=4, help="random genomes per type")
    ap.add_argument("--types", default=",".join(GENOMES.names()), help="genome types, comma-separated")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: what each of 2 workers gets)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    data = DataSpec(a.dataset, seed=a.seed, max_train=a.max_train).load().to(a.device)
    print(f"{a.dataset} ({len(data.y_train)} train), {a.genomes} genomes per type, 1 epoch, batch "
          f"{a.batch_size}, {a.device}, {a.precision}, {a.threads} thread(s)")
    print(f"{'genome':12} {'contiguous s':>12} {'channels_last s':>15} {'ratio':>6} {'|acc diff|':>10}")
    for t in [x for x in a.types.split(",") if x]:
        r = measure(t, data, a.genomes, a.seed, a.device, a.precision, a.batch_size)
        print(f"{r['type']:12} {r['contiguous']:12.2f} {r['channels_last']:15.2f} {r['ratio']:6.2f} "
              f"{r['acc_diff']:10.2f}")


if __name__ == "__main__":
    main()
