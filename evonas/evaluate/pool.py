"""One slot-pool core for every execution backend, and the backend registry.

``SlotPool`` implements the ``Evaluator`` protocol over persistent workers, one per
slot (a device string). It owns what all backends share: the queue, dispatch of
one trial per idle worker, retries of trials whose worker died or hit a CUDA
fault, the hard per-trial timeout, replacement of dead, faulty or overdue workers,
start-up failures, and cancellation. A backend only adds a ``Transport``: how to
start a worker, hand it a job, wait for what its workers report, and kill one.
The worker side is the same for all backends (``trial.TrialRunner``).

Transport events, from ``Transport.wait``, as ``(kind, handle, payload)``:

* ``("ready", h, None)``: the worker has loaded its data and takes jobs;
* ``("result", h, Result)``: its trial ended (ok or failed);
* ``("fault", h, reason)``: a CUDA fault; the worker is replaced, the trial retried;
* ``("died", h, why)``: the worker is gone (mid-trial: retried; while starting:
  counted, and more than ``Retries.START_DEATHS`` such deaths raise WorkerError);
* ``("init_error", h, why)``: the worker says it cannot start (e.g. the data set
  does not load): WorkerError at once, retrying would fail the same way.

Backends register with ``@BACKENDS.class_decorator(name, "backend_name")`` and
provide two classmethods: ``placement(devices, workers, trials_per_device,
**options)`` (the run's slots; it checks the options it knows, before the run
directory exists, and takes any others, a subclass's) and ``open(data, cfg, slots, **options)`` (the evaluator). The keyword
parameters of ``open`` are the backend's options: the config section
``backend.<name>`` and the flags ``--backend.NAME.KEY`` (``config_sections``).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from ..errors import ConfigError, EvonasError
from ..registry import Registry
from .base import Job, Result

BACKENDS: Registry[type] = Registry("backend")
_TICK = 0.2  # seconds between liveness/timeout checks while waiting


class WorkerError(EvonasError):
    """Workers cannot start (e.g. the data set does not load): not a trial failure."""


class Retries:
    """The attempts of each trial whose worker died (re-run up to ``max_retries``
    times, 0..10) and the workers that died while starting (more than 3: give up).
    Also the hard per-trial limit, from ``cfg.timeout_s`` unless given."""
    START_DEATHS = 3

    def __init__(self, where: str, max_retries: int, cfg, timeout_s: Optional[float]):
        self.check(where, max_retries)
        self.max_retries, self.attempts, self.start_deaths = max_retries, {}, 0
        if timeout_s is None and cfg.timeout_s is not None:
            timeout_s = 1.5 * cfg.timeout_s + 10.0  # the trainer's own limit fires first
        self.timeout_s = timeout_s

    @staticmethod
    def check(where: str, max_retries: Any) -> None:
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or not 0 <= max_retries <= 10:
            raise ConfigError(where, "max_retries", max_retries, "must be an integer in 0..10")

    def again(self, job: Job, queue: deque) -> int:
        """The trial's worker died: requeue it (-> 0) or give up (-> attempts made)."""
        n = self.attempts.get(job.id, 0) + 1
        if n <= self.max_retries:
            self.attempts[job.id] = n
            queue.appendleft(job)
            return 0
        self.attempts.pop(job.id, None)
        return n

    def done(self, job_id: int) -> int:
        """The trial ended: forget it; -> attempts made (1 plus its retries)."""
        return self.attempts.pop(job_id, 0) + 1

    def start_died(self) -> bool:
        """A worker died while starting; True once that happened too often."""
        self.start_deaths += 1
        return self.start_deaths > self.START_DEATHS


def check_options(where: str, max_retries: Any = 2, startup_timeout_s: Any = None) -> None:
    """The slot pool's own options, as every backend passes them on (``placement``
    checks them before the run directory exists; ``SlotPool`` again when built)."""
    Retries.check(where, max_retries)
    if startup_timeout_s is not None and (isinstance(startup_timeout_s, bool) or not isinstance(
            startup_timeout_s, (int, float)) or not 0 < startup_timeout_s < float("inf")):
        raise ConfigError(where, "startup_timeout_s", startup_timeout_s,
                          "must be a number of seconds > 0, or null for no limit")


class Transport(Protocol):
    kind: str  # 'worker' or 'actor', in failure reasons

    def start(self, device: str) -> Any: ...          # a handle; does not wait for ready
    def send(self, handle: Any, job: Job) -> None: ...  # OSError: gone; TypeError etc.: unpicklable
    def wait(self, handles: list, timeout: float) -> list[tuple]: ...
    def kill(self, handle: Any) -> None: ...
    def stop(self, handles: list) -> None: ...        # graceful end of idle workers, then kill
    def label(self, handle: Any) -> str: ...


@dataclass
class _Slot:
    device: str
    handle: Any
    ready: bool = False
    job: Optional[Job] = None
    started: float = 0.0
    spawned: float = field(default_factory=time.monotonic)


