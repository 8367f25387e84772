"""Trials per minute of real training: 1 vs N CPU workers, and K trials per GPU.

    python benchmarks/parallel.py                       # CPU: 1 and 2 workers
    python benchmarks/parallel.py --workers 1,2,4 --trials 16 --dataset digits
    python benchmarks/parallel.py --gpu-k 1,2,4         # also CUDA, K trials per GPU
    python benchmarks/parallel.py --ray 2               # also 2 Ray actors (local Ray)
    python benchmarks/parallel.py --workers 1 --trials 50 --dataset digits   # leak check

Every configuration trains the same list of random NB201 genomes (seeded) with the
same TrainConfig in a fresh ``LocalPool``; worker start-up and one warm-up trial
per worker are excluded from the timed part (they happen once per search). On
CUDA the torch memory still allocated in the worker after each trial
(``gpu_mem_mb``) gives "gmem@5" vs "gmem@end" (MB): equal means no leak between
trials; ``nvidia-smi`` is sampled every 0.25 s during the timed part for the mean
GPU utilisation ("util %") and the peak device memory in use ("smi peak MB"). On
every device the resident memory (RSS) of the worker processes is sampled after
each result: "rss@5" vs "rss@end" (MB, summed over workers) is the host-side leak
check. Use ``--trials 50`` for the issue's 5-vs-50 leak check.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evonas.config import MEMORY_FORMATS, PRECISIONS  # noqa: E402
from evonas.evaluate.base import Job  # noqa: E402
from evonas.evaluate.data import DataSpec  # noqa: E402
from evonas.evaluate.devices import parse_devices  # noqa: E402
from evonas.evaluate.train import TrainConfig  # noqa: E402
from evonas.evaluate.workers import LocalPool  # noqa: E402
from evonas.genome.nb201 import NB201Genome, NB201Space  # noqa: E402

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist_10k.npz"


class SmiSampler:
    """Samples ``nvidia-smi`` (utilisation %, memory used MiB of GPU ``index``) every
    ``every_s`` s in a thread, without touching CUDA in this process. Without
    nvidia-smi it records nothing (``summary()`` gives NaNs)."""

    def __init__(self, index: int = 0, every_s: float = 0.25):
        self.index, self.every_s, self.samples = index, every_s, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        cmd = ["nvidia-smi", f"--id={self.index}", "--query-gpu=utilization.gpu,memory.used",
               "--format=csv,noheader,nounits"]
        while not self._stop.is_set():
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout
            except (OSError, subprocess.SubprocessError):
                return
            self.samples += parse_smi(out)
            self._stop.wait(self.every_s)

    def summary(self) -> tuple[float, float]:
        """(mean utilisation %, peak memory used MiB)."""
        if not self.samples:
            return float("nan"), float("nan")
        return float(np.mean([u for u, _ in self.samples])), float(max(m for _, m in self.samples))


def parse_smi(text: str) -> list[tuple[float, float]]:
    """``"87, 1234\n"`` -> [(87.0, 1234.0)]; lines that are not two numbers are skipped."""
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        try:
            out.append((float(parts[0]), float(parts[1])))
        except (ValueError, IndexError):
            continue
    return out


def run(slots: list[str], spec: DataSpec, cfg: TrainConfig, genomes: list, backend: str = "local") -> dict:
    t0 = time.monotonic()
    if backend == "ray":
        from evonas.evaluate.ray_backend import RayEvaluator
        pool = RayEvaluator(spec, cfg, slots, init_kwargs={"num_cpus": len(slots)})
    else:
        pool = LocalPool(spec, cfg, slots)
    with pool:
        if backend == "local":
            pool.wait_ready()
        startup = time.monotonic() - t0  # Ray: actors still start during the warm-up below
        for i in range(len(slots)):  # warm-up: first-call overheads of each worker
            pool.submit(Job(-1 - i, genomes[0], seed=0))
        _drain(pool, len(slots))
        gpu = slots[0].startswith("cuda")
        with SmiSampler(int(slots[0].partition(":")[2] or 0)) if gpu else nullcontext() as smi:
            t1 = time.monotonic()
            for i, g in enumerate(genomes):
                pool.submit(Job(i, g, seed=i))
            results, rss = _drain(pool, len(genomes), sample=True)
            wall = time.monotonic() - t1
        util, smi_peak = smi.summary() if gpu else (float("nan"), float("nan"))
    ok = [r for r in results if r.status == "ok"]
    mem = [r.extra["gpu_mem_mb"] for r in sorted(results, key=lambda r: r.id) if "gpu_mem_mb" in r.extra]
    return {"slots": len(slots), "device": slots[0] if backend == "local" else f"ray-{slots[0]}",
            "startup_s": startup, "wall_s": wall,
            "per_min": 60 * len(results) / wall, "ok": len(ok), "n": len(results),
            "mean_acc": float(np.mean([r.fitness for r in ok])) if ok else float("nan"),
            "gmem5": mem[min(4, len(mem) - 1)] if mem else float("nan"),
            "gmem_end": mem[-1] if mem else float("nan"), "util": util, "smi_peak": smi_peak,
            "rss5": rss[min(4, len(rss) - 1)] if rss else float("nan"), "rss_end": rss[-1] if rss else float("nan")}


def _drain(pool, n, sample=False):
    """Collect ``n`` results; with ``sample``, also the workers' summed RSS (MB)
    after each result."""
    out, rss = [], []
    while len(out) < n:
        got = pool.poll(timeout=600)
        out += got
        if sample and hasattr(pool, "pids"):  # Ray actors' processes are Ray's: not sampled
            rss += [_rss_mb(pool.pids)] * len(got)
    return (out, rss) if sample else out


def _rss_mb(pids) -> float:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = f"npz:{SHARED_MNIST}" if SHARED_MNIST.exists() else "digits"
    ap.add_argument("--dataset", default=default)
    ap.add_argument("--max-train", type=int, default=2000, help="training samples per trial")
    ap.add_argument("--trials", type=int, default=8, help="timed trials per configuration")
    ap.add_argument("--workers", default="1x2,1x1,2x1",
                    help="CPU configurations to compare, WORKERS or WORKERSxTHREADS (default: one "
                         "worker with 2 torch threads, one with 1, two with 1 each)")
    ap.add_argument("--ray", type=int, default=0,
                    help="also N CPU actors (1 thread each) on a local Ray started here (0: off)")
    ap.add_argument("--gpu-k", default="", help="trials per GPU to compare, e.g. 1,2,4 (needs CUDA)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--C", type=int, default=8, help="NB201 stem channels")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", default="auto", choices=PRECISIONS,
                    help="as evonas.run --precision (auto: bf16 on CUDA, fp32 on CPU)")
    ap.add_argument("--memory-format", default="auto", choices=MEMORY_FORMATS)
    ap.add_argument("--threads", type=int, default=0,
                    help="torch threads per CPU worker (0: cores / workers; 1 on a busy machine)")
    a = ap.parse_args(argv)
    spec = DataSpec(a.dataset, root="data", seed=a.seed, max_train=a.max_train)
    rng = np.random.default_rng(a.seed)
    genomes = [NB201Genome.sample(rng, NB201Space(C=a.C, N=1)) for _ in range(a.trials)]
    cores = len(os.sched_getaffinity(0))
    print(f"dataset {a.dataset} (max_train {a.max_train}), {a.trials} trials of NB201 C={a.C} N=1, "
          f"{a.epochs} epoch(s), batch {a.batch_size}, precision {a.precision}, memory format "
          f"{a.memory_format}; {cores} CPU cores visible")
    rows = []
    for item in [x for x in a.workers.split(",") if x]:
        n, _, t = item.partition("x")
        n = int(n)
        threads = int(t) if t else (a.threads or max(1, cores // n))
        cfg = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, threads=threads, precision=a.precision,
                          memory_format=a.memory_format)
        rows.append({**run(parse_devices("cpu", workers=n), spec, cfg, genomes), "threads": threads})
    if a.ray:
        cfg = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, threads=1, precision=a.precision,
                          memory_format=a.memory_format)
        rows.append({**run(["cpu"] * a.ray, spec, cfg, genomes, "ray"), "threads": 1})
    for k in [int(x) for x in a.gpu_k.split(",") if x]:
        cfg = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, precision=a.precision,
                          memory_format=a.memory_format)
        rows.append(run(parse_devices("cuda:0", trials_per_device=k), spec, cfg, genomes))
    base = rows[0]["per_min"] if rows else 1.0
    print(f"{'device':8} {'slots':>5} {'threads':>7} {'startup s':>9} {'timed s':>8} {'trials/min':>10} {'speedup':>7} "
          f"{'ok':>5} {'val acc':>7} {'rss@5 MB':>8} {'rss@end':>8} {'gmem@5':>7} {'gmem@end':>8} "
          f"{'util %':>6} {'smi peak MB':>11}")
    for r in rows:
        print(f"{r['device']:8} {r['slots']:5d} {r.get('threads') or '-':>7} {r['startup_s']:9.1f} {r['wall_s']:8.1f} {r['per_min']:10.2f} "
              f"{r['per_min'] / base:7.2f} {r['ok']:2d}/{r['n']:<2d} {r['mean_acc']:7.2f} {r['rss5']:8.0f} {r['rss_end']:8.0f} "
              f"{r['gmem5']:7.1f} {r['gmem_end']:8.1f} {r['util']:6.1f} {r['smi_peak']:11.0f}")


if __name__ == "__main__":
    main()
