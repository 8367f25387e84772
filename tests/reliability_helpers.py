"""Shared by the issue-15 reliability tests (helper, not a test): CLI arguments for a
run on an NB201 table (conftest's synthetic ``nb201_table``), tree hashes, and a CLI
run in a forked child whose stderr is kept."""
import os
import sys

from evonas import faults
from evonas import run as cli
from helpers import tree_hash  # noqa: F401 (re-exported for the reliability tests)


def table_argv(table, run_dir, evals=40, seed=3):
    return ["--genome", "nb201", "--population", "8", "--sample-size", "3", "--evaluations", str(evals),
            "--seed", str(seed), "--benchmark-table", str(table), "--run-dir", str(run_dir), "--quiet"]


def evaluated(df) -> int:
    """Trained networks in a lineage (what --evaluations counts; duplicates are rows too)."""
    return int((df["status"] != "duplicate").sum())


def fork_cli(args, fault=None, stderr=None, every_s=0.0, env=None):
    """Start ``evonas.run.main(args)`` in a forked child (faults armed, stderr to the
    file ``stderr``); returns its pid without waiting."""
    pid = os.fork()
    if pid == 0:
        rc = 99
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.dup2(os.open(str(stderr), os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if stderr else fd, 2)
            sys.stderr = os.fdopen(2, "w", buffering=1)  # pytest's capture replaced the object
            os.environ.update(env or {})
            faults.configure(fault)
            cli.CHECKPOINT_EVERY_S = every_s
            rc = cli.main(args)
        finally:
            os._exit(rc)
    return pid


def wait_rc(pid) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def one_line(capsys_or_text, *needles) -> str:
    err = capsys_or_text if isinstance(capsys_or_text, str) else capsys_or_text.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]
