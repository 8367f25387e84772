"""kill -9 of the driver at named fault points, then ``--resume`` (table evaluator).

Each test runs the CLI in a child process (``os.fork`` of this already-imported
interpreter, so it costs milliseconds; one test uses a genuine
``python -m evonas.run`` subprocess with ``EVONAS_FAULT`` in its environment), lets
``evonas.faults`` SIGKILL it at a point, checks it really died by SIGKILL, resumes,
and compares the final lineage with an uninterrupted run of the same seed: same
rows in the same order (``train_seconds``/``worker`` aside), so no completed
evaluation was lost or re-run and no id is duplicated.
"""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from forking import forked as _forked

from evonas import faults

ROOT = Path(__file__).resolve().parents[1]
TABLE = None  # the synthetic NB201 table (conftest's nb201_table), set by _table: no ../shared needed


@pytest.fixture(scope="module", autouse=True)
def _table(nb201_table):
    global TABLE
    TABLE = nb201_table
EVALS = 60
IGNORED = ["train_seconds", "worker", "started_s", "finished_s"]


def argv(run_dir, evals=EVALS, workers=1, seed=3):
    return ["--genome", "nb201", "--population", "10", "--sample-size", "3", "--evaluations", str(evals),
            "--seed", str(seed), "--workers", str(workers), "--benchmark-table", str(TABLE),
            "--run-dir", str(run_dir), "--quiet"]


def resume(run_dir):
    return ["--resume", str(run_dir), "--quiet"]


def forked(args, fault=None, every_s=0.0, calls=None):
    """``forking.forked``; ``calls``: a file to which every table lookup appends its job id."""
    return _forked(args, fault, every_s, setup=(lambda: _log_lookups(calls)) if calls else None)


def _log_lookups(path):
    from evonas.evaluate.table import TableEvaluator
    orig = TableEvaluator.lookup

    def logged(self, job):
        with open(path, "a") as fh:
            fh.write(f"{job.id}\n")
        return orig(self, job)
    TableEvaluator.lookup = logged


def evaluated(path):
    return [int(x) for x in Path(path).read_text().split()] if Path(path).exists() else []


def lineage(run_dir):
    df = pd.read_csv(Path(run_dir) / "lineage.csv")
    return df.drop(columns=IGNORED)


