"""Engine bookkeeping cost per child (issue 5), microseconds, per genome type.

Fitness is a zero-cost deterministic function of the genome (CRC32 of its string,
scaled to 0..1), so every microsecond measured is the search machinery's own.
Columns, median per child after the P initial members (aging, P=100, S=25):

* ``bare``: a minimal aging loop -- deque FIFO, tournament on a numpy Generator,
  the genome type's registered mutation functions called directly (weighted), the
  fitness. No validation, no hash, no Member, no lineage: the floor.
* ``search off``: ``evonas.evolve.Search`` + ``FunctionEvaluator`` with
  ``dedup='off'``: adds operator checking (``Variation``: type, ``validate``,
  space), ``arch_hash``, DEAP individual, ids, hall of fame, statistics
  logbook, the lineage row (``on_record``).
* ``search reuse``: the CLI default, ``dedup='reuse'`` with ``confirm_hash=True``
  (hash-cache lookup; an isomorphism check when two different strings share a
  hash, memoised per pair).

The search columns are the time between consecutive lineage rows (one child each,
the evaluator's cost included, i.e. the CRC32). Times are this process's CPU time
(``time.process_time``), so other load on a shared machine does not inflate them;
wall time is the same on an idle machine. Goal (issue 5): <= 2 ms per child.

    python benchmarks/overhead.py [--children 1000] [--genome nb201 ...] [--seed 0]

``--journal N [--table CSV]``: instead, the cost of the run's durable record at
the start and at the end of one N-evaluation NAS-Bench-201 table run (aging P=10,
S=3, dedup off: one child, one lookup, per evaluation), through the CLI's own
writers: ``journal append`` (one event: a line written and flushed, no fsync),
``checkpoint`` (what the CLI does at most once a second: fsync the journal and the
lineage, rewrite the ``state.json`` summary atomically), ``replay`` (a resume
rebuilding the search from the journal, once). Medians over the first and the
last 100 evaluations, wall microseconds; the ratio last/first is what says
whether the cost grows with the run.
"""
from __future__ import annotations

import argparse
import sys
import time
import zlib
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evonas.evaluate.base import FunctionEvaluator, Result  # noqa: E402
from evonas.evolve import Search  # noqa: E402
from evonas.genome import GENOMES  # noqa: E402
from evonas.operators import mutations  # noqa: E402

P, S = 100, 25


def fitness_of(genome) -> float:
    """Deterministic, ~1 us: CRC32 of the genome string in 0..1."""
    return zlib.crc32(genome.to_string().encode()) / 2**32


def bare_loop(genome_type: str, children: int, seed: int) -> np.ndarray:
    """Per-child seconds of the minimal aging loop (see module docstring)."""
    cls = GENOMES.get(genome_type)
    space = cls.Space()
    ops = [op for op in mutations(genome_type) if op.weight > 0]
    p = np.array([op.weight for op in ops]) / sum(op.weight for op in ops)
    rng = np.random.default_rng(seed)
    pop = deque()
    for _ in range(P):
        g = cls.sample(rng, space)
        pop.append((fitness_of(g), g))
    out = np.empty(children)
    for k in range(children):
        t = time.process_time()
        idx = rng.integers(P, size=S)
        parent = max((pop[i] for i in idx), key=lambda x: x[0])[1]
        op = ops[int(rng.choice(len(ops), p=p))]
        child = op.fn(parent, rng)
        pop.append((fitness_of(child), child))
        pop.popleft()
        out[k] = time.process_time() - t
    return out


def search_loop(genome_type: str, children: int, seed: int, dedup: str, confirm: bool) -> tuple[np.ndarray, dict]:
    """Per-child seconds of the full engine: gaps between consecutive lineage rows."""
    stamps = []
    ev = FunctionEvaluator(lambda job: Result(job.id, "ok", fitness=fitness_of(job.genome)))
    s = Search(ev, genome_type, strategy="aging", strategy_args={"population": P, "sample": S}, seed=seed,
               max_evaluations=P + children, max_seconds=None, ordered=False, dedup=dedup, count_duplicates=True,
               confirm_hash=confirm,
               on_record=lambda row: stamps.append(time.process_time()))
    out = s.run()
    return np.diff(np.array(stamps[P - 1:])), out


