"""Wall time and peak memory of the README's main command (issue 7).

Runs ``python -m evonas.run --genome tree --population 100`` (plus any extra
flags given after ``--``) as a subprocess into a temporary run directory and
measures, until the command exits:

* wall time in seconds (``time.monotonic`` around the subprocess);
* peak RSS of the *process tree* (driver + worker processes): the sum of
  ``VmRSS`` over the driver and all its descendants, sampled from ``/proc``
  every ``--interval`` seconds (psutil is not a dependency). Shared pages
  (e.g. the torch libraries mapped by every worker) are counted once per
  process, so this over-estimates the real footprint a little;
* peak PSS of the process tree (``Pss`` of ``/proc/PID/smaps_rollup``: shared
  pages split between the processes mapping them), the real footprint;
* peak RSS of the largest single process (``resource.getrusage(RUSAGE_CHILDREN)``
  ``ru_maxrss``, exact, kernel-maintained: a cross-check of the sampled figure).

Goal (issue 7): under 10 minutes and 2 GB on a 2-core CPU machine (memory
judged on the summed PSS, the tree's real footprint; the summed RSS is printed
as the pessimistic bound). Exits 0 when both goals are met, 1 otherwise (the
command's own exit code if it failed).

    python benchmarks/default_run.py [--interval 0.5] [--keep DIR] [-- EXTRA FLAGS]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["-m", "evonas.run", "--genome", "tree", "--population", "100"]
GOAL_SECONDS = 600.0
GOAL_BYTES = 2 * 1024 ** 3


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process visible in /proc."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:  # exited between listdir and open
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])  # comm may contain spaces
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _field_bytes(path: str, key: str) -> int:
    """A ``key: N kB`` line of a /proc file, in bytes (0 if absent or exited)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_memory(root: int) -> tuple[int, int, int]:
    """(summed RSS, summed PSS, number of processes) of ``root`` and its
    descendants, in bytes. PSS splits shared pages between the processes that map
    them, so its sum is the tree's real footprint; RSS counts them once per process."""
    tree, todo, rss, pss, count = _children(), [root], 0, 0, 0
    while todo:
        pid = todo.pop()
        rss += _field_bytes(f"/proc/{pid}/status", "VmRSS:")
        pss += _field_bytes(f"/proc/{pid}/smaps_rollup", "Pss:")
        count += 1
        todo.extend(tree.get(pid, ()))
    return rss, pss, count


def measure(extra: list[str], run_dir: Path, interval: float) -> dict:
    cmd = [sys.executable, *COMMAND, "--run-dir", str(run_dir), "--quiet", *extra]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak, peak_pss, peak_procs = 0, 0, 0
    while proc.poll() is None:
        rss, pss, n = tree_memory(proc.pid)
        peak_pss = max(peak_pss, pss)
        if rss > peak:
            peak, peak_procs = rss, n
        time.sleep(interval)
    wall = time.monotonic() - t0
    out = proc.stdout.read() if proc.stdout else ""
    single = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kB on Linux
    return {"cmd": cmd, "rc": proc.returncode, "wall_s": wall, "tree_peak_bytes": peak,
            "tree_peak_processes": peak_procs, "tree_peak_pss_bytes": peak_pss, "max_single_bytes": single, "output": out}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--interval", type=float, default=0.5, help="seconds between /proc samples (default 0.5)")
    p.add_argument("--keep", metavar="DIR", help="run directory to keep (default: a deleted temp dir)")
    args = p.parse_args(own)
    with tempfile.TemporaryDirectory(prefix="evonas-bench-") as tmp:
        run_dir = Path(args.keep) if args.keep else Path(tmp) / "run"
        r = measure(extra, run_dir, args.interval)
    print(r["output"].rstrip())
    gib = 1024 ** 3
    print(f"\ncommand: {' '.join(r['cmd'][1:])}")
    print(f"cpu cores: {os.cpu_count()}, exit code {r['rc']}")
    print(f"wall time: {r['wall_s']:.1f} s (goal < {GOAL_SECONDS:.0f} s)")
    print(f"peak RSS, process tree (sum over {r['tree_peak_processes']} processes, /proc sampled every "
          f"{args.interval:g} s): {r['tree_peak_bytes'] / gib:.2f} GiB")
    print(f"peak PSS, process tree (shared pages split between processes): "
          f"{r['tree_peak_pss_bytes'] / gib:.2f} GiB (goal < 2 GiB)")
    print(f"peak RSS, largest single process (getrusage RUSAGE_CHILDREN): {r['max_single_bytes'] / gib:.2f} GiB")
    if r["rc"] != 0:
        return r["rc"]
    return 0 if r["wall_s"] < GOAL_SECONDS and r["tree_peak_pss_bytes"] < GOAL_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
