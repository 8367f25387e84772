"""``--backend ray [--ray-address ADDR]``: the same ``evaluate_job`` in Ray actors.

One persistent actor per slot, asking Ray for 1 CPU and, on GPUs,
``1/trials_per_device`` of a GPU, so Ray packs K actors per GPU. An actor keeps
its GPU for life (Ray sets ``CUDA_VISIBLE_DEVICES`` for it, hence the device
inside is ``cuda``), so CUDA is initialised and the data set loaded onto the
device once per actor, not once per trial -- plain GPU *tasks* would get a new
process per call (Ray's ``max_calls=1`` default for GPU tasks) or, reused, one
whose CUDA context belongs to another GPU. The driver hands each idle actor one
trial at a time, which keeps per-trial timeouts honest.

Faults, as in the local ``LocalPool``: an actor that dies (process killed, or a
CUDA fault, after which it exits on purpose) is replaced and its trial retried up
to ``max_retries`` times; a trial over ``timeout_s`` gets its actor killed and
replaced and is recorded failed; actors that keep dying in their constructor
(e.g. the data set does not load there) raise ``WorkerError`` after 4 tries.

Placement is the cluster's, not the driver's: ``cluster_slots`` reads
``ray.cluster_resources()``, so a driver without a GPU can run ``--devices cuda
--trials-per-device 2`` on a cluster with GPUs (2 trials per cluster GPU), and
``--devices cpu`` with ``--workers 0`` runs one actor per cluster CPU.
"""
from __future__ import annotations

import os
import time
from collections import deque
from typing import Optional

from ..errors import ConfigError
from .base import Job, Result
from .data import DataSpec
from .devices import gpu_fraction, select_slots
from .train import CudaFault, TrainConfig, evaluate_job
from .workers import Retries, WorkerError

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
    if address == "auto":
        return
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
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
    if isinstance(devices, str) and devices.strip().lower().startswith("cuda") and gpus == 0:
        raise ConfigError("ray", "--devices", devices, f"the Ray cluster has no GPUs (resources: "
                          f"{cpus} CPU, 0 GPU); use --devices cpu")
    return select_slots(devices, workers, trials_per_device, gpu_count=gpus, cpu_count=cpus, auto_cap=None)


class TrialActor:
    """Body of one Ray actor (a plain class, wrapped by ``ray.remote`` when used):
    loads the data onto ``device`` once, then trains one job per ``run`` call."""

    def __init__(self, spec: DataSpec, cfg: TrainConfig, device: str, threads: int = 1):
        import torch
        torch.set_num_threads(threads)  # the actor holds num_cpus=1 on its node, GPU or not
        self.cfg, self.device = cfg, device
        self.data = spec.load().to(device)

    def run(self, job: Job) -> Result:
        import gc

        import torch
        try:
            res = evaluate_job(job, self.data, self.cfg, self.device, worker=f"ray-pid{os.getpid()}@{self.device}")
        except CudaFault:
            os._exit(3)  # poisoned CUDA context: the driver replaces this actor and retries
        gc.collect()  # drop the trial's module, then hand its GPU memory back
        if self.device != "cpu":
            torch.cuda.empty_cache()
            res.extra["gpu_mem_mb"] = torch.cuda.memory_allocated() / 2**20
        return res


