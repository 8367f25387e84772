"""Placement: ``--devices``, ``--trials-per-device`` and ``--workers`` -> worker slots.

Each slot is one persistent worker process and one trial in flight, named by its
torch device string::

    parse_devices("cpu", workers=2)                        -> ["cpu", "cpu"]
    parse_devices("cuda", trials_per_device=2, gpu_count=2)
        -> ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]          (spread before stacking)
    parse_devices("cuda:1,3", gpu_count=4)                 -> ["cuda:1", "cuda:3"]
    parse_devices("cuda:1,cuda:3", gpu_count=4)            -> the same

``gpu_count`` defaults to ``torch.cuda.device_count()``; pass it to test without CUDA.
"""
from __future__ import annotations

import os
from typing import Optional

from ..errors import ConfigError


def parse_devices(devices: str = "cpu", trials_per_device: int = 1, workers: Optional[int] = None,
                  gpu_count: Optional[int] = None) -> list[str]:
    """Slots for ``devices`` (``cpu`` | ``cuda`` | ``cuda:I[,J...]``). CPU: ``workers``
    slots (default 1). GPUs: ``trials_per_device`` slots per listed GPU (1..64)."""
    if not isinstance(devices, str) or not devices.strip():
        raise ConfigError("devices", "--devices", devices, "use cpu, cuda or cuda:0,1")
    spec = devices.strip().lower()
    _positive("--trials-per-device", trials_per_device, 64)
    if spec == "cpu":
        n = 1 if workers is None else workers
        _positive("--workers", n, 1024)
        return ["cpu"] * n
    if workers is not None:
        raise ConfigError("devices", "--workers", workers,
                          "applies to --devices cpu; on GPUs use --trials-per-device")
    if spec != "cuda" and not spec.startswith("cuda:"):
        raise ConfigError("devices", "--devices", devices, "use cpu, cuda or cuda:0,1")
    count = _gpu_count() if gpu_count is None else gpu_count
    if count < 1:
        raise ConfigError("devices", "--devices", devices,
                          "CUDA requested but no GPU is visible (torch.cuda.device_count() == 0, "
                          f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}); "
                          "use --devices cpu")
    ids = list(range(count)) if spec == "cuda" else _indices(devices, spec[5:], count)
    return [f"cuda:{i}" for _ in range(trials_per_device) for i in ids]


def select_slots(devices: str = "auto", workers: int = 0, trials_per_device: int = 1,
                 gpu_count: Optional[int] = None, cpu_count: Optional[int] = None,
                 auto_cap: Optional[int] = 8) -> list[str]:
    """The run's slots from its config: ``auto`` is ``cuda`` when a GPU is visible,
    else ``cpu``; ``workers`` 0 means one CPU worker per core (at most ``auto_cap``;
    None: no cap) on CPU and ``trials_per_device`` per GPU on CUDA.
    ``gpu_count``/``cpu_count`` default to what this machine has; pass them to test
    without CUDA (or, for Ray, to place on a cluster's)."""
    count = _gpu_count() if gpu_count is None else gpu_count
    spec = devices.strip().lower() if isinstance(devices, str) else ""
    if spec == "auto":
        spec = "cuda" if count > 0 else "cpu"
    if spec == "cpu":
        cores = cpu_count or _cpu_count()
        return parse_devices("cpu", workers=workers or max(1, min(cores, auto_cap or cores)))
    return parse_devices(spec or devices, trials_per_device, workers or None, gpu_count=count)


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _indices(devices: str, text: str, count: int) -> list[int]:
    ids = []
    for part in text.split(","):
        part = part.strip()
        part = part[5:] if part.startswith("cuda:") else part  # cuda:0,cuda:1 == cuda:0,1
        if not part.isdigit():
            raise ConfigError("devices", "--devices", devices, f"GPU index {part!r} is not a number")
        i = int(part)
        if i >= count:
            raise ConfigError("devices", "--devices", devices,
                              f"GPU {i} does not exist ({count} visible: 0..{count - 1})")
        if i in ids:
            raise ConfigError("devices", "--devices", devices, f"GPU {i} listed twice")
        ids.append(i)
    return ids


def _positive(flag: str, v, hi: int) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= hi:
        raise ConfigError("devices", flag, v, f"must be an integer in 1..{hi}")


def _gpu_count() -> int:
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def cpu_threads(slots: list[str], cpu_count: Optional[int] = None) -> int:
    """Torch CPU threads per worker: the cores shared evenly among all workers, at
    least 1 (more threads than cores only adds contention between workers; GPU
    workers count too: 8 of them on 16 cores each defaulting to 16 threads would
    oversubscribe the host for their CPU-side work). ``OMP_NUM_THREADS``, when set
    (a cluster allocation, or several runs sharing one machine), caps it."""
    n = max(1, (cpu_count or _cpu_count()) // max(1, len(slots)))
    cap = os.environ.get("OMP_NUM_THREADS", "")
    return min(n, int(cap)) if cap.isdigit() and int(cap) >= 1 else n


def gpu_fraction(slots: list[str]) -> float:
    """GPU share per trial for schedulers that count resources (Ray): 1/K when K
    slots share a GPU, 0 on CPU."""
    gpus = [s for s in slots if s.startswith("cuda")]
    if not gpus:
        return 0.0
    per = max(gpus.count(d) for d in set(gpus))
    return 1.0 / per
