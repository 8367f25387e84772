"""End-to-end tests of the command lines (issue 7): ``python -m evonas.run`` for
every genome type and every strategy on tiny budgets, the lineage CSV through a
plain ``pd.read_csv``, ancestry reconstruction, exact resume, exit code 2 with
one line for bad input, ``python -m evonas.report`` and ``python -m evonas.train``.

Real training uses the bundled 8x8 digits with tiny spaces, one epoch, one
worker. NAS-Bench-201 table runs use the synthetic table of conftest (no
../shared needed).
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from evonas.evolve import STRATEGIES as REGISTERED_STRATEGIES
from evonas.genome import GENOMES, load_genome
from evonas.lineage import ancestry, load_lineage
from evonas.run import main as run_main
from evonas.report import main as report_main
from evonas.train import main as train_main

ROOT = Path(__file__).resolve().parents[1]
TABLE = None  # the synthetic NB201 table (conftest's nb201_table), set by _table: no ../shared needed


@pytest.fixture(scope="module", autouse=True)
def _table(nb201_table):
    global TABLE
    TABLE = nb201_table

GENOME_TYPES = ("genetic-cnn", "cgp", "tree", "nb201")
STRATEGIES = ("aging", "random", "es", "generational", "nsga2")
# Tiny search spaces: a trial trains in well under a second on 8x8 digits.
TINY = {"genetic-cnn": ["--space", "stages=[2,2]", "--space", "channels=[4,8]"],
        "cgp": ["--space", "rows=1", "--space", "cols=4", "--space", "levels_back=2"],
        "tree": ["--space", "C=4"],
        "nb201": ["--space", "C=4", "--space", "N=1"]}
# Every genome type and every strategy, each at least once (real training is the slow part).
PAIRS = [("genetic-cnn", "aging"), ("cgp", "es"), ("tree", "generational"), ("nb201", "nsga2"),
         ("tree", "random")]
FAST = ["--epochs", "1", "--batch-size", "128", "--workers", "1", "--devices", "cpu", "--quiet",
        "--max-macs", "2000000"]  # bigger (CGP 128-channel) children fail before training: fast
TIMING = ["train_seconds", "worker", "started_s", "finished_s"]
STATUSES = {"ok", "failed", "duplicate"}


@pytest.fixture(autouse=True)
def _passive_openmp(monkeypatch):
    # Spawned workers inherit the environment. Spinning OpenMP threads make tiny
    # CPU trials 10x slower when the cores are shared with other processes.
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")


def run_ok(run_dir: Path, *argv: str) -> Path:
    assert run_main([*argv, "--run-dir", str(run_dir)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """``(genome, strategy) -> run dir`` of a tiny real-training run, made once."""
    cache: dict = {}

    def get(genome: str, strategy: str) -> Path:
        if (genome, strategy) not in cache:
            d = tmp_path_factory.mktemp(f"{genome}-{strategy}") / "run"
            cache[genome, strategy] = run_ok(d, "--genome", genome, "--strategy", strategy, *TINY[genome],
                                             "--population", "3", "--sample-size", "2",
                                             "--evaluations", "5", "--seed", "1", *FAST)
        return cache[genome, strategy]
    return get


def table_args(strategy: str, evaluations: int) -> list[str]:
    return ["--genome", "nb201", "--strategy", strategy, "--population", "6", "--sample-size", "3",
            "--evaluations", str(evaluations), "--benchmark-table", str(TABLE),
            "--report-column", "c10_test_200", "--quiet"]


def lineage_plain(run_dir: Path) -> pd.DataFrame:
    """The lineage through a plain ``pd.read_csv`` (no options), dtypes checked."""
    df = pd.read_csv(run_dir / "lineage.csv")
    assert list(df.columns[:20]) == ["id", "parent_ids", "operator", "genome_type", "genome", "arch_hash",
                                     "status", "fitness", "params", "flops", "trained_epochs",
                                     "lineage_epochs", "inherited", "train_seconds", "started_s",
                                     "finished_s", "attempts", "worker", "birth", "reason"]
    for c in ("id", "birth", "attempts"):
        assert df[c].dtype == np.int64, c
    for c in ("fitness", "trained_epochs", "lineage_epochs", "train_seconds", "started_s", "finished_s"):
        assert df[c].dtype == np.float64, c
    for c in ("params", "flops"):  # int64, or float64 with NaN where unknown
        assert df[c].dtype == np.int64 or (df[c].dtype == np.float64 and df[c].isna().any()), c
    for c in ("parent_ids", "operator", "genome_type", "arch_hash", "status", "inherited", "worker", "reason"):
        assert pd.api.types.is_string_dtype(df[c]) and df[c].notna().all(), c
    assert sorted(df["birth"]) == list(range(len(df))) and df["id"].is_unique
    assert set(df["status"]) <= STATUSES
    assert df["parent_ids"].str.fullmatch(r"\[(\d+(;\d+)*)?\]").all()
    ok = df[df["status"] == "ok"]
    assert ok["fitness"].between(0, 100).all() and df.loc[df["status"] == "failed", "fitness"].isna().all()
    return df


def check_lineage(run_dir: Path, genome: str, evaluations: int) -> pd.DataFrame:
    df = lineage_plain(run_dir)
    # --evaluations counts trained networks; reused duplicates come on top, under their own
    # limit (default 10 x evaluations + 100), which ends a run in a space with fewer networks
    trained, dups = (df["status"] != "duplicate").sum(), (df["status"] == "duplicate").sum()
    assert trained == evaluations or (trained < evaluations and dups == 10 * evaluations + 100), (trained, dups)
    assert (df["genome_type"] == genome).all()
    cls = GENOMES.get(genome)
    space = load_genome(run_dir / "best" / "genome.json").space
    ids = set(df["id"])
    for _, r in df.iterrows():
        g = cls.from_string(str(r["genome"]), space)  # round-trips
        assert g.to_string() == str(r["genome"]) and g.arch_hash() == r["arch_hash"]
        parents = [int(p) for p in r["parent_ids"].strip("[]").split(";") if p]
        assert all(p in ids and p < r["id"] for p in parents), r["parent_ids"]  # no dangling parent
        # no parent: random, a seed genome, or drawn from a learned policy (reinforce)
        assert r["operator"] in ("init", "seed", "policy") if not parents else r["operator"] != "init"
    return df


def check_best(run_dir: Path, df: pd.DataFrame) -> None:
    best = run_dir / "best"
    meta = json.loads((best / "genome.json").read_text())
    final = run_dir / "final.csv"
    if final.exists():  # best/ holds the final stage's choice: best from-scratch validation accuracy
        fin = pd.read_csv(final)
        top = fin.loc[fin["final_val"].idxmax()]
        assert meta["genome"] == top["genome"] and meta["fitness"] == pytest.approx(top["final_val"])
        ok = df[df["status"] == "ok"]
        best_search = ok.loc[ok["fitness"].idxmax()]
        assert best_search["arch_hash"] == fin.loc[fin["rank"] == 0, "arch_hash"].item()
    else:
        ok = df[df["status"] == "ok"]
        top = ok.loc[ok["fitness"].idxmax()]
        assert meta["genome"] == top["genome"] and meta["fitness"] == pytest.approx(top["fitness"])
    assert (best / "arch.dot").read_text().startswith("digraph")
    with Image.open(best / "arch.png") as im:
        assert im.format == "PNG"


# --- every genome and every strategy -------------------------------------------------------
@pytest.mark.parametrize("genome,strategy", PAIRS)
def test_digits_run(digits_run, genome, strategy):
    d = digits_run(genome, strategy)
    df = check_lineage(d, genome, 5)
    assert (df["status"] == "ok").any(), df[["status", "reason"]]
    trained = df[df["status"] == "ok"]
    assert (trained["trained_epochs"] == 1.0).all() and trained["params"].gt(0).all() and trained["flops"].gt(0).all()
    check_best(d, df)
    assert (d / "best" / "weights.safetensors").exists()
    cfg = json.loads((d / "config.json").read_text())["search"]  # config.json is sectioned
    assert (cfg["genome"], cfg["strategy"], cfg["evaluations"]) == (genome, strategy, 5)
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["seed"] == 1 and {"evonas", "torch", "plugins"} <= set(manifest)
    if strategy == "random":
        assert (df["operator"] == "init").all()


@pytest.mark.parametrize("strategy", sorted(REGISTERED_STRATEGIES.names()))  # every one, from the registry
def test_table_run_and_resume(tmp_path, strategy):
    """A run stopped early and resumed with a larger budget makes the same
    individuals, in the same order, as one straight run of the same seed."""
    straight = run_ok(tmp_path / "straight", *table_args(strategy, 30))
    df = check_lineage(straight, "nb201", 30)
    assert "c10_test_200" in df.columns and df["c10_test_200"].dtype == np.float64
    check_best(straight, df)
    part = run_ok(tmp_path / "part", *table_args(strategy, 11))
    assert (pd.read_csv(part / "lineage.csv")["status"] != "duplicate").sum() == 11
    assert run_main(["--resume", str(part), "--evaluations", "30", "--quiet"]) == 0
    a, b = (pd.read_csv(p / "lineage.csv").drop(columns=TIMING) for p in (straight, part))
    pd.testing.assert_frame_equal(a, b)
    assert json.loads((part / "best" / "genome.json").read_text())["genome"] == \
        json.loads((straight / "best" / "genome.json").read_text())["genome"]


def test_ancestry_reconstruction(tmp_path):
    """Each step of the best individual's path is one ``edge_op`` mutation of its
    parent's genome (exactly one of the 6 edges changed), back to an initial one."""
    d = run_ok(tmp_path / "run", *table_args("aging", 60))
    df = load_lineage(d)
    ok = df[df["status"] == "ok"]
    best = int(ok.loc[ok["fitness"].idxmax(), "id"])
    path = ancestry(df, best)
    assert path["id"].iloc[-1] == best and path["parent_ids"].iloc[0] == () and path["operator"].iloc[0] == "init"
    assert len(path) >= 2  # 60 evaluations at P=6: the best is no initial individual
    for parent, child in zip(path.itertuples(), path.iloc[1:].itertuples()):
        assert child.parent_ids[0] == parent.id and child.operator == "edge_op"
        a, b = (str(x).strip("|").split("|") for x in (parent.genome, child.genome))
        assert sum(x != y for x, y in zip(a, b)) == 1, (parent.genome, child.genome)
    assert re.search(rf"lineage depth\s+\| {len(path) - 1}\n", report_text(d))


