"""Placement parsing and the worker pool: persistence, NaN, killed worker, timeout."""
import math
import os
import signal
import time
from dataclasses import dataclass

import pytest
import torch

from evonas.errors import ConfigError, GenomeError
from evonas.evaluate.base import Job
from evonas.evaluate.data import DataSpec
from evonas.evaluate.devices import cpu_threads, gpu_fraction, parse_devices, select_slots
from evonas.evaluate.train import TrainConfig
from evonas.evaluate.workers import InlineEvaluator, LocalPool
from evonas.genome.base import Genome
from evonas.genome.nb201 import NB201Genome, NB201Space
from evonas.graph import add_node, new_graph

TINY = NB201Genome(("nor_conv_3x3",) * 6, NB201Space(C=4, N=1))
# seconds of training even on an idle machine: a trial that must outlive a 0.05 s limit
# (TINY can finish inside the pool's first 0.2 s liveness tick)
SLOW = NB201Genome(("nor_conv_3x3",) * 6, NB201Space(C=48, N=5))
SPEC = DataSpec("digits", seed=0, max_train=300)
CFG = TrainConfig(epochs=1, batch_size=32, lr=0.05, threads=1)  # 1 thread: shared CI cores


@dataclass(frozen=True)
class ScaledSpace:
    C: int = 4


@dataclass(frozen=True)
class ScaledGenome(Genome):
    """conv-BN whose output is multiplied by ``scale``: a huge scale makes the loss
    blow up whatever the learning rate (a NaN-producing genome). Deliberately not
    registered: registry-wide tests must not see it; workers unpickle it by class."""
    type_name = "test-scaled"
    scale: float = 1.0
    space: ScaledSpace = ScaledSpace()
    Space = ScaledSpace

    def validate(self):
        if not isinstance(self.scale, float) or not math.isfinite(self.scale):
            raise GenomeError("test-scaled", "scale", self.scale, "must be a finite float")

    def to_string(self):
        return repr(self.scale)

    @classmethod
    def from_string(cls, s, space=None):
        return cls(float(s), space or ScaledSpace())

    def decode(self):
        g = new_graph()
        x = add_node(g, "conv", "conv_bn", ["input"], C=self.space.C, k=3)
        x = add_node(g, "scale", "add", [x], weights=[self.scale])
        add_node(g, "output", "output", [x])
        return g


# --- devices -----------------------------------------------------------------------------