class RayEvaluator:
    """Evaluator protocol on Ray actors. ``slots``: device strings from
    ``cluster_slots`` (one actor each; GPU slots set the GPU fraction per actor).
    Uses the running Ray instance, or starts/joins one with ``connect(address,
    **init_kwargs)`` and then shuts it down on ``close``. ``timeout_s``: hard limit
    per trial (default 1.5 x ``cfg.timeout_s`` + 10 s); ``max_retries``: re-runs of
    a trial whose actor died (0..10)."""

    def __init__(self, data: DataSpec, cfg: TrainConfig, slots: list[str], address: Optional[str] = None,
                 max_retries: int = 2, timeout_s: Optional[float] = None, init_kwargs: Optional[dict] = None):
        if not slots:
            raise ConfigError("ray", "slots", slots, "need at least one slot")
        self.retries = Retries("ray", max_retries, cfg, timeout_s)
        connect(address, **(init_kwargs or {}))
        import ray
        self._ray = ray
        self.slots, self.spec, self.cfg = len(slots), data, cfg
        gpu = gpu_fraction(slots)
        self.device = "cuda" if gpu else "cpu"
        self.timeout_s = self.retries.timeout_s
        self._actor_cls = ray.remote(TrialActor).options(num_cpus=1, num_gpus=gpu, max_restarts=0)
        self._idle: list = [self._new_actor() for _ in slots]
        self._queue: deque[Job] = deque()
        self._running: dict = {}  # ObjectRef -> (job, actor, launch time)

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
            out = [r for r in (self._collect(ref) for ref in ready) if r is not None] + self._expire()
            if out or (deadline is not None and time.monotonic() >= deadline):
                self._launch()
                return out

    def cancel_all(self) -> list[int]:
        ids = [j.id for j in self._queue] + [j.id for j, _, _ in self._running.values()]
        self._queue.clear()
        for ref, (_, actor, _) in list(self._running.items()):
            self._replace(actor)  # actor calls cannot be force-cancelled: kill and renew the actor
        self._running.clear()
        return ids

    def close(self) -> None:
        self._queue.clear()
        for actor in self._idle + [a for _, a, _ in self._running.values()]:
            self._kill(actor)
        self._idle, self._running = [], {}
        if _OWNED[0] and self._ray.is_initialized():
            self._ray.shutdown()
            _OWNED[0] = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- internals ---
    def _new_actor(self):
        return self._actor_cls.remote(self.spec, self.cfg, self.device, self.cfg.threads or 1)

    def _kill(self, actor) -> None:
        try:
            self._ray.kill(actor, no_restart=True)
        except Exception:  # already dead
            pass

    def _replace(self, actor) -> None:
        self._kill(actor)
        self._idle.append(self._new_actor())

    def _launch(self) -> None:
        while self._queue and self._idle:
            job, actor = self._queue.popleft(), self._idle.pop()
            self._running[actor.run.remote(job)] = (job, actor, time.monotonic())

    def _collect(self, ref) -> Optional[Result]:
        job, actor, _ = self._running.pop(ref)
        try:
            res = self._ray.get(ref)
        except self._ray.exceptions.RayActorError as e:  # the process died: renew, retry the trial
            self._replace(actor)
            if getattr(e, "actor_init_failed", False):
                return self._start_failed(job, _cause(e))
            return self._retry(job, _cause(e))
        except Exception as e:  # e.g. a job that cannot be serialised: the actor itself is fine
            self._idle.append(actor)
            return Result(job.id, "failed", reason=f"ray: {type(e).__name__}: {_first_line(e)}", worker="ray")
        self._idle.append(actor)
        res.attempts = self.retries.done(job.id)
        return res

    def _retry(self, job: Job, why: str) -> Optional[Result]:
        n = self.retries.again(job, self._queue)
        return Result(job.id, "failed", worker="ray", attempts=n,
                      reason=f"ray actor died: {why}; gave up after {n} attempts") if n else None

    def _start_failed(self, job: Job, why: str) -> None:
        """An actor died in ``__init__`` (data set, CUDA): not the trial's fault, so
        it is queued again; past 3 such deaths the actors cannot start anywhere."""
        if self.retries.start_died():
            self.close()
            raise WorkerError(f"Ray actors on {self.device} cannot start ({self.retries.start_deaths} tries): {why}")
        self._queue.appendleft(job)

    def _expire(self) -> list[Result]:
        if self.timeout_s is None:
            return []
        now, out = time.monotonic(), []
        for ref, (job, actor, t0) in list(self._running.items()):
            if now - t0 > self.timeout_s:
                del self._running[ref]
                self._replace(actor)
                out.append(Result(job.id, "failed", worker="ray",
                                  reason=f"timeout: actor killed after {now - t0:.1f} s (limit {self.timeout_s:g} s)"))
        return out


def _cause(e: BaseException) -> str:
    """The innermost ``SomeError: message`` line of a Ray error's remote traceback
    (what actually went wrong inside the actor), else its first line."""
    for line in reversed(str(e).strip().splitlines()):
        head = line.strip().split(":", 1)[0]
        if head and head.replace(".", "").replace("_", "").isalnum() and head.endswith(("Error", "Exception")):
            return line.strip()
    return _first_line(e)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
