"""Reports: best-model export (genome JSON, weights copy, DOT, cell drawing), summary
table, matplotlib figures, report.html, learning curves, multi-run comparison and
the `python -m evonas.report` entry point with its exit codes."""
import json
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from evonas.config import Config
from evonas.draw import cell_graph, layout, name_color
from evonas.genome import load_genome
from evonas.genome.nb201 import NB201Genome, NB201Space
from evonas.genome.tree import TreeGenome
from evonas.html_report import CurveWriter, Refresher, build, lineage_epochs, read_curves, write_report
from evonas.lineage import load_lineage
from evonas.plot import (ancestors, fitness_figure, fitness_label, hypervolume, pareto_front,
                         running_best, save)
from evonas.report import export_best, format_summary, main, summarize, to_dot
from evonas.store.lineage import LineageWriter
from evonas.store.rundir import create_run_dir


def make_run(root, rows, seed=0, strategy="aging", table=True):
    kw = dict(benchmark_table="t.csv") if table else {}
    p = create_run_dir(root, Config(genome="nb201", population=2, seed=seed, strategy=strategy, **kw).resolved("t"),
                       lineage_columns=["c10_test_200"])
    rng = np.random.default_rng(seed)
    with LineageWriter(p.lineage) as w:
        for i, parents, op, fit, status in rows:
            g = NB201Genome.sample(rng, NB201Space(N=1))
            w.write({"id": i, "birth": i, "parent_ids": parents, "operator": op, "genome": g,
                     "status": status, "fitness": fit, "params": 100 + 10 * i, "flops": 1000 + i,
                     "trained_epochs": 1.0, "inherited": "exact" if parents else "none", "train_seconds": 0.5,
                     "extra": {"c10_test_200": 80.0 + i}})
    return p


ROWS = [(0, (), "init", 50.0, "ok"), (1, (), "init", 60.0, "ok"), (2, (1,), "mut", 70.0, "ok"),
        (3, (2,), "mut", None, "failed"), (4, (2,), "mut", 70.0, "duplicate"), (5, (2, 0), "cross", 65.0, "ok")]


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path / "run", ROWS)


def test_summary(run):
    s = summarize(load_lineage(run.lineage), wall_seconds=12.34)
    assert s["best id"] == 2 and s["best fitness"] == 70.0 and s["lineage depth"] == 1
    assert (s["evaluations"], s["duplicates skipped"], s["failures"]) == (5, 1, 1)
    assert s["params"] == 120 and s["FLOPs (MACs)"] == 1002 and s["c10_test_200"] == 82.0
    text = format_summary(s)
    assert "best fitness" in text and "70" in text and "12.3" in text


def test_export_best(run, tmp_path):
    g = NB201Genome.sample(np.random.default_rng(1), NB201Space(N=1))
    import json

    import torch

    from evonas.tensor_io import save_weights_file
    # a real safetensors file of this genome: export_best checks what it copies (issue 15)
    weights = save_weights_file(tmp_path / "w.safetensors", {"w": torch.zeros(3)},
                                {"genome": json.dumps(g.to_dict())})
    out = export_best(run.root, g, weights, fitness=70.0, individual=2)
    best = run.best
    assert load_genome(best / "genome.json") == g
    assert (best / "weights.safetensors").read_bytes() == weights.read_bytes()
    dot = (best / "arch.dot").read_text()
    assert dot.startswith("digraph") and '"stem"' in dot and dot.count("->") == g.decode().number_of_edges()
    with Image.open(best / "arch.png") as im:  # the 4-node cell, not the unrolled network
        assert im.format == "PNG" and 200 < im.width < 2000 and 200 < im.height < 2000
    assert (best / "arch.svg").read_text().lstrip().startswith("<?xml")
    assert set(out) == {"genome", "dot", "png", "svg", "weights"}
    export_best(run.root, g, None)  # a best without weights must not keep stale ones
    assert not (best / "weights.safetensors").exists()


def test_to_dot_escapes_quotes():
    import networkx as nx
    g = nx.DiGraph()
    g.add_node('a"b', op="input", params={})
    assert '"a\\"b"' in to_dot(g)


# --- drawings and figures -----------------------------------------------------------------
def test_nb201_cell_graph_is_the_4_node_cell():
    g = NB201Genome(("nor_conv_3x3", "none", "skip_connect", "avg_pool_3x3", "none", "nor_conv_1x1"))
    c = cell_graph(g)
    assert sorted(c.nodes) == ["0", "1", "2", "3"]
    assert {(u, v): d["label"] for u, v, d in c.edges(data=True)} == {
        ("0", "1"): "nor_conv_3x3", ("1", "2"): "skip_connect", ("0", "3"): "avg_pool_3x3",
        ("2", "3"): "nor_conv_1x1"}  # 'none' edges are left out


