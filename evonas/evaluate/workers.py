"""Evaluators that train candidates: ``LocalPool`` (persistent worker processes)
and ``InlineEvaluator`` (same code path, in-process; debugging and tests).

``LocalPool`` starts one process per slot (``devices.parse_devices``) with the
'spawn' context. Each worker loads the data set from its ``DataSpec`` and moves it
to its device once, then trains job after job (CUDA is initialised once per
worker); only the small ``Job`` and ``Result`` travel through the worker's own pipe.
Between trials the worker drops the model and empties the CUDA cache.

Failure handling, so that no work is lost and nothing hangs:

* a worker that dies (SIGKILL, segfault) or reports a CUDA fault is replaced and
  its trial is retried, at most ``max_retries`` times, then failed with the reason;
* a trial running longer than ``timeout_s`` wall seconds has its worker killed and
  replaced and comes back failed with reason 'timeout ...' (the trainer's own
  ``TrainConfig.timeout_s`` normally stops it earlier, cleanly);
* ``cancel_all``/``close`` kill busy workers; workers are daemonic and also exit
  when the parent process disappears, so no orphans are left behind.
"""
from __future__ import annotations

import gc
import multiprocessing as mp
import os
import pickle
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait as mp_wait
from typing import Optional, Union

from ..errors import ConfigError, EvonasError
from .base import FunctionEvaluator, Job, Result
from .data import Data, DataSpec
from .devices import cpu_threads
from .train import CudaFault, TrainConfig, evaluate_job

_TICK = 0.2  # seconds between liveness/timeout checks while waiting


class WorkerError(EvonasError):
    """Workers cannot start (e.g. the data set does not load): not a trial failure."""


class Retries:
    """What both pools (local processes, Ray actors) keep about dead workers: the
    attempts of each trial whose worker died (re-run up to ``max_retries`` times,
    0..10) and the workers that died while starting (more than 3: give up). Also
    the pools' hard per-trial limit, from ``cfg.timeout_s`` unless given."""
    START_DEATHS = 3

    def __init__(self, where: str, max_retries: int, cfg: TrainConfig, timeout_s: Optional[float]):
        if not isinstance(max_retries, int) or not 0 <= max_retries <= 10:
            raise ConfigError(where, "max_retries", max_retries, "must be an integer in 0..10")
        self.max_retries, self.attempts, self.start_deaths = max_retries, {}, 0
        if timeout_s is None and cfg.timeout_s is not None:
            timeout_s = 1.5 * cfg.timeout_s + 10.0  # the trainer's own limit fires first
        self.timeout_s = timeout_s

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


# --- the worker process ----------------------------------------------------------------

def _worker_main(wid: int, device: str, spec: DataSpec, cfg: TrainConfig, threads: int, conn) -> None:
    """Entry point of a worker process: load data once, then serve jobs until
    ``None`` or EOF. A CUDA fault is reported and ends the process (its context
    may be unusable); the pool replaces it."""
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    try:
        import torch
        torch.set_num_threads(threads)
        if device != "cpu":
            torch.cuda.set_device(torch.device(device))
        data = spec.load().to(device)
        conn.send(("ready", wid, os.getpid()))
    except BaseException as e:  # report why, one line; the pool raises WorkerError
        conn.send(("init_error", wid, f"{type(e).__name__}: {e}"))
        return
    name = f"w{wid}@{device}"
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            res = evaluate_job(job, data, cfg, device, worker=name)
        except CudaFault as e:
            conn.send(("fault", wid, job.id, str(e)))
            os._exit(3)
        gc.collect()  # release the trial's module before the next one
        if device != "cpu":
            torch.cuda.empty_cache()
            res.extra["gpu_mem_mb"] = torch.cuda.memory_allocated(device) / 2**20
            res.extra["gpu_reserved_mb"] = torch.cuda.memory_reserved(device) / 2**20
        conn.send(("result", wid, res))


def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone (re-parented), even in the middle of a trial."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(4)


# --- the pool --------------------------------------------------------------------------

@dataclass
class _Worker:
    wid: int
    device: str
    proc: mp.process.BaseProcess
    conn: object
    ready: bool = False
    job: Optional[Job] = None
    started: float = 0.0
    fault: str = ""
    spawned: float = field(default_factory=time.monotonic)


