"""``--backend ray [--ray-address ADDR]``: the same ``evaluate_job`` as Ray tasks.

Each trial is one task asking for 1 CPU and, on GPUs, ``1/trials_per_device`` of a
GPU, so Ray packs K trials per GPU (it sets ``CUDA_VISIBLE_DEVICES`` for the task,
hence the device inside is ``cuda``). Ray reuses its worker processes, and each
keeps the last loaded data set (keyed by ``DataSpec`` and device), so the data is
loaded once per worker process, not once per trial. At most ``slots`` tasks are
submitted at a time; the rest wait here, which keeps per-trial timeouts honest.

A task whose process dies (or that hits a CUDA fault, which ends its process) is
retried by Ray up to ``max_retries`` times; any other error becomes a failed Result.

Placement is the cluster's, not the driver's: ``cluster_slots`` reads
``ray.cluster_resources()``, so a driver without a GPU can run ``--devices cuda
--trials-per-device 2`` on a cluster with GPUs (2 tasks per cluster GPU), and
``--devices cpu`` with ``--workers 0`` runs one task per cluster CPU.
"""
from __future__ import annotations

import os
import time
from collections import deque
from typing import Optional

from ..errors import ConfigError
from .base import Job, Result
from .data import Data, DataSpec
from .devices import gpu_fraction, select_slots
from .train import CudaFault, TrainConfig, evaluate_job

_CACHE: dict = {}  # in each Ray worker process: (DataSpec, device) -> Data
_OWNED = [False]  # the driver's Ray was started by connect() (so close() shuts it down)


def connect(address: Optional[str] = None, **init_kwargs) -> None:
    """Join the Ray cluster at ``address`` (None: start a local instance) unless this
    process already is connected; ConfigError naming the address when it cannot."""
    try:
        import ray
    except ImportError:
        raise ConfigError("ray", "--backend", "ray", "Ray is not installed (pip install 'evonas[ray]')") from None
    if ray.is_initialized():
        return
    if address:
        _check_reachable(address)
    if address is None:  # a local instance: no dashboard, no worker logs on our terminal
        init_kwargs = {"include_dashboard": False, "log_to_driver": False, **init_kwargs}
    try:
        ray.init(address=address, **init_kwargs)
    except Exception as e:  # wrong address, cluster down: one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError("ray", "--ray-address", address or "(local)", f"cannot connect/start Ray: {first}") from None
    _OWNED[0] = True


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """TCP-connect to ``[ray://]HOST:PORT`` first: ``ray.init`` retries an unreachable
    GCS for minutes, a user with a typo deserves one line at once ("auto" is Ray's
    own lookup and is left to it)."""
    import socket
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if address == "auto":
        return
    if not sep or not port.isdigit():
        raise ConfigError("ray", "--ray-address", address, "expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConfigError("ray", "--ray-address", address,
                          f"cannot reach Ray there ({e.strerror or type(e).__name__})") from None


def cluster_slots(devices: str = "auto", workers: int = 0, trials_per_device: int = 1,
                  resources: Optional[dict] = None) -> list[str]:
    """Slots for the connected Ray cluster (``resources``: ``ray.cluster_resources()``
    unless given): ``auto`` is ``cuda`` when the cluster has GPUs; ``workers`` 0 on
    CPU means one task per cluster CPU."""
    if resources is None:
        import ray
        resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    spec = devices.strip().lower() if isinstance(devices, str) else devices
    if spec not in ("auto", "cpu") and gpus == 0:
        raise ConfigError("ray", "--devices", devices, f"the Ray cluster has no GPUs (resources: "
                          f"{cpus} CPU, 0 GPU); use --devices cpu")
    if spec == "cpu" or (spec == "auto" and gpus == 0):
        return select_slots("cpu", workers or cpus, gpu_count=gpus)
    return select_slots(devices, workers, trials_per_device, gpu_count=gpus)


def _cached_data(spec: DataSpec, device: str) -> Data:
    key = (spec, device)
    if key not in _CACHE:
        _CACHE.clear()  # keep one data set per process
        _CACHE[key] = spec.load().to(device)
    return _CACHE[key]


