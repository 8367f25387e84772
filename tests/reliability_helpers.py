"""Shared by the issue-15 reliability tests (helper, not a test): a generated
NAS-Bench-201 table (no ../shared needed), tree hashes, and a CLI run in a forked
child whose stderr is kept."""
import hashlib
import itertools
import os
import sys
from pathlib import Path

import numpy as np

from evonas import faults
from evonas import run as cli

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


def make_table(path: Path) -> Path:
    """All 15,625 NB201 cells with seeded made-up accuracies (a deterministic table)."""
    rng = np.random.default_rng(0)
    lines = ["arch_str,c10_val_12,c10_test_200"]
    for ops in itertools.product(OPS, repeat=6):
        a = (f"|{ops[0]}~0|+|{ops[1]}~0|{ops[2]}~1|+|{ops[3]}~0|{ops[4]}~1|{ops[5]}~2|")
        v = rng.uniform(10, 90)
        lines.append(f"{a},{v:.4f},{v + rng.uniform(0, 5):.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def table_argv(table, run_dir, evals=40, seed=3):
    return ["--genome", "nb201", "--population", "8", "--sample-size", "3", "--evaluations", str(evals),
            "--seed", str(seed), "--benchmark-table", str(table), "--run-dir", str(run_dir), "--quiet"]


def evaluated(df) -> int:
    """Trained networks in a lineage (what --evaluations counts; duplicates are rows too)."""
    return int((df["status"] != "duplicate").sum())


def tree_hash(root: Path) -> dict:
    """{relative path: sha256} of every file under root ("dir" for directories)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(Path(root).rglob("*"))}


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
