"""Bad trials and worker faults at the CLI level, with real training (digits, tiny
NB201 cells, one epoch, worker processes) and a plug-in failure (table).

The pool's own retry/timeout logic is unit-tested in test_workers.py; here the
whole run is checked: each bad trial is a lineage row with status ``failed`` and
a reason, the run goes on and exits 0; a worker SIGKILLed mid-trial is replaced
and the trial retried; a driver SIGKILLed mid-run resumes to the same lineage as
an uninterrupted run.
"""
import signal
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from forking import forked

TABLE = None  # the synthetic NB201 table (conftest's nb201_table), set by _table: no ../shared needed


@pytest.fixture(scope="module", autouse=True)
def _table(nb201_table):
    global TABLE
    TABLE = nb201_table
TINY = ["--genome", "nb201", "--space", "C=4", "--space", "N=1", "--epochs", "1", "--batch-size", "256",
        "--population", "2", "--sample-size", "1", "--seed", "1", "--quiet"]


def rows(d):
    return pd.read_csv(Path(d) / "lineage.csv")


def test_worker_killed_mid_trial_is_retried_neighbour_unaffected(tmp_path):
    """Two workers; the first trial step anywhere SIGKILLs its worker (once, across
    processes): that trial is retried on a fresh worker, every trial ends ok."""
    d, marker = tmp_path / "run", tmp_path / "fired"
    env = {"EVONAS_FAULT": "worker_trial:2", "EVONAS_FAULT_ONCE": str(marker)}
    assert forked([*TINY, "--evaluations", "3", "--workers", "2", "--run-dir", str(d)], env=env) == 0
    assert marker.exists()  # the fault really fired in a worker
    df = rows(d)
    assert (df["status"] != "duplicate").sum() == 3 and df["id"].is_unique  # 3 trained (+ duplicates)
    assert (df["status"] != "failed").all(), df[["status", "reason"]]


def test_worker_killed_every_time_fails_with_reason_run_continues(tmp_path):
    d = tmp_path / "run"
    env = {"EVONAS_FAULT": "worker_trial:1"}  # every worker dies at its first step
    assert forked([*TINY, "--evaluations", "1", "--workers", "1", "--run-dir", str(d)], env=env) == 0
    df = rows(d)
    assert len(df) == 1 and df["status"].tolist() == ["failed"]
    assert "worker process died" in df["reason"][0] and "gave up after 3 attempts" in df["reason"][0]


def test_cuda_fault_replaces_worker_and_retries(tmp_path):
    """A CUDA error other than OOM (injected as the RuntimeError torch raises) may
    poison the worker's CUDA context: the worker reports it and exits, a fresh one
    takes the trial (once: ok; every time: failed after bounded retries)."""
    d, marker = tmp_path / "once", tmp_path / "fired"
    env = {"EVONAS_FAULT": "worker_trial:2:cuda", "EVONAS_FAULT_ONCE": str(marker)}
    assert forked([*TINY, "--evaluations", "2", "--workers", "1", "--run-dir", str(d)], env=env) == 0
    assert marker.exists() and (rows(d)["status"] == "ok").all(), rows(d)[["status", "reason"]]
    d = tmp_path / "always"
    env = {"EVONAS_FAULT": "worker_trial:1:cuda"}
    assert forked([*TINY, "--evaluations", "1", "--workers", "1", "--run-dir", str(d)], env=env) == 0
    reason = rows(d)["reason"][0]
    assert "CUDA fault" in reason and "illegal memory access" in reason and "3 attempts" in reason


def test_gpu_training_path_on_cpu_oom_halving_end_to_end(tmp_path):
    """What a GPU run does, through the CLI on CPU: bf16 autocast + channels_last,
    and a CUDA OOM (injected) retried at half the micro-batch with gradient
    accumulation; the lineage row is ok and its reason says so. An OOM at every
    micro-batch fails the trial with the reason, and the run goes on."""
    gpu = ["--precision", "bf16", "--memory-format", "channels_last", "--workers", "1"]
    d, marker = tmp_path / "once", tmp_path / "fired"
    env = {"EVONAS_FAULT": "worker_trial:1:oom", "EVONAS_FAULT_ONCE": str(marker)}
    assert forked([*TINY, *gpu, "--evaluations", "2", "--run-dir", str(d)], env=env) == 0
    df = rows(d)
    assert marker.exists() and (df["status"] == "ok").all(), df[["status", "reason"]]
    assert (df["reason"] == "-").sum() == 1 and df["reason"].str.contains(
        r"trained at micro-batch 128 x gradient accumulation \(batch 256\)").sum() == 1
    d = tmp_path / "always"
    assert forked([*TINY, *gpu, "--evaluations", "1", "--run-dir", str(d)],
                  env={"EVONAS_FAULT": "worker_trial:1:oom"}) == 0
    df = rows(d)
    assert (df["status"] == "failed").all()
    assert all("out of memory at micro-batch 32 (batch 256, 3 halvings)" in r for r in df["reason"])