def test_parse_devices_without_cuda(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # it caps cpu_threads (tests run with 1)
    assert parse_devices("cpu") == ["cpu"]
    assert parse_devices("cpu", workers=3) == ["cpu"] * 3
    assert parse_devices("cuda", trials_per_device=2, gpu_count=2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert parse_devices("cuda:1,3", gpu_count=4) == ["cuda:1", "cuda:3"]
    assert parse_devices("cuda:1,cuda:3", gpu_count=4) == ["cuda:1", "cuda:3"]  # the --help form
    assert parse_devices(" CUDA:0 ", trials_per_device=4, gpu_count=1) == ["cuda:0"] * 4
    assert gpu_fraction(["cuda:0"] * 4) == 0.25 and gpu_fraction(["cpu"]) == 0.0
    assert cpu_threads(["cpu", "cpu"], cpu_count=8) == 4 and cpu_threads(["cpu"] * 4, cpu_count=2) == 1
    assert cpu_threads(["cuda:0", "cuda:1"] * 4, cpu_count=16) == 2  # GPU workers share the host too


@pytest.mark.parametrize("kw, needle", [
    (dict(devices="cuda", gpu_count=0), "no GPU is visible"),
    (dict(devices="cuda:0,1", gpu_count=1), "GPU 1 does not exist"),
    (dict(devices="cuda:0,0", gpu_count=2), "listed twice"),
    (dict(devices="cuda:x", gpu_count=2), "not a number"),
    (dict(devices="tpu"), "use cpu"),
    (dict(devices="cpu", workers=0), "--workers"),
    (dict(devices="cuda", trials_per_device=0, gpu_count=1), "--trials-per-device"),
    (dict(devices="cuda", workers=2, gpu_count=1), "--workers"),
])
def test_parse_devices_errors(kw, needle):
    with pytest.raises(ConfigError, match=needle):
        parse_devices(**kw)


def test_select_slots_auto_without_cuda():
    assert select_slots("auto", gpu_count=0, cpu_count=2) == ["cpu", "cpu"]
    assert select_slots("auto", gpu_count=0, cpu_count=64) == ["cpu"] * 8  # auto caps at 8 workers
    assert select_slots("auto", workers=3, gpu_count=0) == ["cpu"] * 3
    assert select_slots("auto", trials_per_device=2, gpu_count=2) == ["cuda:0", "cuda:1"] * 2
    assert select_slots("cpu", gpu_count=4, cpu_count=1) == ["cpu"]  # cpu is never overridden
    assert select_slots("cuda:1", gpu_count=2) == ["cuda:1"]
    with pytest.raises(ConfigError, match="--workers"):
        select_slots("auto", workers=4, gpu_count=1)  # on GPUs the knob is --trials-per-device
    with pytest.raises(ConfigError, match="no GPU is visible"):
        select_slots("cuda", gpu_count=0)


# --- in-process ----------------------------------------------------------------------------

def test_inline_evaluator_nan_then_continues():
    torch.set_num_threads(1)
    ev = InlineEvaluator(SPEC, CFG)
    ev.submit(Job(1, ScaledGenome(1e30), seed=0))
    ev.submit(Job(2, TINY, seed=0))
    ev.submit(Job(3, TINY, seed=0))
    a, b = ev.poll(), ev.poll()
    assert a[0].status == "failed" and "non-finite" in a[0].reason
    assert b[0].status == "ok" and b[0].fitness > 20.0
    assert ev.cancel_all() == [3] and ev.poll() == []


# --- the process pool ----------------------------------------------------------------------

def _collect(pool, n, limit=120.0):
    out, end = {}, time.monotonic() + limit
    while len(out) < n and time.monotonic() < end:
        for r in pool.poll(timeout=end - time.monotonic()):
            out[r.id] = r
    assert len(out) == n, f"only {sorted(out)} came back"
    return out


@pytest.fixture(scope="module")
def pool():
    p = LocalPool(SPEC, CFG, ["cpu"], max_retries=2, startup_timeout_s=180.0)  # a stuck start fails fast
    yield p
    p.close()


def test_pool_nan_fails_and_worker_continues(pool):
    pids = pool.pids
    pool.submit(Job(1, ScaledGenome(1e30), seed=0))
    pool.submit(Job(2, TINY, seed=0))
    got = _collect(pool, 2)
    assert got[1].status == "failed" and "non-finite" in got[1].reason
    assert got[2].status == "ok" and got[2].fitness > 20.0
    assert pool.pids == pids and got[1].worker == got[2].worker  # same persistent worker


def test_pool_killed_worker_is_replaced_and_trial_retried(pool):
    pool.submit(Job(3, TINY, seed=0))
    pid = pool.busy_pid(3)
    assert pid is not None  # dispatched: the trial is in flight on that worker
    os.kill(pid, signal.SIGKILL)
    got = _collect(pool, 1)
    assert got[3].status == "ok", got[3].reason
    assert pid not in pool.pids and len(pool.pids) == 1


def test_pool_timeout_kills_and_pool_goes_on(pool):
    pool.timeout_s = 0.05
    try:
        pool.submit(Job(4, SLOW, seed=0))
        got = _collect(pool, 1)
    finally:
        pool.timeout_s = None
    assert got[4].status == "failed" and got[4].reason.startswith("timeout")
    pool.submit(Job(5, TINY, seed=0))
    assert _collect(pool, 1)[5].status == "ok"


def test_pool_gives_up_after_bounded_retries(pool):
    pool.retries.max_retries = 0
    try:
        pool.submit(Job(6, TINY, seed=0))
        while pool.busy_pid(6) is None:  # the replacement worker may still be starting
            pool.poll(0.2)
        os.kill(pool.busy_pid(6), signal.SIGKILL)
        r = _collect(pool, 1)[6]
    finally:
        pool.retries.max_retries = 2
    assert r.status == "failed" and "died" in r.reason and "1 attempts" in r.reason


def test_pool_cancel_all_and_close_leave_no_children(pool):
    pool.submit(Job(7, TINY, seed=0))
    pool.submit(Job(8, TINY, seed=0))
    assert sorted(pool.cancel_all()) == [7, 8]
    procs = list(pool._procs)
    pool.close()
    assert procs and not any(pr.is_alive() for pr in procs)
    assert pool.poll(0.1) == []


# --- the worker side -------------------------------------------------------------------------

def test_trial_runner_frees_the_trials_module_in_a_frozen_process(monkeypatch):
    """Workers gc.freeze() after start-up and collect only the trial's own objects
    after it: the compiled module (an fx GraphModule, in reference cycles) is gone
    after ``cleanup`` all the same."""
    import gc
    import weakref

    import evonas.evaluate.train as tr
    from evonas.evaluate.trial import TrialRunner
    real, refs = tr._build, []

    def build(*a, **k):
        model, report = real(*a, **k)
        refs.append(weakref.ref(model))
        return model, report
    monkeypatch.setattr(tr, "_build", build)
    monkeypatch.delenv("EVONAS_WORKER_GC", raising=False)
    try:
        runner = TrialRunner(SPEC, CFG, "cpu", 1, name="t")
        assert gc.get_freeze_count() > 0 and not runner.legacy
        kind, res = runner.run(Job(1, TINY, seed=0))
        assert kind == "result" and res.status == "ok" and res.worker == "t"
        del res
        assert refs[0]() is not None  # cyclic garbage: reference counting alone does not free it
        runner.cleanup()
        assert refs[0]() is None
    finally:
        gc.unfreeze()


@pytest.mark.slow
def test_worker_rss_stays_flat_over_many_trials():
    """The reason for the per-trial cleanup: after the first trials (lazy caches),
    a worker's resident memory does not grow with the number of trials."""
    from evonas.evaluate.trial import rss_mb  # noqa: F401  (same reading as the benchmark)
    with LocalPool(SPEC, CFG, ["cpu"], startup_timeout_s=180.0) as p:
        rss = []
        for i in range(60):
            p.submit(Job(100 + i, TINY, seed=i))
            assert _collect(p, 1)[100 + i].status == "ok"
            time.sleep(0.02)  # the worker cleans up after sending the result
            with open(f"/proc/{p.pids[0]}/statm") as fh:
                rss.append(int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20)
    assert rss[-1] - rss[9] < 8.0, f"RSS grew from {rss[9]:.1f} MB (trial 10) to {rss[-1]:.1f} MB (trial 60)"


# --- every registered backend (the contract) -------------------------------------------------

def _backend_names():
    from evonas.evaluate.backends import BACKENDS, backend
    backend("local")  # imports the built-in backends
    return BACKENDS.names()


def test_backend_registry_covers_the_cli_and_rejects_duplicates():
    from evonas.catalog import choices
    from evonas.errors import RegistryError
    from evonas.evaluate.backends import BACKENDS, backend
    assert choices()["backend"] == _backend_names() and {"local", "ray"} <= set(_backend_names())
    assert backend("local") is LocalPool and LocalPool.backend_name == "local"
    with pytest.raises(RegistryError, match="already registered"):
        BACKENDS.class_decorator("local", "backend_name")(type("Other", (), {}))
    with pytest.raises(RegistryError, match="unknown backend 'slurm'"):
        backend("slurm")


@pytest.mark.parametrize("name", _backend_names())
def test_every_backend_declares_its_options_in_open_and_placement_takes_them(name):
    """The contract behind ``backend.<name>``: ``open``'s keyword parameters (each
    with a default) are the options, and ``placement`` accepts every one of them."""
    import inspect

    from evonas.config_sections import _NO_DEFAULT, defaults
    from evonas.evaluate.backends import backend
    options = defaults("backend", name)
    assert _NO_DEFAULT not in options.values(), options
    inspect.signature(backend(name).placement).bind("cpu", 1, 1, **options)
    inspect.signature(backend(name).open).bind(SPEC, CFG, ["cpu"], **options)


@pytest.fixture
def open_backend(request, tmp_path):
    """-> open(env, **kw): the backend ``request.param`` with ``env`` (fault
    injection) in its workers' environment; closed (and Ray shut down) afterwards."""
    from unittest.mock import patch

    from evonas.evaluate.backends import backend
    opened = []

    def open_(env, slots=("cpu", "cpu"), **kw):
        cls = backend(request.param)
        if request.param == "ray":
            ray = pytest.importorskip("ray", reason="ray is not installed")
            try:
                ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": env})
            except Exception as e:  # no shared memory, ports, ...: not this code's fault
                pytest.skip(f"a local Ray instance does not start here: {e}")
            opened.append(ray.shutdown)
            ev = cls(SPEC, CFG, list(slots), **kw)
        else:
            with patch.dict(os.environ, env):  # spawned workers inherit it
                ev = cls(SPEC, CFG, list(slots), startup_timeout_s=300.0, **kw)
        opened.insert(0, ev.close)
        return ev
    yield open_
    for f in opened:
        f()


@pytest.mark.slow
@pytest.mark.parametrize("open_backend", _backend_names(), indirect=True)
def test_backend_contract_kill_is_retried(open_backend, tmp_path):
    """Every backend runs trials; a worker SIGKILLed mid-trial (injected, once across
    processes) is replaced and its trial retried, the neighbour unaffected."""
    marker = tmp_path / "fired"
    ev = open_backend({"EVONAS_FAULT": "worker_trial:2", "EVONAS_FAULT_ONCE": str(marker)})
    for i in range(3):
        ev.submit(Job(1 + i, TINY, seed=i))
    got = _collect(ev, 3, limit=300.0)
    assert marker.exists()
    assert all(r.status == "ok" and r.fitness > 15.0 for r in got.values()), got
    assert sorted(r.attempts for r in got.values()) == [1, 1, 2]


@pytest.mark.slow
@pytest.mark.parametrize("open_backend", _backend_names(), indirect=True)
def test_backend_contract_hung_trial_times_out(open_backend, tmp_path):
    """A trial that hangs (injected, once) is killed at the hard limit and failed
    'timeout'; the replacement worker serves on."""
    marker = tmp_path / "fired"
    # one worker; a TINY trial has 9 steps, so the hang comes in its second trial, once
    # the worker is warm: a cold first trial on a loaded CI machine can outlast any
    # short limit before it reaches the fault point
    ev = open_backend({"EVONAS_FAULT": "worker_trial:12:hang", "EVONAS_FAULT_ONCE": str(marker)},
                      slots=["cpu"])
    ev.submit(Job(1, TINY, seed=0))
    assert _collect(ev, 1, limit=300.0)[1].status == "ok" and not marker.exists()
    ev.timeout_s = 10.0
    ev.submit(Job(2, TINY, seed=0))
    r = _collect(ev, 1, limit=300.0)[2]
    assert marker.exists()  # the injected hang fired, and the limit stopped it:
    assert r.status == "failed" and r.reason.startswith("timeout:") and "killed after" in r.reason
    ev.timeout_s = None
    ev.submit(Job(3, TINY, seed=0))
    assert _collect(ev, 1, limit=300.0)[3].status == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("open_backend", _backend_names(), indirect=True)
def test_backend_contract_cuda_fault_keeps_its_reason(open_backend):
    """A CUDA fault (injected as the error torch raises) replaces the worker and
    retries the trial; after the retries the row says it was a CUDA fault."""
    ev = open_backend({"EVONAS_FAULT": "worker_trial:1:cuda"}, max_retries=1)
    ev.submit(Job(1, TINY, seed=0))
    r = _collect(ev, 1, limit=300.0)[1]
    assert r.status == "failed" and r.attempts == 2
    assert "CUDA fault" in r.reason and "illegal memory access" in r.reason and "2 attempts" in r.reason