def test_every_genome_has_a_labelled_layered_drawing():
    from evonas.genome import GENOMES
    for name in GENOMES.names():
        g = cell_graph(GENOMES.get(name).sample(np.random.default_rng(0)))
        pos = layout(g, use_dot=False)
        assert set(pos) == set(g.nodes)
        assert all(pos[u][1] < pos[v][1] for u, v in g.edges)  # inputs above their consumers
        labels = {d["label"] for _, d in g.nodes(data=True)} | {d.get("label", "") for *_, d in g.edges(data=True)}
        assert not any("_p0_" in s for s in labels)  # op names, not internal node ids
    tree = cell_graph(TreeGenome.sample(np.random.default_rng(0)))
    assert any(d["label"].startswith("conv_bn_relu") for _, d in tree.nodes(data=True))


@pytest.mark.slow  # a fresh interpreter
def test_operator_colour_is_stable_and_distinct():
    # crc32, not Python's salted hash(): a fresh interpreter gives the same colour
    code = "from evonas.draw import name_color; print(name_color('edge_op'), name_color('widen'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [name_color("edge_op"), name_color("widen")] and out[0] != out[1]
    assert name_color("init") == "#4d4d4d"


def test_fitness_label_says_what_the_fitness_is():
    assert fitness_label({"benchmark_table": "x.csv", "fitness_column": "c10_val_12"}) == \
        "table lookup c10_val_12 (%)"
    lab = fitness_label({"epochs": 3, "inherit": "exact", "dataset": "digits"})
    assert "validation accuracy (%)" in lab and "3 epoch" in lab and "inherited" in lab


def test_running_best_ancestors_pareto_hypervolume(run):
    df = load_lineage(run.lineage)
    assert list(running_best(df)) == [50, 60, 70, 70, 70, 70]
    tree = ancestors(df, 5)
    assert set(tree.edges) == {(1, 2), (2, 5), (0, 5)}  # both parents of the crossover child
    front = pareto_front(df)
    assert list(front["id"]) == [0, 1, 2]  # 65 at params 150 is dominated by 70 at 120
    # two points (cost, fitness) against ref (10, 0): 3x5 + 2x... union of boxes
    assert hypervolume(np.array([[2.0, 5.0], [6.0, 8.0]]), (10.0, 0.0)) == pytest.approx(8 * 4 + 5 * 4)
    assert hypervolume(np.array([[2.0, 5.0], [3.0, 4.0]]), (10.0, 0.0)) == pytest.approx(40.0)  # dominated


@pytest.mark.slow  # ~12 s on the loaded 2-core machine (SVG rendering)
def test_figures_png_and_svg(run, tmp_path):
    df = load_lineage(run.lineage)
    fig = fitness_figure(df, {"benchmark_table": "x", "fitness_column": "c10_val_12",
                              "report_column": "c10_test_200", "population": 2}, best_id=2)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "table lookup c10_val_12 (%)" and "evaluations" in ax.get_xlabel()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    for want in ("running best", "duplicate, not retrained (1)", "failed (1)", "ancestry of the best",
                 "c10_test_200 of the running best (reported only)"):
        assert any(want in s for s in labels), (want, labels)
    assert len(fig.axes) == 2 and "training time" in fig.axes[1].get_xlabel()  # no timestamps: fallback
    paths = save(fig, tmp_path / "fitness")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 1000 for p in paths)


def test_fitness_figure_uses_timestamps(run):
    df = load_lineage(run.lineage).assign(finished_s=[1.0, 2.0, 4.0, 8.0, 8.5, 9.0])
    assert "wall-clock" in fitness_figure(df, {}).axes[1].get_xlabel()


# --- learning curves and report.html ------------------------------------------------------
def test_curve_writer_and_reader(tmp_path):
    w = CurveWriter(tmp_path)
    w({"id": 3, "status": "ok", "curve": {"train_loss": [2.0, 1.5], "val_acc": [40.0, 55.0]}})
    w({"id": 4, "status": "duplicate", "curve": {"train_loss": [9.0], "val_acc": [1.0]}})  # not retrained
    w({"id": 5, "status": "ok"})  # a table lookup has no curve
    w.close()
    with open(tmp_path / "curves.jsonl", "a") as f:
        f.write('{"id": 6, "train_lo')  # torn by a crash
    assert read_curves(tmp_path) == {3: {"train_loss": [2.0, 1.5], "val_acc": [40.0, 55.0]}}


def test_lineage_epochs_follow_inheritance(run):
    df = load_lineage(run.lineage)
    assert df["lineage_epochs"].isna().all()  # the fixture leaves the column empty: recomputed
    lep = lineage_epochs(df)
    assert lep[0] == 1.0 and lep[2] == 2.0 and lep[5] == 3.0  # 5 inherits from 2, which inherited from 1
    assert lineage_epochs(df.assign(lineage_epochs=7.0))[5] == 7.0  # the engine's column wins


