"""Named fault-injection points, for the reliability tests (real faults, not sleeps).

Code marks a point with ``faults.point("after_lineage_row")``. Nothing happens
unless the environment variable ``EVONAS_FAULT`` (read once, at import; worker
processes inherit it) or ``configure()`` names that point::

    EVONAS_FAULT=NAME[:COUNT][:ACTION][,NAME...]

* ``COUNT`` (integer >= 1, default 1): fire on the COUNT-th hit of the point in
  this process and on every later hit (a killed process never sees a later one).
* ``ACTION``: ``kill`` (default: ``SIGKILL`` to this very process, no cleanup, no
  ``finally``), ``raise`` (``InjectedFault``, an ordinary exception), ``hang``
  (sleep forever), ``sleep=SECONDS`` (sleep, then go on), ``oom`` (raise
  ``torch.cuda.OutOfMemoryError``) and ``cuda`` (raise the ``RuntimeError`` a
  failed CUDA kernel raises): the last two let CPU-only tests drive the GPU
  recovery paths (OOM halving, worker replacement) through the real code;
  ``enospc`` raises the ``OSError`` a full disk gives (errno ENOSPC).

``EVONAS_FAULT_ONCE=PATH`` makes every fault fire at most once across processes:
the first one to fire creates ``PATH`` (O_EXCL) and later ones see it and pass.
That is how a test kills one worker mid-trial and lets its replacement succeed.

Points (where they sit):

* ``driver_inflight``  engine, right after a job is handed to the evaluator
* ``before_lineage_row``  driver, result finished, its lineage row not yet written
* ``after_lineage_row``  driver, row written (and flushed), checkpoint not yet
* ``checkpoint_tmp``  ``io.atomic_path``: tmp file written, not yet renamed
* ``worker_trial``  ``evaluate.train``: inside the training loop, once per step
* ``after_final_row``  ``final.FinalStage``: a final.csv row written, the next not yet
* ``disk_write``  every write into the run directory (lineage row, atomic file), just before it

Cost when no fault is configured: one global lookup and a compare per hit.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Optional

from .errors import ConfigError

ENV, ONCE_ENV = "EVONAS_FAULT", "EVONAS_FAULT_ONCE"
ACTIONS = ("kill", "raise", "hang", "sleep", "oom", "cuda", "enospc")
POINTS = ("driver_inflight", "before_lineage_row", "after_lineage_row", "checkpoint_tmp", "worker_trial",
          "after_final_row", "disk_write")


class InjectedFault(RuntimeError):
    """Raised by a point whose action is ``raise`` (a deliberate test fault)."""


@dataclass
class _Fault:
    count: int
    action: str
    seconds: float = 0.0
    hits: int = 0


_ACTIVE: Optional[dict[str, _Fault]] = None  # None: no fault configured (the fast path)


def parse(spec: str) -> dict[str, _Fault]:
    """``"a:3:raise,b"`` -> {name: fault}; ConfigError on a malformed item."""
    out: dict[str, _Fault] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, *rest = item.split(":")
        count, action, seconds = 1, "kill", 0.0
        for part in rest:
            if part.isdigit() and int(part) >= 1:
                count = int(part)
            elif part in ACTIONS and part != "sleep":
                action = part
            elif part.startswith("sleep="):
                try:
                    action, seconds = "sleep", float(part[6:])
                except ValueError:
                    raise ConfigError(ENV, name, part, "sleep=SECONDS needs a number") from None
            else:
                raise ConfigError(ENV, name, part, f"expected a count >= 1 or one of {', '.join(ACTIONS)}")
        if name not in POINTS:
            raise ConfigError(ENV, "point", name, f"unknown fault point (known: {', '.join(POINTS)})")
        out[name] = _Fault(count, action, seconds)
    return out


def configure(spec: Optional[str]) -> None:
    """Set the faults of this process (None or '' clears them); tests use it in a
    forked child instead of the environment variable."""
    global _ACTIVE
    _ACTIVE = parse(spec) if spec else None


def point(name: str) -> None:
    """A named place where a configured fault fires (no-op otherwise)."""
    if _ACTIVE is None:
        return
    f = _ACTIVE.get(name)
    if f is None:
        return
    f.hits += 1
    if f.hits >= f.count and _claim():
        _fire(name, f)


def _claim() -> bool:
    path = os.environ.get(ONCE_ENV)
    if not path:
        return True
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def _fire(name: str, f: _Fault) -> None:
    if f.action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)  # SIGKILL is asynchronous on some systems: never run past the point
    elif f.action == "raise":
        raise InjectedFault(f"injected fault at {name} (hit {f.hits})")
    elif f.action == "oom":
        import torch
        raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (injected at {name}, hit {f.hits})")
    elif f.action == "cuda":
        raise RuntimeError(f"CUDA error: an illegal memory access was encountered (injected at {name})")
    elif f.action == "enospc":
        import errno
        raise OSError(errno.ENOSPC, f"No space left on device (injected at {name})")
    elif f.action == "hang":
        while True:
            time.sleep(3600)
    else:
        time.sleep(f.seconds)


configure(os.environ.get(ENV))
