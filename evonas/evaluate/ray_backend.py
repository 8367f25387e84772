"""``--backend ray [--backend.ray.address ADDR]``: the slot-pool core over Ray actors (a cluster, or a local Ray).

One persistent actor per slot, asking Ray for 1 CPU and, on GPUs,
``1/trials_per_device`` of a GPU, so Ray packs K actors per GPU. An actor keeps
its GPU for life (Ray sets ``CUDA_VISIBLE_DEVICES`` for it, hence the device
inside is ``cuda``), so CUDA is initialised and the data set loaded onto the
device once per actor, not once per trial -- plain GPU *tasks* would get a new
process per call (Ray's ``max_calls=1`` default for GPU tasks) or, reused, one
whose CUDA context belongs to another GPU. The driver hands each idle actor one
trial at a time, which keeps per-trial timeouts honest.

Faults are the core's (``pool.SlotPool``), as for the local pool: an actor that
dies, or reports a CUDA fault (with its reason), is replaced and its trial
retried up to ``max_retries`` times; a trial over ``timeout_s`` gets its actor
killed and replaced and is recorded failed; actors that keep dying in their
constructor (e.g. the data set does not load there) raise ``WorkerError`` after
4 tries. The actor runs the same ``trial.TrialRunner`` as a local worker, so
its results carry the same ``gpu_mem_mb``/``gpu_reserved_mb``.

Placement is the cluster's, not the driver's: ``cluster_slots`` reads
``ray.cluster_resources()``, so a driver without a GPU can run ``--devices cuda
--trials-per-device 2`` on a cluster with GPUs (2 trials per cluster GPU), and
``--devices cpu`` with ``--workers 0`` runs one actor per cluster CPU.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import ConfigError
from .base import Job, Result
from .data import DataSpec
from .devices import gpu_fraction, select_slots
from .pool import BACKENDS, SlotPool, check_options
from .train import TrainConfig

_OWNED = [False]  # the driver's Ray was started by connect() (so close() shuts it down)


def connect(address: Optional[str] = None, **init_kwargs) -> None:
    """Join the Ray cluster at ``address`` (None: start a local instance) unless this
    process already is connected; ConfigError naming the address when it cannot."""
    try:
        import ray
    except ImportError:
        raise ConfigError("ray", "--backend", "ray", "Ray is not installed (pip install 'evonas[ray]')") from None
    if address is not None and not isinstance(address, str):
        raise ConfigError("backend.ray", "address", address, "must be a string (HOST:PORT, ray://HOST:PORT, "
                          "auto, or '' to start a local Ray)")
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
        raise ConfigError("backend.ray", "address", address or "(local)", f"cannot connect/start Ray: {first}") from None
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
        raise ConfigError("backend.ray", "address", address, "expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise ConfigError("backend.ray", "address", address,
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
    a ``TrialRunner`` (the data on ``device``, loaded once), one job per ``run``."""

    def __init__(self, spec: DataSpec, cfg: TrainConfig, device: str, threads: int = 1):
        from .trial import TrialRunner
        # the actor holds num_cpus=1 on its node, GPU or not
        self.runner = TrialRunner(spec, cfg, device, threads, name=f"ray-pid{os.getpid()}@{device}")

    def ready(self) -> str:
        return self.runner.name

    def run(self, job: Job) -> tuple[str, object]:
        """-> ("result", Result) or ("fault", reason); after a fault the driver
        kills this actor (its CUDA context may be unusable) and retries elsewhere."""
        kind, res = self.runner.run(job)
        if kind == "result":
            self.runner.cleanup(res)
        return kind, res


@dataclass(eq=False)
class _Actor:
    actor: Any
    device: str
    pending: Any = None  # the ObjectRef awaited: ready() first, then each run()
    job: Optional[Job] = None
    label: str = "ray"


