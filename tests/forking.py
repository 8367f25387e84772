"""Shared by the reliability tests: run the CLI in a forked child with faults armed."""
import os

from evonas import faults
from evonas import run as cli


def forked(args, fault=None, every_s=0.0, env=None, setup=None):
    """Run ``evonas.run.main(args)`` in a forked child (this interpreter, already
    imported: milliseconds) with ``fault`` configured, checkpoints every ``every_s``
    s, ``env`` added to its environment (inherited by its worker processes, so
    EVONAS_FAULT reaches them) and ``setup()`` called first. Returns the exit code
    (-9: killed by SIGKILL)."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        rc = 99
        try:
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.environ.update(env or {})
            faults.configure(fault)
            if setup:
                setup()
            cli.CHECKPOINT_EVERY_S = every_s
            rc = cli.main(args)
        finally:
            os._exit(rc)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