def check_complete(run_dir, evals=EVALS):
    """--evaluations counts trained networks; duplicates come on top."""
    df = lineage(run_dir)
    assert (df["status"] != "duplicate").sum() == evals
    assert df["id"].is_unique and df["birth"].tolist() == list(range(len(df)))
    return df


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run, one slot, seed 3."""
    d = tmp_path_factory.mktemp("ref") / "run"
    assert forked(argv(d)) == 0
    return check_complete(d)


@pytest.mark.parametrize("fault, every_s", [
    ("driver_inflight:25", 0.0),       # jobs in flight, results not yet finished
    ("before_lineage_row:25", 0.0),    # a result finished, its row not yet written
    ("after_lineage_row:25", 0.0),     # row written, checkpoint not yet
    ("after_lineage_row:41", 3600.0),  # no fsync since the start: 41 journaled results replayed
    ("checkpoint_tmp:25", 0.0),        # state.json.tmp (the summary) written, not yet renamed
])
def test_kill9_then_resume_equals_uninterrupted(tmp_path, reference, fault, every_s):
    d = tmp_path / "run"
    assert forked(argv(d), fault, every_s, calls=tmp_path / "calls1") == -signal.SIGKILL
    killed = lineage(d)
    assert 0 < len(killed) < len(reference) and killed["id"].is_unique
    if fault.startswith("checkpoint_tmp"):
        assert (d / "state.json.tmp").exists()  # really died between write and rename
    assert forked(resume(d), every_s=every_s, calls=tmp_path / "calls2") == 0
    pd.testing.assert_frame_equal(check_complete(d), reference)
    again = evaluated(tmp_path / "calls2")
    assert len(again) == len(set(again))
    trained = killed[killed["reason"] == "-"]["id"]  # evaluated, not reused duplicates
    assert set(trained) <= set(evaluated(tmp_path / "calls1"))
    assert not set(trained) & set(again), "a completed evaluation was run again after resume"


@pytest.mark.parametrize("tear", ["partial row appended", "last row cut mid-line", "NUL garbage"])
def test_torn_lineage_tail_is_repaired_on_resume(tmp_path, reference, tear):
    """The driver dies while writing a row: simulated by tearing the file after a
    kill at 'after_lineage_row' (checkpoint older than the last rows)."""
    d = tmp_path / "run"
    assert forked(argv(d), "after_lineage_row:30", every_s=3600.0) == -signal.SIGKILL
    f = d / "lineage.csv"
    data = f.read_bytes()
    last = data.rstrip(b"\n").rsplit(b"\n", 1)[1]
    if tear == "partial row appended":
        f.write_bytes(data + last[: len(last) // 2])
    elif tear == "last row cut mid-line":  # that completed evaluation is lost, so re-run
        f.write_bytes(data[: len(data) - len(last) // 2 - 1])
    else:
        f.write_bytes(data + b"\x00" * 37)
    with pytest.raises(Exception):  # control: the torn file is not a clean CSV any more
        df = pd.read_csv(f)
        assert len(df) == 30 and df["birth"].notna().all()
    assert forked(resume(d), every_s=0.0) == 0
    pd.testing.assert_frame_equal(check_complete(d), reference)


def test_killed_twice_and_with_more_budget(tmp_path, reference):
    """Kill, resume, kill again, then resume with a larger budget: the first EVALS rows
    are still those of the uninterrupted run and nothing is duplicated."""
    d = tmp_path / "run"
    assert forked(argv(d), "after_lineage_row:15", every_s=0.5) == -signal.SIGKILL
    assert forked(resume(d), "driver_inflight:20", every_s=0.5) == -signal.SIGKILL
    assert forked(resume(d), every_s=0.5) == 0
    pd.testing.assert_frame_equal(check_complete(d), reference)
    assert forked(["--resume", str(d), "--evaluations", str(EVALS + 20), "--quiet"]) == 0
    df = check_complete(d, EVALS + 20)
    pd.testing.assert_frame_equal(df.head(len(reference)), reference)


def test_kill9_with_several_slots_loses_nothing(tmp_path):
    """Four lookups in flight (asynchronous path): after kill + resume, every id is
    unique, births are 0..N-1 and every finished row of the killed run survives."""
    d = tmp_path / "run"
    assert forked(argv(d, workers=4), "before_lineage_row:33", every_s=0.0) == -signal.SIGKILL
    before = lineage(d)
    assert forked(resume(d)) == 0
    after = check_complete(d)
    pd.testing.assert_frame_equal(after.head(len(before)), before)


def test_real_subprocess_sigkill_via_environment(tmp_path, reference):
    """The genuine CLI (``python -m evonas.run``) with EVONAS_FAULT in its environment,
    default checkpoint interval; resumed with ``--resume``."""
    d = tmp_path / "run"
    env = {**os.environ, "EVONAS_FAULT": "after_lineage_row:33", "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "evonas.run", *argv(d)], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == -signal.SIGKILL, p.stderr
    assert len(lineage(d)) == 33
    env.pop("EVONAS_FAULT")
    p = subprocess.run([sys.executable, "-m", "evonas.run", "--resume", str(d), "--quiet"], env=env,
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    pd.testing.assert_frame_equal(check_complete(d), reference)


def test_fault_spec_parsing():
    assert faults.parse("after_lineage_row:7")["after_lineage_row"].count == 7
    f = faults.parse("worker_trial:2:sleep=0.5,checkpoint_tmp:raise")
    assert (f["worker_trial"].action, f["worker_trial"].seconds) == ("sleep", 0.5)
    assert f["checkpoint_tmp"].action == "raise" and f["checkpoint_tmp"].count == 1
    from evonas.errors import ConfigError
    for bad in ("nowhere", "after_lineage_row:0", "after_lineage_row:explode", "worker_trial:sleep=x"):
        with pytest.raises(ConfigError):
            faults.parse(bad)
    faults.configure("after_lineage_row:2:raise")
    try:
        faults.point("after_lineage_row")
        with pytest.raises(faults.InjectedFault):
            faults.point("after_lineage_row")
        faults.point("checkpoint_tmp")  # not configured: nothing
    finally:
        faults.configure(None)
    faults.point("after_lineage_row")  # cleared: nothing
