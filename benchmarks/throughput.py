"""Per-trial overhead outside the trial's own work (issue 19), old and new worker
memory cleanup side by side in one run.

Two measurements, each for every ``--workers`` count and every ``--gc`` mode
(``legacy``: the old full ``gc.collect()`` after every trial; ``freeze``: the
current ``gc.freeze()`` + collection of the trial's own objects, see
``evonas/evaluate/trial.py``):

* ``pool``: a fresh ``LocalPool`` trains the same seeded list of random ``tree``
  genomes on digits (the CLI's training defaults), ``workers`` trials in flight,
  the next one submitted as soon as a result is back (as the engine does). Start-up
  (until every worker is ready) is excluded; ``overhead/trial`` is
  (workers x wall - sum of in-worker ``train_seconds``) / trials, i.e. the
  worker-seconds per trial spent outside build + train + score + save;
  ``wall/ideal`` is wall / (sum train_seconds / workers). Worker RSS (MB, summed
  over workers, read from /proc) after trial 10 and after the last trial shows
  whether memory grows.
* ``cli``: the issue's command, ``python -m evonas.run --genome tree --strategy
  random --inherit none --time-budget 0 --evaluations E --workers N`` (driver,
  lineage with fsync, checkpoints, dedup included). From the lineage: the steady
  phase starts when the N-th trial has finished (every worker started and warm);
  ``overhead/trial`` is (N x steady span - its train_seconds) / its trials;
  ``wall/ideal`` is the process wall / the same wall with that overhead removed.

``trials/s`` of N workers over 1 worker (same genomes) is the parallel speed-up.

``micro`` (in this process, medians of 5): what one trial's cleanup costs with a
full ``gc.collect()`` (legacy) vs a collection after ``gc.freeze()``, the pickle
size and time of a Job and a Result (what the pipe carries), and saving the
trial's weights (safetensors, atomic write with fsync: inside ``train_seconds``).

    python benchmarks/throughput.py                       # all, 1 and 2 workers, 150 trials
    python benchmarks/throughput.py --mode micro          # the per-item costs, seconds
    python benchmarks/throughput.py --mode pool --trials 150 --workers 1,2 --gc legacy,freeze
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evonas.evaluate.base import Job  # noqa: E402
from evonas.evaluate.data import DataSpec  # noqa: E402
from evonas.evaluate.train import TrainConfig  # noqa: E402
from evonas.evaluate.trial import GC_ENV  # noqa: E402
from evonas.evaluate.workers import LocalPool  # noqa: E402
from evonas.genome import GENOMES  # noqa: E402


@contextmanager
def gc_mode(mode: str):
    """Worker processes inherit the environment: set the cleanup mode for them."""
    old = os.environ.get(GC_ENV)
    os.environ[GC_ENV] = mode
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(GC_ENV, None)
        else:
            os.environ[GC_ENV] = old


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def genomes(n: int, seed: int) -> list:
    cls = GENOMES.get("tree")
    rng = np.random.default_rng(seed)
    return [cls.sample(rng, cls.Space()) for _ in range(n)]


def run_pool(workers: int, gs: list, cfg: TrainConfig) -> dict:
    """One fresh pool over ``gs``; -> the figures of one row."""
    with LocalPool(DataSpec("digits", seed=0), cfg, ["cpu"] * workers) as pool:
        t0 = time.monotonic()
        pool.wait_ready()
        startup = time.monotonic() - t0
        todo, done, rss10 = list(enumerate(gs)), [], float("nan")
        t1 = time.monotonic()
        for _ in range(workers):
            i, g = todo.pop(0)
            pool.submit(Job(i, g, seed=i))
        while len(done) < len(gs):
            for r in pool.poll():
                done.append(r)
                if todo:
                    i, g = todo.pop(0)
                    pool.submit(Job(i, g, seed=i))
                if len(done) == 10:
                    rss10 = sum(rss_mb(p) for p in pool.pids)
        wall = time.monotonic() - t1
        time.sleep(0.3)  # let the last cleanup finish before reading RSS
        rss_end = sum(rss_mb(p) for p in pool.pids)
    train = sum(r.train_seconds for r in done)
    return dict(startup=startup, wall=wall, train=train, n=len(done), rss10=rss10, rss_end=rss_end,
                overhead=(workers * wall - train) / len(done), ratio=wall / (train / workers),
                rate=len(done) / wall, ok=sum(r.status == "ok" for r in done))


def run_cli(workers: int, evaluations: int, seed: int) -> dict:
    import pandas as pd
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "evonas.run", "--genome", "tree", "--strategy", "random",
               "--inherit", "none", "--time-budget", "0", "--evaluations", str(evaluations),
               "--workers", str(workers), "--seed", str(seed), "--run-dir", str(d), "--quiet"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            raise SystemExit(f"evonas.run failed ({p.returncode}): {p.stderr[-1500:]}")
        df = pd.read_csv(d / "lineage.csv").sort_values("finished_s")
    trained = df[df["worker"].astype(str).str.strip().isin(["", "-", "nan"]) == False]  # noqa: E712
    f_n = trained["finished_s"].iloc[workers - 1]
    steady = trained[trained["finished_s"] > f_n]
    span = df["finished_s"].max() - f_n
    over = (workers * span - steady["train_seconds"].sum()) / len(steady)
    ideal = wall - span + steady["train_seconds"].sum() / workers
    return dict(wall=wall, n=len(trained), rows=len(df), train=trained["train_seconds"].sum(),
                overhead=over, ratio=wall / ideal, rate=len(steady) / span, span=span)


def micro(gs: list, cfg: TrainConfig) -> None:
    import gc
    import pickle

    import torch

    from evonas.evaluate.train import evaluate_job
    from evonas.store.weights import save_weights_file

    def median_ms(f, n=5):
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
        return 1e3 * sorted(ts)[n // 2]
    torch.set_num_threads(1)
    data = DataSpec("digits", seed=0).load()
    evaluate_job(Job(0, gs[0], seed=0), data, cfg)  # warm-up: lazy torch state
    full = median_ms(gc.collect)
    gc.freeze()
    frozen = []
    for i in range(1, 6):
        res = evaluate_job(Job(i, gs[i], seed=i), data, cfg)
        t = time.perf_counter()
        gc.collect()
        frozen.append(1e3 * (time.perf_counter() - t))
        gc.freeze()
    gc.unfreeze()
    job = Job(7, gs[7], parent_ids=(1,), operator="widen", inherit="exact", parent_genome=gs[1], seed=7)
    jp, rp = pickle.dumps(job), pickle.dumps(res)
    model = __import__("evonas.compile", fromlist=["compile_graph"]).compile_graph(
        gs[1].decode(), data.input_shape, data.num_classes, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        save = median_ms(lambda: save_weights_file(Path(tmp) / "w.safetensors", model.state_dict()))
    print(f"micro full gc.collect {full:.1f} ms; after gc.freeze, collect after a trial "
          f"{sorted(frozen)[2]:.1f} ms (median of 5)")
    print(f"micro pickle Job {len(jp)} B {median_ms(lambda: pickle.loads(pickle.dumps(job))):.2f} ms, "
          f"Result {len(rp)} B {median_ms(lambda: pickle.loads(pickle.dumps(res))):.2f} ms (round trip)")
    print(f"micro save weights ({sum(p.numel() for p in model.parameters())} params, fsync) {save:.1f} ms")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=("pool", "cli", "micro", "both"), default="both")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    ap.add_argument("--gc", default="legacy,freeze", help="cleanup modes to compare (legacy, freeze)")
    ap.add_argument("--trials", type=int, default=150, help="trials per pool row / evaluations per CLI row")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    counts = [int(w) for w in a.workers.split(",")]
    modes = [m.strip() for m in a.gc.split(",") if m.strip()]
    # the CLI's training defaults (batch 64, 1 epoch), one torch thread per worker on 2 cores
    cfg = TrainConfig(epochs=1, batch_size=64, threads=1)
    gs = genomes(a.trials, a.seed)
    print(f"# {a.trials} trials of random tree genomes on digits, machine: {os.cpu_count()} cores")
    if a.mode in ("micro", "both"):
        micro(gs, cfg)
    if a.mode in ("pool", "both"):
        print("pool  gc      workers  start-up s  wall s  train s  overhead/trial ms  wall/ideal  "
              "trials/s  speed-up  rss@10 MB  rss@end MB")
        for mode in modes:
            base = None
            for w in counts:
                with gc_mode(mode):
                    r = run_pool(w, gs, cfg)
                base = base or r["rate"]
                print(f"pool  {mode:7s} {w:7d}  {r['startup']:10.1f}  {r['wall']:6.1f}  {r['train']:7.1f}  "
                      f"{1e3 * r['overhead']:17.1f}  {r['ratio']:10.2f}  {r['rate']:8.2f}  "
                      f"{r['rate'] / base:7.2f}x  {r['rss10']:9.0f}  {r['rss_end']:10.0f}", flush=True)
    if a.mode in ("cli", "both"):
        print("cli   gc      workers  wall s  trained/rows  train s  overhead/trial ms  wall/ideal  "
              "steady trials/s  speed-up")
        for mode in modes:
            base = None
            for w in counts:
                with gc_mode(mode):
                    r = run_cli(w, a.trials, a.seed)
                base = base or r["rate"]
                print(f"cli   {mode:7s} {w:7d}  {r['wall']:6.1f}  {r['n']:6d}/{r['rows']:<5d}  {r['train']:7.1f}  "
                      f"{1e3 * r['overhead']:17.1f}  {r['ratio']:10.2f}  {r['rate']:15.2f}  "
                      f"{r['rate'] / base:7.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