class ActorTransport:
    """Ray actors, one call in flight each: ``ready()`` once, then ``run(job)``."""
    kind = "actor"

    def __init__(self, ray, spec: DataSpec, cfg: TrainConfig, gpu: float):
        self._ray, self.spec, self.cfg = ray, spec, cfg
        self._cls = ray.remote(TrialActor).options(num_cpus=1, num_gpus=gpu, max_restarts=0)
        self.device = "cuda" if gpu else "cpu"  # inside the actor: its GPU is the only visible one

    def start(self, device: str) -> _Actor:
        actor = self._cls.remote(self.spec, self.cfg, self.device, self.cfg.threads or 1)
        return _Actor(actor, self.device, actor.ready.remote())

    def send(self, h: _Actor, job: Job) -> None:
        try:
            ref = h.actor.run.remote(job)
        except Exception as e:  # the job does not serialise: fail it, the actor is fine
            raise TypeError(f"{type(e).__name__}: {_first_line(e)}") from None
        h.pending, h.job = ref, job

    def label(self, h: _Actor) -> str:
        return h.label

    def wait(self, handles: list, timeout: float) -> list[tuple]:
        refs = {h.pending: h for h in handles if h.pending is not None}
        if not refs:
            time.sleep(timeout)
            return []
        ready, _ = self._ray.wait(list(refs), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = self._ray.wait(list(refs), num_returns=len(refs), timeout=0)
        return [self._event(refs[ref], ref) for ref in ready]

    def _event(self, h: _Actor, ref) -> tuple:
        job, h.pending, h.job = h.job, None, None
        try:
            value = self._ray.get(ref)
        except self._ray.exceptions.RayActorError as e:  # the process died (or its constructor failed)
            return "died", h, (f"ray actor died: {_cause(e)}" if job is not None else _cause(e))
        except Exception as e:  # e.g. a job the actor cannot deserialise: the actor itself is fine
            if job is None:
                return "died", h, _cause(e)
            return "result", h, Result(job.id, "failed", worker=h.label,
                                       reason=f"ray: {type(e).__name__}: {_first_line(e)}")
        if job is None:
            h.label = value
            return "ready", h, None
        return value[0], h, value[1]

    def kill(self, h: _Actor) -> None:
        try:
            self._ray.kill(h.actor, no_restart=True)
        except Exception:  # already dead
            pass

    def stop(self, handles: list) -> None:
        for h in handles:
            self.kill(h)


@BACKENDS.class_decorator("ray", "backend_name")
class RayEvaluator(SlotPool):
    """Evaluator protocol on Ray actors. ``slots``: device strings from
    ``cluster_slots`` (one actor each; GPU slots set the GPU fraction per actor).
    Uses the running Ray instance, or starts/joins one with ``connect(address,
    **init_kwargs)`` and then shuts it down on ``close``. ``timeout_s``: hard limit
    per trial (default 1.5 x ``cfg.timeout_s`` + 10 s); ``max_retries``: re-runs of
    a trial whose actor died (0..10)."""

    def __init__(self, data: DataSpec, cfg: TrainConfig, slots: list[str], address: Optional[str] = None,
                 max_retries: int = 2, timeout_s: Optional[float] = None, init_kwargs: Optional[dict] = None,
                 startup_timeout_s: Optional[float] = None):
        if not slots:
            raise ConfigError("ray", "slots", slots, "need at least one slot")
        check_options("ray", max_retries, startup_timeout_s)  # bad arguments fail before Ray starts
        connect(address, **(init_kwargs or {}))
        import ray
        self._ray, self.spec = ray, data
        transport = ActorTransport(ray, data, cfg, gpu_fraction(slots))
        self.device = transport.device
        # start-up: a cluster may take long to place actors, so no limit by default
        super().__init__(transport, slots, cfg, "ray", max_retries, timeout_s, startup_timeout_s)

    @classmethod
    def placement(cls, devices: str, workers: int, trials_per_device: int, address: str = "",
                  max_retries: int = 2, startup_timeout_s: Optional[float] = None, **options) -> list[str]:
        """The cluster's devices, not this machine's; checks the options (``options``:
        those of a subclass's ``open``), then connects (or fails) now."""
        check_options("backend.ray", max_retries, startup_timeout_s)
        connect(address or None)
        return cluster_slots(devices, workers, trials_per_device)

    @classmethod
    def open(cls, data: DataSpec, cfg: TrainConfig, slots: list[str], address: str = "", max_retries: int = 2,
             startup_timeout_s: Optional[float] = None) -> "RayEvaluator":
        """Options (``backend.ray``): ``address`` of the cluster ('' = the running
        Ray, else start a local one), ``max_retries`` of a trial whose actor died,
        ``startup_timeout_s`` for the actors to be placed (null: no limit)."""
        return cls(data, cfg, slots, address=address or None, max_retries=max_retries,
                   startup_timeout_s=startup_timeout_s)

    def close(self) -> None:
        super().close()
        if _OWNED[0] and self._ray.is_initialized():
            self._ray.shutdown()
            _OWNED[0] = False


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
