"""One command that exercises every device path of fitness evaluation and says PASS/FAIL.

    python benchmarks/gpu_check.py                  # cuda:0 if there is one, else cpu
    python benchmarks/gpu_check.py --device cpu --dataset digits --max-train 300   # CI smoke run

Meant as the first thing a session with a lent GPU runs (CI runs it on CPU, where
the CUDA-only checks say SKIP):

1. ``train``: one trial in the device's default mode (CUDA: bf16 autocast +
   channels_last) learns (val accuracy above 2x chance), and fp32 + contiguous on the
   same seed lands within 15 points of it.
2. ``release``: 8 trials in a row; the memory still allocated after each (CUDA:
   ``torch.cuda.memory_allocated``; CPU: bytes of live tensors) is the same after
   trial 2 and trial 8.
3. ``real-oom`` (CUDA only): with ``torch.cuda.set_per_process_memory_fraction``
   capping this process, a wide network at batch 512 hits a genuine CUDA OOM and the
   trial ends ok at a halved micro-batch, or failed with the OOM reason -- never a crash.
4. ``pool``: a ``LocalPool`` with 2 slots on the device runs 4 trials ok in 2
   persistent worker processes.
5. ``cuda-fault``: a CUDA error injected in a worker (``EVONAS_FAULT=...:cuda``)
   gets the worker replaced and the trial retried to ok.

Prints one line per check and exits 1 if any check failed.
"""
from __future__ import annotations

import argparse
import gc
import os
import warnings
import sys
import tempfile
import time
from pathlib import Path
from unittest.mock import patch

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evonas.evaluate.base import Job  # noqa: E402
from evonas.evaluate.data import DataSpec  # noqa: E402
from evonas.evaluate.train import TrainConfig, evaluate_job  # noqa: E402
from evonas.evaluate.workers import LocalPool  # noqa: E402
from evonas.genome.nb201 import NB201Genome, NB201Space  # noqa: E402

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10_5k1k.npz"
CELL = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "nor_conv_3x3")


def check_train(data, device, C):
    g = NB201Genome(CELL, NB201Space(C=C, N=1))
    auto = evaluate_job(Job(0, g, seed=0), data, TrainConfig(epochs=2, batch_size=64), device)
    fp32 = evaluate_job(Job(0, g, seed=0), data, TrainConfig(epochs=2, batch_size=64, precision="fp32",
                                                             memory_format="contiguous"), device)
    chance = 100.0 / data.num_classes
    ok = auto.status == fp32.status == "ok" and auto.fitness > 2 * chance and abs(auto.fitness - fp32.fitness) < 15
    return ok, f"default mode {auto.fitness:.1f}% vs fp32/contiguous {fp32.fitness:.1f}% ({auto.reason or 'ok'})"


def _allocated(device) -> int:
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        return torch.cuda.memory_allocated(device)
    with warnings.catch_warnings():  # isinstance() touches deprecated torch module attributes
        warnings.simplefilter("ignore")
        return sum(o.untyped_storage().nbytes() for o in gc.get_objects()
                   if isinstance(o, torch.Tensor) and o.device.type == "cpu")


def check_release(data, device, C):
    g, cfg, seen = NB201Genome(CELL, NB201Space(C=C, N=1)), TrainConfig(batch_size=64), []
    for i in range(8):
        evaluate_job(Job(i, g, seed=i), data, cfg, device)
        seen.append(_allocated(device))
    return seen[1] == seen[-1], f"allocated after trials 1..8 (MB): {[round(b / 2**20, 2) for b in seen]}"


def check_real_oom(data, device, _C):
    if not device.startswith("cuda"):
        return None, "needs CUDA"
    big = NB201Genome(("nor_conv_3x3",) * 6, NB201Space(C=128, N=3))
    free, total = torch.cuda.mem_get_info(device)
    used = torch.cuda.memory_allocated(device)
    torch.cuda.set_per_process_memory_fraction(min(1.0, (used + 1.5 * 2**30) / total), device)  # ~1.5 GiB more
    try:
        r = evaluate_job(Job(0, big, seed=0), data, TrainConfig(batch_size=512, max_macs=None,
                                                                max_params=None), device)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    halved = r.status == "ok" and r.extra.get("micro_batch", 512) < 512
    gave_up = r.status == "failed" and "out of memory" in r.reason
    return halved or gave_up, f"status {r.status}, micro-batch {r.extra.get('micro_batch', 512)}: {r.reason or '-'}"


def _pool_run(spec, device, n, C, env=None):
    with patch.dict(os.environ, env or {}):  # spawned workers read EVONAS_FAULT at import
        g = NB201Genome(CELL, NB201Space(C=C, N=1))
        with LocalPool(spec, TrainConfig(batch_size=64, threads=1), [device] * 2, startup_timeout_s=300) as pool:
            for i in range(n):
                pool.submit(Job(i, g, seed=i))
            out, end = [], time.monotonic() + 600
            while len(out) < n and time.monotonic() < end:
                out += pool.poll(timeout=5)
            return out


def check_pool(spec, device, C):
    out = _pool_run(spec, device, 4, C)
    workers = {r.worker for r in out}
    ok = len(out) == 4 and all(r.status == "ok" for r in out) and len(workers) == 2
    return ok, f"{sum(r.status == 'ok' for r in out)}/4 ok on {sorted(workers)}"


def check_cuda_fault(spec, device, C):
    with tempfile.TemporaryDirectory() as tmp:
        marker = os.path.join(tmp, "fired")
        out = _pool_run(spec, device, 2, C, {"EVONAS_FAULT": "worker_trial:2:cuda", "EVONAS_FAULT_ONCE": marker})
        fired = os.path.exists(marker)
    ok = fired and len(out) == 2 and all(r.status == "ok" for r in out)
    return ok, f"fault fired: {fired}; results {[r.status for r in out]}"


CHECKS = {"train": check_train, "release": check_release, "real-oom": check_real_oom,
          "pool": check_pool, "cuda-fault": check_cuda_fault}
NEEDS_SPEC = ("pool", "cuda-fault")  # worker processes load the data themselves


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda:0" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dataset", default=f"npz:{SHARED_CIFAR}" if SHARED_CIFAR.exists() else "digits")
    ap.add_argument("--max-train", type=int, default=2000)
    ap.add_argument("--C", type=int, default=16, help="NB201 stem channels of the test cell")
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(CHECKS))
    a = ap.parse_args(argv)
    spec = DataSpec(a.dataset, seed=0, max_train=a.max_train)
    data = spec.load().to(a.device)
    name = torch.cuda.get_device_name(a.device) if a.device.startswith("cuda") else "cpu"
    print(f"device {a.device} ({name}), torch {torch.__version__}, data {a.dataset} ({len(data.y_train)} train)")
    failed = 0
    for key, fn in CHECKS.items():
        if a.only and key not in a.only.split(","):
            continue
        t = time.monotonic()
        ok, detail = fn(spec if key in NEEDS_SPEC else data, a.device, a.C)
        word = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        failed += ok is False
        print(f"{word:4} {key:10} {time.monotonic() - t:6.1f} s  {detail}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
