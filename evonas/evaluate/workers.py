"""Evaluators that train candidates: ``LocalPool`` (persistent worker processes)
and ``InlineEvaluator`` (same code path, in-process; debugging and tests).

``LocalPool`` is the slot-pool core (``pool.SlotPool``: queue, dispatch, retries,
timeouts, replacement) over a small transport: one 'spawn'ed process per slot
(``devices.parse_devices``) and its own pipe. Each worker builds a
``trial.TrialRunner`` -- the data set loaded onto its device once, CUDA
initialised once -- then trains job after job; only the small ``Job`` and
``Result`` travel through the pipe.

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

import multiprocessing as mp
import os
import threading
import time
import weakref
from dataclasses import dataclass
from multiprocessing.connection import wait as mp_wait
from typing import Optional, Union

from ..errors import ConfigError
from .base import FunctionEvaluator, Job, Result
from .data import Data, DataSpec
from .devices import cpu_threads, select_slots
from .pool import BACKENDS, Retries, SlotPool, WorkerError, check_options
from .train import CudaFault, TrainConfig, evaluate_job

__all__ = ["LocalPool", "InlineEvaluator", "Retries", "WorkerError"]


# --- the worker process ----------------------------------------------------------------

def _worker_main(wid: int, device: str, spec: DataSpec, cfg: TrainConfig, threads: int, conn) -> None:
    """Entry point of a worker process: load data once, then serve jobs until
    ``None`` or EOF. A CUDA fault is reported and ends the process (its context
    may be unusable); the pool replaces it."""
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    try:
        from .trial import TrialRunner
        runner = TrialRunner(spec, cfg, device, threads, name=f"w{wid}@{device}")
        conn.send(("ready", None))
    except BaseException as e:  # report why, one line; the pool raises WorkerError
        conn.send(("init_error", f"{type(e).__name__}: {e}"))
        return
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        kind, res = runner.run(job)
        del job
        if kind == "fault":
            conn.send((kind, res))
            os._exit(3)
        if runner.on_gpu or runner.legacy:  # the memory figures travel with the result
            runner.cleanup(res)
            conn.send((kind, res))
        else:  # CPU: clean up while the driver handles the result
            conn.send((kind, res))
            del res
            runner.cleanup()


def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone (re-parented), even in the middle of a trial."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(4)


# --- the transport ---------------------------------------------------------------------

@dataclass(eq=False)
class _Proc:
    wid: int
    device: str
    proc: mp.process.BaseProcess
    conn: object

    @property
    def pid(self) -> Optional[int]:
        return self.proc.pid


class ProcessTransport:
    """Worker processes ('spawn' by default), one duplex pipe each."""
    kind = "worker"

    def __init__(self, spec: DataSpec, cfg: TrainConfig, threads: int, start_method: str = "spawn"):
        self.spec, self.cfg, self.threads = spec, cfg, threads
        self._ctx = mp.get_context(start_method)
        self._next_wid = 0
        self.procs: list = []  # every live process started, for the finalizer

    def start(self, device: str) -> _Proc:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        wid, self._next_wid = self._next_wid, self._next_wid + 1
        proc = self._ctx.Process(target=_worker_main, name=f"evonas-w{wid}", daemon=True,
                                 args=(wid, device, self.spec, self.cfg, self.threads, child_conn))
        proc.start()
        child_conn.close()
        self.procs.append(proc)
        return _Proc(wid, device, proc, parent_conn)

    def send(self, h: _Proc, job: Job) -> None:
        h.conn.send(job)

    def label(self, h: _Proc) -> str:
        return f"w{h.wid}@{h.device}"

    def wait(self, handles: list, timeout: float) -> list[tuple]:
        """Messages of all ready pipes, then deaths (after draining what a dying
        worker sent: a result sent just before dying still counts)."""
        conns = {h.conn: h for h in handles}
        sentinels = {h.proc.sentinel: h for h in handles}
        events: list[tuple] = []
        for c in mp_wait(list(conns) + list(sentinels), timeout=timeout):
            if c in conns:
                events += self._drain(conns[c])
        for h in handles:
            if not h.proc.is_alive():
                events += self._drain(h)
                if not any(k == "fault" and x is h for k, x, _ in events):
                    events.append(("died", h, f"worker process died (exit code {h.proc.exitcode})"))
        return events

    @staticmethod
    def _drain(h: _Proc) -> list[tuple]:
        out = []
        try:
            while h.conn.poll():
                kind, payload = h.conn.recv()
                out.append((kind, h, payload))
        except (EOFError, OSError):
            pass  # the process is gone; wait() reports it
        return out

    def kill(self, h: _Proc) -> None:
        if h.proc.is_alive():
            h.proc.kill()
        h.proc.join(5.0)
        h.conn.close()
        if h.proc in self.procs:
            self.procs.remove(h.proc)

    def stop(self, handles: list) -> None:
        for h in handles:
            try:
                h.conn.send(None)
            except (OSError, ValueError):
                pass
        end = time.monotonic() + 3.0
        for h in handles:
            h.proc.join(max(0.0, end - time.monotonic()))
        for h in handles:
            self.kill(h)
        _kill_all(self.procs)


def _kill_all(procs: list) -> None:
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        p.join(5.0)


# --- the pool --------------------------------------------------------------------------

@BACKENDS.class_decorator("local", "backend_name")
class LocalPool(SlotPool):
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
        self.spec = data
        transport = ProcessTransport(data, cfg, cpu_threads(slots), start_method)
        self._procs = transport.procs
        self._finalizer = weakref.finalize(self, _kill_all, self._procs)
        super().__init__(transport, slots, cfg, "workers", max_retries, timeout_s, startup_timeout_s)

    @classmethod
    def placement(cls, devices: str, workers: int, trials_per_device: int, max_retries: int = 2,
                  **options) -> list[str]:
        """This machine's slots; ``options``: those of a subclass's ``open``."""
        check_options("backend.local", max_retries)
        return select_slots(devices, workers, trials_per_device)

    @classmethod
    def open(cls, data: DataSpec, cfg: TrainConfig, slots: list[str], max_retries: int = 2) -> "LocalPool":
        """Options (``backend.local``): ``max_retries``, re-runs of a trial whose worker died."""
        return cls(data, cfg, slots, max_retries=max_retries)

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (tests kill them to check recovery)."""
        return [s.handle.pid for s in self._slots]

    def busy_pid(self, job_id: int) -> Optional[int]:
        h = self.busy_handle(job_id)
        return None if h is None else h.pid


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