class LocalPool:
    """Evaluator over persistent local worker processes, one per entry of
    ``slots`` (device strings). ``timeout_s``: hard wall-clock limit per trial
    (default: 1.5 x ``cfg.timeout_s`` + 10 s, None when that is None);
    ``max_retries``: re-runs of a trial whose worker died (0..10)."""

    def __init__(self, data: DataSpec, cfg: TrainConfig, slots: list[str], max_retries: int = 2,
                 timeout_s: Optional[float] = None, startup_timeout_s: float = 600.0,
                 start_method: str = "spawn"):
        if not isinstance(data, DataSpec):
            raise ConfigError("workers", "data", type(data).__name__,
                              "LocalPool needs a DataSpec (workers load the data themselves)")
        if not slots:
            raise ConfigError("workers", "slots", slots, "need at least one worker slot")
        self.retries = Retries("workers", max_retries, cfg, timeout_s)
        self.slots, self.spec, self.cfg = len(slots), data, cfg
        self.timeout_s, self.startup_timeout_s = self.retries.timeout_s, startup_timeout_s
        self._ctx = mp.get_context(start_method)
        self._threads = cpu_threads(slots)
        self._workers: dict[int, _Worker] = {}
        self._procs: list = []  # every process started, for the finalizer
        self._next_wid = 0
        self._queue: deque[Job] = deque()
        self._done: list[Result] = []
        self._closed = False
        self._finalizer = weakref.finalize(self, _kill_all, self._procs)
        for dev in slots:
            self._spawn(dev)

    # --- Evaluator protocol ---
    def submit(self, job: Job) -> None:
        if self._closed:
            raise WorkerError("LocalPool.submit after close()")
        self._queue.append(job)
        self._dispatch()

    def poll(self, timeout: float | None = None) -> list[Result]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._dispatch()
            if not self._done and (self._queue or self._busy()):
                wait = _TICK if deadline is None else max(0.0, min(_TICK, deadline - time.monotonic()))
                self._pump(wait)
            self._reap()
            if self._done or (not self._queue and not self._busy()):
                out, self._done = self._done, []
                return out
            if deadline is not None and time.monotonic() >= deadline:
                return []

    def cancel_all(self) -> list[int]:
        ids = [j.id for j in self._queue] + [w.job.id for w in self._workers.values() if w.job]
        self._queue.clear()
        for w in list(self._workers.values()):
            if w.job is not None:
                self._replace(w)
        return ids

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        for w in self._workers.values():
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        end = time.monotonic() + 3.0
        for w in self._workers.values():
            w.proc.join(max(0.0, end - time.monotonic()) if w.job is None else 0)
        _kill_all(self._procs)
        for w in self._workers.values():
            w.conn.close()
        self._workers.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until every worker has loaded its data (True) or ``timeout`` s passed."""
        end = None if timeout is None else time.monotonic() + timeout
        while not all(w.ready for w in self._workers.values()):
            if end is not None and time.monotonic() >= end:
                return False
            self._pump(_TICK)
            self._reap()
        return True

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (tests kill them to check recovery)."""
        return [w.proc.pid for w in self._workers.values()]

    def busy_pid(self, job_id: int) -> Optional[int]:
        for w in self._workers.values():
            if w.job is not None and w.job.id == job_id:
                return w.proc.pid
        return None

    # --- internals ---
    def _spawn(self, device: str) -> None:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        wid, self._next_wid = self._next_wid, self._next_wid + 1
        proc = self._ctx.Process(target=_worker_main, name=f"evonas-w{wid}", daemon=True,
                                 args=(wid, device, self.spec, self.cfg, self._threads, child_conn))
        proc.start()
        child_conn.close()
        self._procs.append(proc)
        self._workers[wid] = _Worker(wid, device, proc, parent_conn)

    def _busy(self) -> bool:
        return any(w.job is not None for w in self._workers.values())

    def _dispatch(self) -> None:
        for w in self._workers.values():
            if not self._queue:
                return
            if w.ready and w.job is None:
                job = self._queue.popleft()
                try:
                    w.conn.send(job)
                except (OSError, ValueError):  # died meanwhile: _reap replaces it
                    self._queue.appendleft(job)
                    continue
                except (pickle.PicklingError, TypeError, AttributeError) as e:  # e.g. a lambda in a genome
                    self._done.append(Result(job.id, "failed", worker=f"w{w.wid}@{w.device}",
                                             reason=f"job cannot be sent to a worker process: {e}"))
                    continue
                w.job, w.started = job, time.monotonic()

    def _pump(self, wait: float) -> None:
        """Wait up to ``wait`` s for messages or deaths, then handle all messages."""
        conns = {w.conn: w for w in self._workers.values()}
        sentinels = [w.proc.sentinel for w in self._workers.values()]
        for c in mp_wait(list(conns) + sentinels, timeout=wait):
            if c in conns:
                self._drain(conns[c])

    def _drain(self, w: _Worker) -> None:
        try:
            while w.conn.poll():
                self._handle(w, w.conn.recv())
        except (EOFError, OSError):
            pass  # the process is gone; _reap sees it

    def _handle(self, w: _Worker, msg: tuple) -> None:
        kind = msg[0]
        if kind == "ready":
            w.ready = True
        elif kind == "init_error":
            self.close()
            raise WorkerError(f"worker on {w.device} could not start: {msg[2]}")
        elif kind == "fault":
            w.fault = f"CUDA fault: {msg[3]}"
        elif kind == "result" and w.job is not None and msg[2].id == w.job.id:
            msg[2].attempts = self.retries.done(w.job.id)
            self._done.append(msg[2])
            w.job = None

    def _reap(self) -> None:
        """Replace dead workers (retrying their trial) and kill overdue ones."""
        now = time.monotonic()
        for w in list(self._workers.values()):
            if not w.proc.is_alive():
                self._drain(w)  # a result sent just before dying still counts
                job, why = w.job, w.fault or f"worker process died (exit code {w.proc.exitcode})"
                if not w.ready:
                    self._startup_died(w)
                self._replace(w)
                if job is not None:
                    self._retry(job, why, w)
            elif w.job is not None and self.timeout_s is not None and now - w.started > self.timeout_s:
                job = w.job
                self._replace(w)
                self._done.append(Result(job.id, "failed", reason=f"timeout: worker killed after "
                                         f"{now - w.started:.1f} s (limit {self.timeout_s:g} s)",
                                         worker=f"w{w.wid}@{w.device}", attempts=self.retries.done(job.id)))
            elif not w.ready and now - w.spawned > self.startup_timeout_s:
                self.close()
                raise WorkerError(f"worker on {w.device} not ready after {self.startup_timeout_s:g} s")

    def _startup_died(self, w: _Worker) -> None:
        if self.retries.start_died():
            self.close()
            raise WorkerError(f"workers on {w.device} keep dying at start-up "
                              f"(last exit code {w.proc.exitcode})")

    def _retry(self, job: Job, why: str, w: _Worker) -> None:
        n = self.retries.again(job, self._queue)
        if n:
            self._done.append(Result(job.id, "failed", worker=f"w{w.wid}@{w.device}",
                                     reason=f"{why}; gave up after {n} attempts", attempts=n))

    def _replace(self, w: _Worker) -> None:
        """Kill ``w`` (if alive) and start a fresh worker on the same device."""
        if w.proc.is_alive():
            w.proc.kill()
        w.proc.join(5.0)
        w.conn.close()
        del self._workers[w.wid]
        self._procs.remove(w.proc)
        if not self._closed:
            self._spawn(w.device)


def _kill_all(procs: list) -> None:
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        p.join(5.0)


# --- in-process ------------------------------------------------------------------------

class InlineEvaluator(FunctionEvaluator):
    """The training path without processes (``--workers 0``): jobs run one by one
    inside ``poll``, in submission order; deterministic on CPU. ``data`` is a
    loaded ``Data`` or a ``DataSpec`` (loaded once, here)."""

    def __init__(self, data: Union[Data, DataSpec], cfg: TrainConfig, device: str = "cpu", slots: int = 1):
        self.data = (data.load() if isinstance(data, DataSpec) else data).to(device)
        self.cfg, self.device = cfg, device
        super().__init__(self._evaluate, slots)

    def _evaluate(self, job: Job) -> Result:
        try:
            return evaluate_job(job, self.data, self.cfg, self.device, worker=f"inline@{self.device}")
        except CudaFault as e:
            return Result(job.id, "failed", reason=f"CUDA fault: {e}", worker=f"inline@{self.device}")
