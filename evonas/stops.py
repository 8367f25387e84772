"""Stopping a run on purpose: SIGINT (Ctrl-C) and SIGTERM (how SLURM, Kubernetes
and ``kill`` stop a job) raise the same way, so both end the workers, keep the
lineage synced and the last checkpoint intact, and print one line.

``install()`` (the CLI calls it) makes both signals raise a ``Stop`` subclass of
``KeyboardInterrupt``: every ``finally``/``except KeyboardInterrupt`` cleanup
runs as for Ctrl-C, and a *plain* ``KeyboardInterrupt`` raised by plug-in code is
told apart from a real stop (``evonas.plugins`` turns it into a plug-in error).
"""
from __future__ import annotations

import signal
import threading

EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + signal number, the shell's convention
_installed = False


class Stop(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.signum, 130)


def _raise(signum, frame):
    raise Stop(signum)


def install():
    """Route SIGINT and SIGTERM to ``Stop`` (main thread only); returns a function
    that puts the previous handlers back (the CLI calls it when it returns, so an
    embedding program such as pytest keeps its own)."""
    global _installed
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    before = {s: signal.signal(s, _raise) for s in EXIT_CODES}
    _installed = True

    def restore() -> None:
        global _installed
        for s, h in before.items():
            signal.signal(s, h)
        _installed = False
    return restore


def installed() -> bool:
    """Whether ``install`` ran: only then is a plain KeyboardInterrupt not a stop."""
    return _installed