@pytest.mark.parametrize("flags, env, needle", [
    (["--max-params", "10"], {}, "over budget"),
    (["--lr", "1e30"], {}, "non-finite loss"),
    (["--trial-timeout", "1"], {"EVONAS_FAULT": "worker_trial:1:sleep=2"}, "timeout"),
])
def test_bad_trial_recorded_failed_run_continues(tmp_path, flags, env, needle):
    d = tmp_path / "run"
    assert forked([*TINY, *flags, "--evaluations", "2", "--workers", "1", "--run-dir", str(d)], env=env) == 0
    df = rows(d)
    assert len(df) == 2 and (df["status"] == "failed").all()
    assert all(needle in r for r in df["reason"]), df["reason"].tolist()
    assert (d / "state.json").exists()


def test_hanging_trial_is_killed_by_the_pool(tmp_path):
    """A trial that never returns (sleeps forever inside the training loop): the pool's
    hard limit (1.5 x trial_timeout + 10 s) kills its worker; recorded failed."""
    d = tmp_path / "run"
    env = {"EVONAS_FAULT": "worker_trial:1:hang"}
    assert forked([*TINY, "--trial-timeout", "0.2", "--evaluations", "1", "--workers", "1",
                   "--run-dir", str(d)], env=env) == 0
    df = rows(d)
    assert df["status"].tolist() == ["failed"] and "timeout: worker killed" in df["reason"][0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_driver_kill9_with_training_resumes_to_same_lineage(tmp_path, workers):
    """Real training: kill the driver after the 2nd row, resume, compare with an
    uninterrupted run of the same seed (timing/worker columns aside). With two
    workers this holds thanks to the default submission order."""
    a, b = tmp_path / "a", tmp_path / "b"
    args = [*TINY, "--evaluations", "4", "--workers", workers]
    assert forked([*args, "--run-dir", str(a)]) == 0
    assert forked([*args, "--run-dir", str(b)], "after_lineage_row:2") == -signal.SIGKILL
    assert len(rows(b)) == 2
    assert forked(["--resume", str(b), "--quiet"]) == 0
    drop = ["train_seconds", "worker", "started_s", "finished_s"]
    pd.testing.assert_frame_equal(rows(b).drop(columns=drop), rows(a).drop(columns=drop))
    assert sorted(p.name for p in (b / "best").iterdir()) == sorted(p.name for p in (a / "best").iterdir())


PLUGIN = """
import evonas
from evonas.genome.nb201 import mut_edge_op as _base

CALLS = [0]

@evonas.register_mutation("nb201", name="flaky_edge")
def flaky_edge(genome, rng):
    CALLS[0] += 1
    if BROKEN and CALLS[0] >= 5:
        raise RuntimeError("bug in user operator")
    return _base(genome, rng)

BROKEN = {broken}
"""


def test_plugin_operator_exception_exit_2_checkpoint_intact_then_resume(tmp_path):
    """A user operator raising mid-run: exit 2 (PluginError naming it), the run dir
    stays consistent; after fixing the plug-in file, --resume completes the run
    without duplicating or losing rows."""
    import json
    plugin = tmp_path / "my_ops.py"
    plugin.write_text(textwrap.dedent(PLUGIN.format(broken=True)))
    d = tmp_path / "run"
    args = ["--genome", "nb201", "--population", "6", "--sample-size", "2", "--evaluations", "20",
            "--benchmark-table", str(TABLE), "--plugin", str(plugin), "--mutation", "flaky_edge",
            "--run-dir", str(d), "--quiet"]
    assert forked(args) == 2
    state = json.loads((d / "state.json").read_text())  # intact, valid JSON
    first = rows(d)
    assert state["counters"]["births"] == len(first) and first["id"].is_unique
    plugin.write_text(textwrap.dedent(PLUGIN.format(broken=False)))
    # a recorded plug-in is loaded on resume only when named again (nothing runs from a run dir)
    assert forked(["--resume", str(d), "--plugin", str(plugin), "--quiet"]) == 0
    df = rows(d)
    # --evaluations counts trained networks; reused duplicates are rows of their own
    assert (df["status"] != "duplicate").sum() == 20 and df["id"].is_unique
    assert df["birth"].tolist() == list(range(len(df)))
    pd.testing.assert_frame_equal(df.head(len(first)), first)