def test_report_html_is_self_contained(run):
    (run.root / "curves.jsonl").write_text('{"id": 2, "train_loss": [1.0], "val_acc": [70.0]}\n')
    pd.DataFrame({"id": [2], "final_val": [71.0], "final_test": [69.5]}).to_csv(run.root / "final.csv", index=False)
    page = build(run.root)
    assert "<script src" not in page and "<link" not in page and "url(http" not in page
    data = json.loads(page.split('id="evonas-data">')[1].split("</script>")[0])
    assert len(data["rows"]) == 6 and data["curves"]["2"]["val_acc"] == [70.0]
    r5 = next(r for r in data["rows"] if r["id"] == 5)
    assert r5["parent_ids"] == [2, 0] and r5["lineage_epochs"] == 3.0 and r5["params"] == 150
    assert set(data["drawings"]) == set(load_lineage(run.lineage)["genome"])
    assert all(len(d["nodes"]) == 4 for d in data["drawings"].values())
    assert "final_test" in page and "Operators" in page and data["ylabel"].startswith("table lookup")


def test_report_html_escapes_genome_text(tmp_path):
    p = make_run(tmp_path / "r", ROWS[:2])
    cfg = json.loads(p.config.read_text())
    cfg["name"] = "</script><script>alert(1)</script>"
    p.config.write_text(json.dumps(cfg))
    page = build(p.root)
    assert page.count("<script>") == 1 and "alert(1)</script>" not in page


def test_refresher_throttles(run):
    r = Refresher(run.root, every_s=3600)
    r()
    first = (run.root / "report.html").stat().st_mtime_ns
    time.sleep(0.01)
    r()  # within the interval: not rewritten
    assert (run.root / "report.html").stat().st_mtime_ns == first
    r(force=True)
    assert (run.root / "report.html").stat().st_mtime_ns > first


# --- command line -------------------------------------------------------------------------
@pytest.mark.slow  # all figures + the page: ~10 s
def test_report_main(run, capsys):
    assert main([str(run.root)]) == 0
    out = capsys.readouterr().out
    assert "best id" in out
    for name in ("fitness.png", "fitness.svg", "ancestry.png", "report.html"):
        assert (run.root / name).exists(), name
    assert main([str(run.root), "--json", "--no-plots"]) == 0
    assert '"best id": 2' in capsys.readouterr().out


def test_compare_runs_over_seeds(tmp_path, capsys):
    up = [(i, (), "init", float(f), "ok") for i, f in enumerate([50, 60, 70])]
    roots = [make_run(tmp_path / f"a{s}", [(i, p, o, f + s, st) for i, p, o, f, st in up], seed=s).root
             for s in (0, 1, 2)]
    roots += [make_run(tmp_path / f"r{s}", up, seed=s, strategy="random").root for s in (0, 1)]
    assert main([str(r) for r in roots]) == 0
    out = capsys.readouterr().out
    assert 'strategy="aging"' in out and 'strategy="random"' in out
    table = pd.read_csv(tmp_path / "comparison.csv")
    assert len(table) == 5 and set(table["config"]) == {'strategy="aging"', 'strategy="random"'}
    assert (tmp_path / "comparison.png").exists() and (tmp_path / "comparison.svg").exists()
    assert main([*map(str, roots), "--json"]) == 0
    stats = {r["config"]: r for r in json.loads(capsys.readouterr().out)}
    assert stats['strategy="aging"']["best mean"] == pytest.approx(71.0)
    assert stats['strategy="aging"']["best std"] == pytest.approx(1.0)  # ddof=1 over 70, 71, 72
    assert stats['strategy="random"']["best std"] == pytest.approx(0.0)


@pytest.mark.slow  # a fresh interpreter: ~25 s on the loaded machine
def test_report_not_a_run_exits_2(tmp_path, run):
    r = subprocess.run([sys.executable, "-m", "evonas.report", str(run.root), str(tmp_path / "nope")],
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "not a run directory" in r.stderr
    assert not (run.root / "fitness.png").exists()  # every path checked before any write


@pytest.mark.slow  # trains a tiny network for 3 epochs, twice
def test_trial_returns_its_learning_curve():
    from evonas.evaluate.base import Job
    from evonas.evaluate.data import load_dataset
    from evonas.evaluate.train import TrainConfig, evaluate_job
    data = load_dataset("digits", seed=0, max_train=300)
    g = NB201Genome(("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "skip_connect", "avg_pool_3x3",
                     "nor_conv_3x3"), NB201Space(C=4, N=1))
    r = evaluate_job(Job(1, g, seed=0), data, TrainConfig(epochs=3, batch_size=32))
    c = r.extra["curve"]
    assert r.status == "ok" and len(c["train_loss"]) == 3 and len(c["val_acc"]) == 3
    assert c["val_acc"][-1] == r.fitness  # the last epoch's validation is the fitness
    assert c["train_loss"][-1] < c["train_loss"][0]
    # validating between epochs (eval mode, no random numbers) keeps a seed's trial exact
    again = evaluate_job(Job(2, g, seed=0), data, TrainConfig(epochs=3, batch_size=32))
    assert again.extra["curve"] == c
