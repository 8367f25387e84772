"""Real-training search benchmark: does the default search find better networks
than random search and a hand-designed network, for the same wall-clock budget?

    python benchmarks/search_real.py                       # tree, CIFAR-10 5k/1k subset
    python benchmarks/search_real.py --genome genetic-cnn --budget-s 600 --seeds 0,1
    python benchmarks/search_real.py --quick               # smoke mode (digits, seconds)

Arms (every search arm runs ``python -m evonas.run`` with the same budget, then
the same final stage: its top ``--final-top`` distinct networks retrained from
scratch for ``--final-epochs``, chosen by validation accuracy, reported on test):

    exact    aging + --inherit exact      (the README default before this benchmark)
    shape    aging + --inherit shape
    none     aging from scratch (--inherit none)
    random   random search from scratch
    matched  aging + --inherit exact + --selection matched (tournaments and the
             final choice rank by the lineage-matched score, evolve/matched.py)
    naswot   aging from scratch, each child pre-screened by the zero-cost NASWOT score
             (--surrogate naswot: the best-scoring of M mutated candidates is trained)
    hand     a hand-designed ResNet-style network (3 stages of 2 basic blocks),
             width chosen so its size is that of the search arms' final networks,
             trained once per seed with the final recipe

The search arms of one seed run *concurrently* (one worker of one torch thread
each, ``OMP_NUM_THREADS=1``, left to the OS scheduler; ``--pin`` pins them to
CPUs in rotation instead), so load from other jobs on the machine falls on all
of them alike; seeds run one after the other. After the searches, each arm's
``--tau-sample`` N randomly chosen evaluated children (plus its final-stage
networks) are retrained from scratch with the final recipe, and the Kendall tau
between their search fitness and that from-scratch validation accuracy says how
well the arm's fitness ranks architectures. Everything lands in ``--out``;
re-running the same command continues where it stopped (runs are resumed, done
parts are read back).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARMS = {  # name -> evonas.run flags
    "exact": ["--strategy", "aging", "--inherit", "exact"],
    "shape": ["--strategy", "aging", "--inherit", "shape"],
    "none": ["--strategy", "aging", "--inherit", "none"],
    "random": ["--strategy", "random", "--inherit", "none"],
    "matched": ["--strategy", "aging", "--inherit", "exact", "--selection", "matched"],
    "naswot": ["--strategy", "aging", "--inherit", "none", "--surrogate", "naswot"],
}
DEFAULT_DATA = "npz:" + str((ROOT / ".." / "shared" / "data" / "cifar10_5k1k.npz").resolve())


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default=None, help=f"dataset spec (default {DEFAULT_DATA}; --quick: digits)")
    p.add_argument("--genome", default="tree")
    p.add_argument("--budget-s", type=float, default=600.0, help="wall-clock seconds of search per arm")
    p.add_argument("--seeds", default="0,1", help="comma-separated seeds")
    p.add_argument("--arms", default="exact,shape,none,random,matched,hand")
    p.add_argument("--population", type=int, default=12, help="aging P (small: the budget trains tens of children)")
    p.add_argument("--sample-size", type=int, default=3, help="aging S")
    p.add_argument("--epochs", type=int, default=3, help="epochs per child (evonas.run's default)")
    p.add_argument("--final-top", type=int, default=3)
    p.add_argument("--final-epochs", type=int, default=5)
    p.add_argument("--tau-sample", type=int, default=3, help="extra evaluated children retrained per arm for tau")
    p.add_argument("--space", action="append", default=[], help="genome space override KEY=VALUE (repeatable)")
    p.add_argument("--per-class", type=int, default=0, help="use only the first N training images of each class "
                   "of an npz dataset (written once to OUT/data-N.npz; the test split is kept whole; 0 = all)")
    p.add_argument("--out", default=str(ROOT / "runs" / "search_real"))
    p.add_argument("--quick", action="store_true", help="smoke mode: digits, 15 s per arm, 1 seed, 1 epoch")
    p.add_argument("--pin", action="store_true", help="pin arms to CPUs in rotation (default: the OS balances)")
    p.add_argument("--retrain", metavar="RUN_DIR", help=argparse.SUPPRESS)  # internal: tau retrains of one run
    p.add_argument("--hand", metavar="JSON", help=argparse.SUPPRESS)        # internal: train the hand net
    a = p.parse_args(argv)
    if a.quick:
        a.budget_s, a.seeds, a.population, a.sample_size = 60.0, "0", 4, 2
        a.final_top, a.final_epochs, a.tau_sample = 2, 1, 2
    a.dataset = a.dataset or ("digits" if a.quick else DEFAULT_DATA)
    if a.per_class and not (a.retrain or a.hand):
        a.dataset = subset(a.dataset, a.per_class, Path(a.out))
    a.seed_list = [int(s) for s in str(a.seeds).split(",") if s.strip()]
    a.arm_list = [x for x in a.arms.split(",") if x]
    for arm in a.arm_list:
        if arm not in ARMS and arm != "hand":
            p.error(f"unknown arm {arm!r} (known: {', '.join([*ARMS, 'hand'])})")
    return a


def subset(spec: str, n: int, out: Path) -> str:
    """The first ``n`` training images of each class of an ``npz:`` data set, as a new
    npz under ``out`` (class-balanced, deterministic); -> its dataset spec."""
    if not spec.startswith("npz:"):
        raise SystemExit(f"error: --per-class needs an npz: dataset, got {spec!r}")
    target = out / f"data-{n}.npz"
    if not target.exists():
        d = np.load(spec[4:])
        y = d["y_train"]
        idx = np.sort(np.concatenate([np.flatnonzero(y == c)[:n] for c in np.unique(y)]))
        out.mkdir(parents=True, exist_ok=True)
        np.savez(target, x_train=d["x_train"][idx], y_train=y[idx], x_test=d["x_test"], y_test=d["y_test"])
    return f"npz:{target}"


# --- the search arms ----------------------------------------------------------------------
def run_dir(a, arm: str, seed: int) -> Path:
    return Path(a.out) / a.genome / f"{arm}-s{seed}"


def search_cmd(a, arm: str, seed: int) -> list[str]:
    d = run_dir(a, arm, seed)
    if (d / "config.json").exists():  # an interrupted earlier call: continue it
        return [sys.executable, "-m", "evonas.run", "--resume", str(d), "--quiet"]
    space = [x for s in a.space for x in ("--space", s)]
    return [sys.executable, "-m", "evonas.run", "--genome", a.genome, *ARMS[arm], "--dataset", a.dataset,
            "--population", str(a.population), "--sample-size", str(a.sample_size), "--epochs", str(a.epochs),
            "--evaluations", "8" if a.quick else "1000000", "--time-budget", str(a.budget_s), "--seed", str(seed),
            "--workers", "1", "--final-top", str(a.final_top), "--final-epochs", str(a.final_epochs),
            *space, "--run-dir", str(d), "--quiet"]


def finished(d: Path, a) -> bool:
    f = d / "final.csv"
    return f.exists() and len(pd.read_csv(f)) >= min(a.final_top, 1)


def launch_all(cmds: list[tuple[str, list[str]]], pin: bool, offset: int) -> None:
    """Run the commands concurrently; CPU i % ncpu for the i-th (rotated by ``offset``)."""
    ncpu = len(os.sched_getaffinity(0))
    procs = []
    for i, (label, cmd) in enumerate(cmds):
        if pin and ncpu > 1:
            cmd = ["taskset", "-c", str((i + offset) % ncpu), *cmd]
        log = open(Path(label).with_suffix(".log"), "a")
        procs.append((label, subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                              env={**os.environ, "PYTHONPATH": str(ROOT),
                                                   "OMP_NUM_THREADS": "1"})))
    for label, p in procs:
        if p.wait() != 0:
            print(f"  {label} exited {p.returncode} (see {Path(label).with_suffix('.log')})", flush=True)


# --- tau retrains and the hand-designed net (run as subprocesses) -------------------------
def retrain_sample(d: Path, n: int, epochs: int, seed: int) -> None:
    """Retrain n random evaluated children of run ``d`` from scratch (the final
    recipe) into ``d/tau.csv``; resumable."""
    from evonas.evaluate.base import Job
    from evonas.evaluate.data import DataSpec
    from evonas.evaluate.train import TrainConfig, evaluate_job
    from evonas.genome import genome_type
    from evonas.genome.base import space_from_dict
    cfg = json.loads((d / "config.json").read_text())
    lin = pd.read_csv(d / "lineage.csv")
    fin = pd.read_csv(d / "final.csv")
    ok = lin[(lin.status == "ok") & ~lin.arch_hash.isin(fin.arch_hash)].drop_duplicates("arch_hash")
    rng = np.random.default_rng(seed)
    pick = ok.iloc[rng.permutation(len(ok))[:n]] if len(ok) else ok
    out = d / "tau.csv"
    done = set(pd.read_csv(out)["id"]) if out.exists() else set()
    cls = genome_type(cfg["genome"])
    space = space_from_dict(cls, cfg.get("space") or {})
    data = DataSpec(cfg["dataset"], cfg["data_root"], cfg["seed"], cfg["val_fraction"]).load()
    tc = TrainConfig(epochs=epochs, batch_size=cfg["batch_size"], lr=cfg["lr"], optimizer=cfg["optimizer"],
                     test=True, memory_format=cfg["memory_format"])
    for _, r in pick.iterrows():
        if int(r["id"]) in done:
            continue
        res = evaluate_job(Job(int(r["id"]), cls.from_string(r["genome"], space), seed=seed * 7 + int(r["id"])),
                           data, tc)
        row = pd.DataFrame([{"id": int(r["id"]), "search_fitness": r["fitness"],
                             "lineage_epochs": r["lineage_epochs"], "scratch_val": res.fitness,
                             "scratch_test": res.extra.get("test_accuracy"), "params": res.params}])
        row.to_csv(out, mode="a", header=not out.exists(), index=False)


def hand_net(width: int, num_classes: int, in_ch: int):
    """A plain ResNet-style CNN: stem conv, 3 stages (width, 2w, 4w) of 2 basic
    blocks, the 2nd and 3rd stage downsampling, global average pool, linear."""
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                      nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(cout))
            self.skip = (nn.Identity() if stride == 1 and cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.body(x) + self.skip(x))

    layers, c = [nn.Conv2d(in_ch, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()], width
    for i, w in enumerate((width, 2 * width, 4 * width)):
        layers += [Block(c, w, 1 if i == 0 else 2), Block(w, w, 1)]
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


def train_hand(spec_file: str) -> None:
    """Train the hand-designed net described by ``spec_file`` (JSON: dataset, seed,
    target params, recipe) and write its result next to it."""
    import torch

    from evonas.evaluate.data import DataSpec
    from evonas.evaluate.train import TrainConfig, _score, _train
    spec = json.loads(Path(spec_file).read_text())
    data = DataSpec(spec["dataset"], "data", spec["seed"], spec["val_fraction"]).load()
    c_in = data.input_shape[0]
    widths = range(2, 65)
    size = {w: sum(p.numel() for p in hand_net(w, data.num_classes, c_in).parameters()) for w in widths}
    width = min(widths, key=lambda w: abs(size[w] - spec["target_params"]))
    torch.manual_seed(spec["seed"])
    model = hand_net(width, data.num_classes, c_in)
    # contiguous: torch 2.14's CPU backward of this net in channels_last corrupts the heap on
    # 8x8 inputs (digits); the layout changes speed only, not the recipe
    tc = TrainConfig(epochs=spec["epochs"], batch_size=spec["batch_size"], lr=spec["lr"], test=True,
                     memory_format="contiguous")
    t0 = time.monotonic()
    _train(model, data, tc, spec["seed"], "cpu", tc.batch_size, t0)
    res = {"width": width, "params": size[width], "val": _score(model, data.x_val, data.y_val, "cpu", tc),
           "test": _score(model, data.x_test, data.y_test, "cpu", tc), "seconds": time.monotonic() - t0}
    Path(spec_file).with_name(Path(spec_file).stem + "-result.json").write_text(json.dumps(res))


# --- one seed, then the table ------------------------------------------------------------
def run_seed(a, seed: int, k: int) -> None:
    arms = [x for x in a.arm_list if x in ARMS]
    todo = [(str(run_dir(a, arm, seed)), search_cmd(a, arm, seed)) for arm in arms
            if not finished(run_dir(a, arm, seed), a)]
    for label, _ in todo:
        Path(label).parent.mkdir(parents=True, exist_ok=True)
    if todo:
        print(f"seed {seed}: {len(todo)} search arm(s) concurrently, {a.budget_s:g} s each + final stage", flush=True)
        launch_all(todo, a.pin, k)
    post = []
    for arm in arms:
        d = run_dir(a, arm, seed)
        if a.tau_sample and finished(d, a):
            post.append((str(d / "tau"), [sys.executable, str(Path(__file__).resolve()), "--retrain", str(d),
                                          "--tau-sample", str(a.tau_sample), "--final-epochs",
                                          str(a.final_epochs), "--seeds", str(seed)]))
    if "hand" in a.arm_list:
        spec = Path(a.out) / a.genome / f"hand-s{seed}.json"
        if not spec.with_name(spec.stem + "-result.json").exists():
            params = [float(pd.read_csv(run_dir(a, arm, seed) / "final.csv")["params"].median())
                      for arm in arms if finished(run_dir(a, arm, seed), a)]
            cfg = _any_config(a, seed)
            spec.write_text(json.dumps({"dataset": a.dataset, "seed": seed, "epochs": a.final_epochs,
                                        "target_params": float(np.median(params)) if params else 20_000,
                                        "val_fraction": cfg.get("val_fraction", 0.2),
                                        "batch_size": cfg.get("batch_size", 64), "lr": cfg.get("lr", 0.05)}))
            post.append((str(spec.with_suffix("")), [sys.executable, str(Path(__file__).resolve()), "--hand",
                                                    str(spec)]))
    if post:
        print(f"seed {seed}: {len(post)} retraining job(s) (tau samples, hand-designed net)", flush=True)
        launch_all(post, a.pin, k)


def _any_config(a, seed: int) -> dict:
    for arm in ARMS:
        f = run_dir(a, arm, seed) / "config.json"
        if f.exists():
            return json.loads(f.read_text())
    return {}


def kendall(x, y) -> float:
    from scipy.stats import kendalltau
    if len(x) < 3:
        return float("nan")
    t = kendalltau(x, y).statistic
    return float(t) if t is not None else float("nan")


def table(a) -> pd.DataFrame:
    rows = []
    for arm in a.arm_list:
        for seed in a.seed_list:
            if arm == "hand":
                f = Path(a.out) / a.genome / f"hand-s{seed}-result.json"
                if f.exists():
                    r = json.loads(f.read_text())
                    rows.append({"arm": arm, "seed": seed, "children": 0, "duplicates": 0, "final_val": r["val"],
                                 "final_test": r["test"], "params": r["params"], "tau": float("nan")})
                continue
            d = run_dir(a, arm, seed)
            if not finished(d, a):
                continue
            lin, fin = pd.read_csv(d / "lineage.csv"), pd.read_csv(d / "final.csv")
            okf = fin[fin.status == "ok"]
            best = okf.loc[okf.final_val.idxmax()] if len(okf) else None
            pts = okf[["search_fitness", "final_val"]].rename(columns={"final_val": "scratch_val"})
            if (d / "tau.csv").exists():
                pts = pd.concat([pts, pd.read_csv(d / "tau.csv")[["search_fitness", "scratch_val"]]])
            pts = pts.dropna()
            sb = lin[lin.status == "ok"].sort_values("fitness").iloc[-1]
            rows.append({"arm": arm, "seed": seed, "children": int(lin.status.isin(["ok", "failed"]).sum()),
                         "duplicates": int((lin.status == "duplicate").sum()),
                         "search_best": float(sb.fitness), "best_lineage_epochs": float(sb.lineage_epochs),
                         "final_val": None if best is None else float(best.final_val),
                         "final_test": None if best is None else float(best.final_test),
                         "params": None if best is None else int(best.params),
                         "tau": kendall(pts.search_fitness, pts.scratch_val), "tau_n": len(pts)})
    return pd.DataFrame(rows)


def report(a, df: pd.DataFrame) -> None:
    if df.empty:
        print("no finished arms")
        return
    g = df.groupby("arm", sort=False)
    agg = pd.DataFrame({"seeds": g.size(), "children": g.children.mean(), "duplicates": g.duplicates.mean(),
                        "test_mean": g.final_test.mean(), "test_std": g.final_test.std(ddof=0),
                        "val_mean": g.final_val.mean(), "params": g.params.mean(), "tau": g.tau.mean()})
    if "search_best" in df:
        agg["search_best"] = g.search_best.mean()
        agg["best_L"] = g.best_lineage_epochs.mean()
    print(f"\n{a.genome} on {a.dataset}: {a.budget_s:g} s per search arm, seeds {a.seed_list}, "
          f"final: top {a.final_top} retrained {a.final_epochs} epochs from scratch")
    print("| arm | seeds | children trained | duplicates | search best (lineage epochs) | final test % "
          "(mean ± std) | final val % | params | Kendall tau |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arm, r in agg.iterrows():
        sb = f"{r.search_best:.2f} ({r.best_L:.1f})" if "search_best" in r and not pd.isna(r.search_best) else "-"
        print(f"| {arm} | {int(r.seeds)} | {r.children:.0f} | {r.duplicates:.0f} | {sb} | {r.test_mean:.2f} ± "
              f"{r.test_std:.2f} | {r.val_mean:.2f} | {r.params:,.0f} | {r.tau:.2f} |")
    search = agg.drop(index=[x for x in ("hand",) if x in agg.index])
    if len(search):
        win = search.test_mean.idxmax()
        spread = float(df.groupby("arm").final_test.std(ddof=0).max())
        others = {k: agg.loc[k, "test_mean"] for k in ("random", "hand") if k in agg.index and k != win}
        beats = {k: agg.loc[win, "test_mean"] - v for k, v in others.items()}
        if not beats:  # e.g. --arms none,naswot: nothing to beat, no verdict
            print(f"\nbest search arm by final test accuracy: {win}; largest seed spread (std) {spread:.2f} "
                  "(no random or hand arm in this run)")
            return
        print(f"\nbest search arm by final test accuracy: {win}; margin over "
              + ", ".join(f"{k} {m:+.2f}" for k, m in beats.items())
              + f"; largest seed spread (std) {spread:.2f}: "
              + ("beats them by more than the spread" if min(beats.values()) > spread
                 else "NOT more than the spread"))


def main(argv=None) -> int:
    a = parse(argv)
    if a.retrain:
        retrain_sample(Path(a.retrain), a.tau_sample, a.final_epochs, a.seed_list[0])
        return 0
    if a.hand:
        train_hand(a.hand)
        return 0
    t0 = time.time()
    for k, seed in enumerate(a.seed_list):
        run_seed(a, seed, k)
    df = table(a)
    Path(a.out, a.genome).mkdir(parents=True, exist_ok=True)
    df.to_csv(Path(a.out) / a.genome / "summary.csv", index=False)
    report(a, df)
    print(f"\n(total {time.time() - t0:.0f} s; per-run data in {Path(a.out) / a.genome})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