def report_text(run_dir: Path) -> str:
    r = subprocess.run([sys.executable, "-m", "evonas.report", str(run_dir), "--no-plots"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_resume_real_training(tmp_path):
    """Exact resume with real training (one worker, inherited weights)."""
    args = ["--genome", "tree", *TINY["tree"], "--population", "3", "--sample-size", "2", "--seed", "3",
            "--inherit", "exact", *FAST]
    straight = run_ok(tmp_path / "straight", *args, "--evaluations", "5")
    part = run_ok(tmp_path / "part", *args, "--evaluations", "3")
    assert run_main(["--resume", str(part), "--evaluations", "5", "--quiet"]) == 0
    a, b = (pd.read_csv(p / "lineage.csv").drop(columns=TIMING) for p in (straight, part))
    pd.testing.assert_frame_equal(a, b)
    assert (a["status"] == "ok").sum() >= 3 and (a["operator"] != "init").any()


def test_submission_order_same_lineage_with_two_workers_whatever_the_timing(tmp_path, monkeypatch):
    """--result-order submission: two workers, and in the second run the first trial
    to start sleeps 1.5 s (so other trials overtake it); the lineages are identical."""
    args = ["--genome", "tree", *TINY["tree"], "--population", "3", "--sample-size", "2", "--seed", "5",
            "--evaluations", "8", "--result-order", "submission", *FAST, "--workers", "2"]
    a = run_ok(tmp_path / "a", *args)
    monkeypatch.setenv("EVONAS_FAULT", "worker_trial:1:sleep=1.5")  # read by the spawned workers
    monkeypatch.setenv("EVONAS_FAULT_ONCE", str(tmp_path / "fired"))
    b = run_ok(tmp_path / "b", *args)
    assert (tmp_path / "fired").exists()
    x, y = (pd.read_csv(p / "lineage.csv").drop(columns=TIMING) for p in (a, b))
    pd.testing.assert_frame_equal(x, y)
    assert (x["operator"] != "init").sum() >= 3


# --- bad input: exit 2, one line, nothing written ---------------------------------------------
BAD = [["--population", "0"], ["--population", "x"], ["--inherit", "bogus"], ["--genome", "nope"],
       ["--strategy", "nope"], ["--dataset", "npz:/missing.npz"], ["--space", "C=-1"],
       ["--mutation", "bogus"], ["--seed-genome", "/missing.json"], ["--config", "/missing.yaml"],
       ["--genome", "nb201", "--benchmark-table", "/missing.csv"], ["--resume", "/missing-run"],
       ["--lr", "0"], ["--sample-size", "200"]]


def call(main, argv) -> int:
    try:
        return main(argv)
    except SystemExit as e:  # argparse errors
        return e.code


@pytest.mark.parametrize("argv", BAD, ids=lambda a: " ".join(a))
def test_bad_flags_exit_2(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)  # a default runs/<name> would land here
    assert call(run_main, [*argv, "--run-dir", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:") and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["--population", "0"], ["--inherit", "bogus"]])
def test_bad_flags_exit_2_subprocess(tmp_path, argv):
    r = subprocess.run([sys.executable, "-m", "evonas.run", *argv, "--run-dir", str(tmp_path / "run")],
                       capture_output=True, text=True, cwd=tmp_path, env=_env())
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error:"), r.stderr
    assert list(tmp_path.iterdir()) == []


def _env() -> dict:
    import os
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def tree_digest(d: Path) -> dict:
    return {str(p.relative_to(d)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("argv", [["--population", "4"], ["--seed", "9"], ["--genome", "cgp"],
                                  ["--strategy", "aging"], ["--inherit", "exact"], ["--space", "C=8"],
                                  ["--epochs", "2"]], ids=lambda a: " ".join(a))
def test_resume_conflict_exit_2(digits_run, capsys, argv):
    d = digits_run("tree", "random")
    before = tree_digest(d)
    assert call(run_main, ["--resume", str(d), *argv, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "conflicts with the stored config" in err, err
    assert tree_digest(d) == before


# --- report and train commands -----------------------------------------------------------------
@pytest.mark.parametrize("genome,strategy,pareto", [("nb201", "nsga2", True), ("genetic-cnn", "aging", False)])
def test_report_writes_plots(digits_run, capsys, genome, strategy, pareto):
    d = digits_run(genome, strategy)
    assert report_main([str(d)]) == 0
    out = capsys.readouterr().out
    assert "best fitness" in out and ("Pareto front (fitness vs params)" in out) == pareto
    for name in ("fitness.png", "ancestry.png") + (("pareto.png",) if pareto else ()):
        with Image.open(d / name) as im:
            assert im.format == "PNG" and im.width > 100 and im.height > 50, name
    assert (d / "pareto.png").exists() == pareto


def test_train_best_genome(digits_run, tmp_path, capsys):
    from safetensors.torch import load_file
    from evonas.compile import compile_graph
    d = digits_run("genetic-cnn", "aging")
    out = tmp_path / "final"
    assert train_main([str(d / "best" / "genome.json"), "--epochs", "1", "--batch-size", "128",
                       "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "val accuracy" in text and "test accuracy" in text and "MACs" in text
    r = json.loads((out / "result.json").read_text())
    assert r["status"] == "ok" and 0 <= r["val_accuracy"] <= 100 and 0 <= r["test_accuracy"] <= 100
    assert r["test_samples"] > 0 and r["params"] > 0 and r["macs"] > 0 and r["epochs"] == 1
    g = load_genome(d / "best" / "genome.json")
    assert r["genome"] == g.to_string() and r["arch_hash"] == g.arch_hash()
    model = compile_graph(g.decode(), (1, 8, 8), 10, seed=0)
    state = load_file(str(out / "weights.safetensors"))
    assert set(state) == set(model.state_dict()) and sum(v.numel() for k, v in model.named_parameters()) == r["params"]


@pytest.mark.parametrize("argv", [["/missing.json"], ["GENOME", "--epochs", "0"], ["GENOME", "--lr", "-1"],
                                  ["GENOME", "--dataset", "npz:/missing.npz"], ["GENOME", "--device", "nope"]],
                         ids=lambda a: " ".join(a))
def test_train_bad_input_exit_2(tmp_path, capsys, argv):
    argv = [str(ROOT / "genomes" / "tree_base.json") if a == "GENOME" else a for a in argv]
    assert call(train_main, [*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:"), err
    assert not (tmp_path / "out").exists()


def test_train_never_overwrites_earlier_results(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    genome = str(ROOT / "genomes" / "tree_base.json")
    argv = [genome, "--epochs", "1", "--batch-size", "128"]
    assert train_main(argv) == 0
    first = tmp_path / "runs" / "train-tree_base-s0"
    before = tree_digest(first)
    assert train_main([*argv, "--lr", "0.1"]) == 0  # the same genome, other settings: a new directory
    second = tmp_path / "runs" / "train-tree_base-s0-2"
    assert json.loads((second / "result.json").read_text())["lr"] == 0.1
    assert tree_digest(first) == before
    capsys.readouterr()
    assert call(train_main, [*argv, "--out", str(first)]) == 2  # a given --out with results: refused
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "never overwritten" in err, err
    assert tree_digest(first) == before and sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        first.name, second.name]


# --- small pieces the commands rely on -----------------------------------------------------------
def test_engine_parent_ids_string_is_not_split_into_digits():
    from evonas.store.lineage import format_parent_ids
    assert format_parent_ids("36") == "[36]" and format_parent_ids("3;17") == "[3;17]"
    assert format_parent_ids((36,)) == "[36]" and format_parent_ids("") == "[]"


def test_pareto_front_and_ancestry_graph():
    from evonas.plot import ancestors, pareto_front
    df = pd.DataFrame({"id": [0, 1, 2, 3, 4, 5], "status": ["ok", "ok", "ok", "failed", "ok", "duplicate"],
                       "fitness": [50.0, 60.0, 55.0, None, 70.0, 70.0],
                       "params": pd.array([100, 100, 300, 50, 400, 10], dtype="Int64"),
                       "parent_ids": [(), (), (1,), (1,), (2, 0), (4,)], "operator": ["init"] * 2 + ["m"] * 4})
    assert list(pareto_front(df, "params")["id"]) == [1, 4]  # 0 and 2 dominated; failed/duplicate not ok
    g = ancestors(df, 4)  # every parent, crossover mates too; the failed and duplicate rows are not ancestors
    assert set(g.edges) == {(1, 2), (2, 4), (0, 4)} and set(g) == {0, 1, 2, 4}