class SlotPool:
    """Evaluator over ``transport``'s workers, one per entry of ``slots``.
    ``timeout_s``: hard wall-clock limit per trial (default 1.5 x ``cfg.timeout_s``
    + 10 s, None when that is None); ``max_retries``: re-runs of a trial whose
    worker died (0..10); ``startup_timeout_s``: a worker not ready by then raises."""

    def __init__(self, transport: Transport, slots: list[str], cfg, where: str, max_retries: int = 2,
                 timeout_s: Optional[float] = None, startup_timeout_s: Optional[float] = 600.0):
        if not slots:
            raise ConfigError(where, "slots", slots, "need at least one worker slot")
        check_options(where, max_retries, startup_timeout_s)
        self.retries = Retries(where, max_retries, cfg, timeout_s)
        self.timeout_s, self.startup_timeout_s = self.retries.timeout_s, startup_timeout_s
        self.slots, self.cfg, self.transport = len(slots), cfg, transport
        self._slots: list[_Slot] = []
        self._queue: deque[Job] = deque()
        self._done: list[Result] = []
        self._closed = False
        for dev in slots:
            self._slots.append(_Slot(dev, transport.start(dev)))

    # --- Evaluator protocol ---
    def submit(self, job: Job) -> None:
        if self._closed:
            raise WorkerError(f"{type(self).__name__}.submit after close()")
        self._queue.append(job)
        self._dispatch()

    def poll(self, timeout: float | None = None) -> list[Result]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._dispatch()
            if not self._done and (self._queue or self._busy()):
                left = _TICK if deadline is None else max(0.0, min(_TICK, deadline - time.monotonic()))
                self._pump(left)
            self._expire()
            if self._done or (not self._queue and not self._busy()):
                self._dispatch()  # a freed worker starts its next trial before the driver returns
                out, self._done = self._done, []
                return out
            if deadline is not None and time.monotonic() >= deadline:
                return []

    def cancel_all(self) -> list[int]:
        ids = [j.id for j in self._queue] + [s.job.id for s in self._slots if s.job]
        self._queue.clear()
        for s in self._slots:
            if s.job is not None:
                self._replace(s)  # a running trial cannot be interrupted: renew its worker
        return ids

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        idle = [s.handle for s in self._slots if s.job is None]
        for s in self._slots:
            if s.job is not None:
                self.transport.kill(s.handle)
        self.transport.stop(idle)
        self._slots.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until every worker has loaded its data (True) or ``timeout`` s passed."""
        end = None if timeout is None else time.monotonic() + timeout
        while not all(s.ready for s in self._slots):
            if end is not None and time.monotonic() >= end:
                return False
            self._pump(_TICK)
            self._expire()
        return True

    def busy_handle(self, job_id: int) -> Any:
        """The transport's handle of the worker running ``job_id`` (None: not running)."""
        return next((s.handle for s in self._slots if s.job is not None and s.job.id == job_id), None)

    # --- internals ---
    def _busy(self) -> bool:
        return any(s.job is not None for s in self._slots)

    def _dispatch(self) -> None:
        for s in self._slots:
            if not self._queue:
                return
            if s.ready and s.job is None:
                job = self._queue.popleft()
                try:
                    self.transport.send(s.handle, job)
                except (OSError, ValueError, EOFError):  # died meanwhile: its 'died' event follows
                    self._queue.appendleft(job)
                    continue
                except Exception as e:  # e.g. a lambda in a genome: this job, not the worker
                    self._done.append(Result(job.id, "failed", worker=self.transport.label(s.handle),
                                             reason=f"job cannot be sent to a {self.transport.kind}: {e}"))
                    continue
                s.job, s.started = job, time.monotonic()

    def _pump(self, wait: float) -> None:
        by_handle = {id(s.handle): s for s in self._slots}
        for kind, handle, payload in self.transport.wait([s.handle for s in self._slots], wait):
            s = by_handle.get(id(handle))
            if s is not None and s in self._slots:
                self._handle(s, kind, payload)

    def _handle(self, s: _Slot, kind: str, payload) -> None:
        if kind == "ready":
            s.ready = True
        elif kind == "result" and s.job is not None and payload.id == s.job.id:
            payload.attempts = self.retries.done(s.job.id)
            self._done.append(payload)
            s.job = None
        elif kind == "init_error":
            self.close()
            raise WorkerError(f"{self.transport.kind} on {s.device} could not start: {payload}")
        elif kind in ("died", "fault"):
            job, label = s.job, self.transport.label(s.handle)
            if not s.ready and kind == "died" and self.retries.start_died():
                self.close()
                raise WorkerError(f"{self.transport.kind}s on {s.device} cannot start "
                                  f"({self.retries.start_deaths} tries): {payload}")
            self._replace(s)
            if job is not None:
                n = self.retries.again(job, self._queue)
                if n:
                    self._done.append(Result(job.id, "failed", worker=label, attempts=n,
                                             reason=f"{payload}; gave up after {n} attempts"))

    def _expire(self) -> None:
        """Kill overdue trials' workers (failed 'timeout'); a worker that never gets
        ready raises."""
        now = time.monotonic()
        for s in list(self._slots):
            if s.job is not None and self.timeout_s is not None and now - s.started > self.timeout_s:
                job, label = s.job, self.transport.label(s.handle)
                self._replace(s)
                self._done.append(Result(job.id, "failed", worker=label, attempts=self.retries.done(job.id),
                                         reason=f"timeout: {self.transport.kind} killed after "
                                         f"{now - s.started:.1f} s (limit {self.timeout_s:g} s)"))
            elif not s.ready and self.startup_timeout_s is not None and now - s.spawned > self.startup_timeout_s:
                self.close()
                raise WorkerError(f"{self.transport.kind} on {s.device} not ready after "
                                  f"{self.startup_timeout_s:g} s")

    def _replace(self, s: _Slot) -> None:
        """Kill ``s``'s worker (if alive) and start a fresh one on the same device."""
        self.transport.kill(s.handle)
        i = self._slots.index(s)
        if self._closed:
            del self._slots[i]
        else:
            self._slots[i] = _Slot(s.device, self.transport.start(s.device))
