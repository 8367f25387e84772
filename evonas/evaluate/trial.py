"""The worker side of every backend: ``TrialRunner`` holds one worker's data on its
device and runs trial after trial (``run``), then cleans up after each (``cleanup``).

The local process pool and the Ray actors both call it, so a trial, its CUDA-fault
report and its memory figures are the same whatever transport carried the job.

Memory without a full collection per trial. A compiled candidate is a torch.fx
``GraphModule`` (a class made per instance, nodes pointing at their graph): it
lives in reference cycles, so only the cyclic collector frees it. A full
``gc.collect()`` in a process that imported torch walks ~300 000 objects
(125 ms on an idle core, issue 19), most of them torch's own and alive for
good. So the runner ``gc.freeze()``-s everything once it has loaded its data, and
after each trial collects (now only what the trial allocated: a few ms) and
freezes the survivors (lazily built caches of the first trials). RSS stays flat:
the trial's cycles are freed at every cleanup, and frozen objects still die by
reference counting.

``EVONAS_WORKER_GC=legacy`` restores the old per-trial full collection without
freezing. It exists only so that ``benchmarks/throughput.py`` can measure the
before/after figure side by side in one run.
"""
from __future__ import annotations

import gc
import os
from typing import Optional

from .base import Job, Result
from .data import DataSpec

GC_ENV = "EVONAS_WORKER_GC"


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc; 0.0 where absent)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


class TrialRunner:
    """One worker's trial loop body. ``device`` is a torch device string as seen
    inside the worker; ``threads``: torch CPU threads; ``name`` the worker label
    written into each Result."""

    def __init__(self, spec: DataSpec, cfg, device: str, threads: int, name: str):
        import torch
        torch.set_num_threads(threads)
        if device.startswith("cuda:"):
            torch.cuda.set_device(torch.device(device))
        self.cfg, self.device, self.name = cfg, device, name
        self.data = spec.load().to(device)
        self.legacy = os.environ.get(GC_ENV, "") == "legacy"
        if not self.legacy:
            gc.collect()
            gc.freeze()  # torch, numpy, the data set: never walked again

    def run(self, job: Job) -> tuple[str, object]:
        """-> ("result", Result) or ("fault", reason): a CUDA fault other than OOM,
        after which this process' CUDA context may be unusable (the pool replaces
        the worker and retries the trial elsewhere)."""
        from .train import CudaFault, evaluate_job
        try:
            return "result", evaluate_job(job, self.data, self.cfg, self.device, worker=self.name)
        except CudaFault as e:
            return "fault", f"CUDA fault: {e}"

    @property
    def on_gpu(self) -> bool:
        return self.device != "cpu"

    def cleanup(self, res: Optional[Result] = None) -> None:
        """Free the finished trial's module (and, on a GPU, hand its memory back to
        the device); record the device memory left over in ``res.extra``."""
        gc.collect()
        if not self.legacy:
            gc.freeze()
        if self.on_gpu:
            import torch
            torch.cuda.empty_cache()
            if res is not None:
                res.extra["gpu_mem_mb"] = torch.cuda.memory_allocated() / 2**20
                res.extra["gpu_reserved_mb"] = torch.cuda.memory_reserved() / 2**20