def journal_cost(table: str, evaluations: int, seed: int) -> dict:
    """Per-event journal append and per-row checkpoint cost at both ends of one run."""
    import tempfile

    from evonas.evaluate.table import TableEvaluator
    from evonas.run import Checkpointer
    from evonas.store.journal import Journal
    from evonas.store.lineage import LineageWriter
    from evonas.store.rundir import RunPaths

    root = Path(tempfile.mkdtemp(prefix="evonas-journal-"))
    paths = RunPaths(root)
    journal, writer = Journal(paths.journal), LineageWriter(paths.lineage, ("c10_test_200",))
    ck = Checkpointer(paths, journal, writer)
    append_us, check_ms = [], []

    def on_event(ev):
        t = time.perf_counter()
        journal.append(ev)
        append_us.append((time.perf_counter() - t) * 1e6)

    def on_checkpoint(snap):
        if snap["counters"]["births"] <= 100 or snap["counters"]["births"] > evaluations - 100:
            t = time.perf_counter()
            ck(snap)
            check_ms.append((snap["counters"]["births"], (time.perf_counter() - t) * 1e3))

    def make(**kw):
        return Search(TableEvaluator(table), "nb201", strategy="aging", strategy_args={"population": 10, "sample": 3},
                      seed=seed, max_evaluations=evaluations, max_seconds=None, ordered=False, dedup="off",
                      confirm_hash=False, **kw)

    make(on_record=lambda r: writer.write(r, sync=False), on_event=on_event, on_checkpoint=on_checkpoint).run()
    journal.close()
    writer.close()
    events = Journal(paths.journal).events
    t = time.perf_counter()
    make().replay(events)
    replay_s = time.perf_counter() - t
    first = [ms for b, ms in check_ms if b <= 100]
    last = [ms for b, ms in check_ms if b > evaluations - 100]
    per_eval = len(append_us) / evaluations  # child + done (+ a log record every 10th)
    n = int(100 * per_eval)
    out = {"events": len(append_us), "append first": np.median(append_us[:n]), "append last": np.median(append_us[-n:]),
           "checkpoint first": np.median(first), "checkpoint last": np.median(last), "replay s": replay_s,
           "journal bytes": paths.journal.stat().st_size, "state bytes": paths.state.stat().st_size}
    import shutil
    shutil.rmtree(root)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--children", type=int, default=1000, help="children timed after the P initial members")
    ap.add_argument("--genome", action="append", choices=GENOMES.names(), help="default: every registered type")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--journal", type=int, metavar="N", help="time the journal/checkpoint over an N-evaluation "
                    "table run instead (see the docstring)")
    ap.add_argument("--table", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201_cifar10.csv"))
    a = ap.parse_args(argv)
    if a.journal:
        r = journal_cost(a.table, a.journal, a.seed)
        print(f"{a.journal} evaluations, {r['events']} journal events ({r['journal bytes']} bytes), "
              f"state.json {r['state bytes']} bytes; replay (resume) of the whole journal {r['replay s']:.2f} s")
        print(f"{'':<26} {'first 100':>10} {'last 100':>10} {'last/first':>10}")
        for name, unit in (("append", "us"), ("checkpoint", "ms")):
            f, l = r[f"{name} first"], r[f"{name} last"]
            print(f"{name + ' (' + unit + ', median)':<26} {f:>10.1f} {l:>10.1f} {l / f:>10.2f}")
        return
    print(f"aging P={P} S={S}, {a.children} children per run; median (p90) microseconds per child")
    print(f"{'genome':<12} {'bare':>14} {'search off':>16} {'search reuse':>16} {'dup frac':>9} {'x bare':>7}")
    for name in a.genome or GENOMES.names():
        bare = bare_loop(name, a.children, a.seed) * 1e6
        off, _ = search_loop(name, a.children, a.seed, "off", False)
        reuse, out = search_loop(name, a.children, a.seed, "reuse", True)
        off, reuse = off * 1e6, reuse * 1e6
        cell = lambda x: f"{np.median(x):.0f} ({np.percentile(x, 90):.0f})"  # noqa: E731
        print(f"{name:<12} {cell(bare):>14} {cell(off):>16} {cell(reuse):>16} "
              f"{out['duplicates'] / max(1, out['children']):>9.3f} {np.median(off) / np.median(bare):>7.1f}",
              flush=True)


if __name__ == "__main__":
    main()