def run_trial(job: Job, spec: DataSpec, cfg: TrainConfig, device: str) -> Result:
    """Body of the Ray task (plain function, so it is testable without Ray)."""
    data = _cached_data(spec, device)
    try:
        res = evaluate_job(job, data, cfg, device, worker=f"ray-pid{os.getpid()}@{device}")
    except CudaFault:
        os._exit(3)  # poisoned CUDA context: let Ray retry on a fresh process
    if device != "cpu":  # as the local workers: drop the trial's module, then return its memory
        import gc

        import torch
        gc.collect()
        torch.cuda.empty_cache()
    return res


class RayEvaluator:
    """Evaluator protocol on Ray. ``slots``: device strings from
    ``cluster_slots`` (their number bounds the trials in flight; GPU slots set the
    GPU fraction per trial). Uses the running Ray instance, or starts/joins one with
    ``connect(address, **init_kwargs)`` and then shuts it down on ``close``. ``timeout_s``: hard limit per trial from its launch (the task is
    cancelled and the trial failed with 'timeout')."""

    def __init__(self, data: DataSpec, cfg: TrainConfig, slots: list[str], address: Optional[str] = None,
                 max_retries: int = 2, timeout_s: Optional[float] = None, init_kwargs: Optional[dict] = None):
        if not slots:
            raise ConfigError("ray", "slots", slots, "need at least one slot")
        connect(address, **(init_kwargs or {}))
        import ray
        self._ray = ray
        self.slots, self.spec, self.cfg = len(slots), data, cfg
        gpu = gpu_fraction(slots)
        self.device = "cuda" if gpu else "cpu"
        if timeout_s is None and cfg.timeout_s is not None:
            timeout_s = 1.5 * cfg.timeout_s + 10.0
        self.timeout_s = timeout_s
        self._task = ray.remote(run_trial).options(num_cpus=1, num_gpus=gpu, max_retries=max_retries)
        self._queue: deque[Job] = deque()
        self._running: dict = {}  # ObjectRef -> (job, launch time)

    def submit(self, job: Job) -> None:
        self._queue.append(job)
        self._launch()

    def poll(self, timeout: float | None = None) -> list[Result]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._launch()
            if not self._running:
                return []
            wait = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            ready, _ = self._ray.wait(list(self._running), num_returns=1, timeout=wait)
            if ready:
                ready, _ = self._ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
            out = [self._collect(ref) for ref in ready] + self._expire()
            if out or (deadline is not None and time.monotonic() >= deadline):
                self._launch()
                return out

    def cancel_all(self) -> list[int]:
        ids = [j.id for j in self._queue] + [j.id for j, _ in self._running.values()]
        self._queue.clear()
        for ref in list(self._running):
            self._ray.cancel(ref, force=True)
        self._running.clear()
        return ids

    def close(self) -> None:
        self.cancel_all()
        if _OWNED[0] and self._ray.is_initialized():
            self._ray.shutdown()
            _OWNED[0] = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _launch(self) -> None:
        while self._queue and len(self._running) < self.slots:
            job = self._queue.popleft()
            ref = self._task.remote(job, self.spec, self.cfg, self.device)
            self._running[ref] = (job, time.monotonic())

    def _collect(self, ref) -> Result:
        job, _ = self._running.pop(ref)
        try:
            return self._ray.get(ref)
        except Exception as e:  # task error, worker crashed beyond retries, ...
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            return Result(job.id, "failed", reason=f"ray: {type(e).__name__}: {first}", worker="ray")

    def _expire(self) -> list[Result]:
        if self.timeout_s is None:
            return []
        now, out = time.monotonic(), []
        for ref, (job, t0) in list(self._running.items()):
            if now - t0 > self.timeout_s:
                self._ray.cancel(ref, force=True)
                del self._running[ref]
                out.append(Result(job.id, "failed", worker="ray",
                                  reason=f"timeout: task cancelled after {now - t0:.1f} s (limit {self.timeout_s:g} s)"))
        return out
