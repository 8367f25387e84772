"""Progress of a search for a person watching it: a tqdm bar on a terminal or in
Jupyter; plain lines with elapsed time and ETA in a log file (no terminal), plus
a heartbeat line while no trial finishes, so a long trial does not look like a hang."""
from __future__ import annotations

import math
import sys
import threading
import time
from typing import Optional

HEARTBEAT_S = 60.0  # without a terminal: a sign of life when no trial has finished for this long


class Progress:
    """tqdm bar on a terminal (``bar=True``: ``tqdm.auto``, a widget in Jupyter);
    otherwise a plain line every ~5% with elapsed time and ETA, and a heartbeat
    line every ``heartbeat_s`` while no trial finishes (a long trial is no hang)."""

    def __init__(self, total: int, quiet: bool, already: int = 0, bar: Optional[bool] = None,
                 heartbeat_s: Optional[float] = None, clock=None):
        self.total, self.quiet, self.n, self.start_n = total, quiet, already, already
        self.best, self.failed, self.dups = -math.inf, 0, 0
        self.clock = clock or time.monotonic
        self.t0 = self.last = self.clock()
        self.bar = None
        if not quiet and (sys.stderr.isatty() if bar is None else bar):
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=already, unit="eval", dynamic_ncols=True)
        self.every = max(1, total // 20)
        self.heartbeat_s = HEARTBEAT_S if heartbeat_s is None else heartbeat_s
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._beat = None
        if not quiet and self.bar is None and self.heartbeat_s > 0:
            self._beat = threading.Thread(target=self._heartbeat, name="evonas-heartbeat", daemon=True)
            self._beat.start()

    def update(self, row: dict, evaluated: int) -> None:
        """One lineage row; ``evaluated`` (trained networks whose result is in, what
        ``--evaluations`` counts) is what the bar shows."""
        status = row.get("status")
        with self._lock:
            self.last = self.clock()
            self.failed += status == "failed"
            self.dups += status == "duplicate"
            if status in ("ok", "duplicate") and row.get("fitness") is not None:
                self.best = max(self.best, float(row["fitness"]))
            step, self.n = evaluated - self.n, evaluated
        info = f"best {self.best:.4g}, failed {self.failed}, duplicates {self.dups}"
        if self.bar is not None:
            self.bar.update(step)
            self.bar.set_postfix_str(info, refresh=False)
        elif not self.quiet and step and (self.n % self.every == 0 or self.n == self.total):
            print(f"[evonas] {self.n}/{self.total} trained networks, {info}, {self.timing()}",
                  file=sys.stderr, flush=True)

    def timing(self) -> str:
        """``elapsed 1m05s, ETA 3m10s``: the ETA from this session's rate (the
        time budget may end the run sooner)."""
        elapsed = self.clock() - self.t0
        done = self.n - self.start_n
        if done <= 0 or self.n >= self.total:
            return f"elapsed {_duration(elapsed)}"
        return f"elapsed {_duration(elapsed)}, ETA {_duration(elapsed / done * (self.total - self.n))}"

    def _heartbeat(self) -> None:
        while not self._done.wait(min(self.heartbeat_s, 5.0)):
            with self._lock:
                quiet_for = self.clock() - self.last
                if quiet_for < self.heartbeat_s:
                    continue
                self.last = self.clock()  # one line per interval, not one per poll
            print(f"[evonas] still running: {self.n}/{self.total} trained networks, no trial finished "
                  f"for {_duration(quiet_for)}, {self.timing()}", file=sys.stderr, flush=True)

    def close(self) -> None:
        self._done.set()
        if self._beat is not None:
            self._beat.join()
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    s = int(round(max(0.0, seconds)))
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"
