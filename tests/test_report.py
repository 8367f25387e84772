"""Reports: best-model export (genome JSON, weights copy, DOT, PNG), summary table,
`python -m evonas.report` entry point and its exit codes."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from evonas.config import Config
from evonas.genome import load_genome
from evonas.genome.nb201 import NB201Genome, NB201Space
from evonas.lineage import load_lineage
from evonas.report import export_best, format_summary, main, summarize, to_dot
from evonas.store.lineage import LineageWriter
from evonas.store.rundir import create_run_dir


@pytest.fixture
def run(tmp_path):
    p = create_run_dir(tmp_path / "run", Config(genome="nb201", population=2).resolved("t"),
                       lineage_columns=["test_acc"])
    rng = np.random.default_rng(0)
    rows = [(0, (), "init", 50.0, "ok"), (1, (), "init", 60.0, "ok"), (2, (1,), "mut", 70.0, "ok"),
            (3, (2,), "mut", None, "failed"), (4, (2,), "mut", 70.0, "duplicate"), (5, (2,), "mut", 65.0, "ok")]
    with LineageWriter(p.lineage) as w:
        for i, parents, op, fit, status in rows:
            g = NB201Genome.sample(rng, NB201Space(N=1))
            w.write({"id": i, "birth": i, "parent_ids": parents, "operator": op, "genome": g,
                     "status": status, "fitness": fit, "params": 100 + i, "flops": 1000 + i,
                     "extra": {"test_acc": 80.0 + i}})
    return p


def test_summary(run):
    s = summarize(load_lineage(run.lineage), wall_seconds=12.34)
    assert s["best id"] == 2 and s["best fitness"] == 70.0 and s["lineage depth"] == 1
    assert (s["evaluations"], s["duplicates skipped"], s["failures"]) == (5, 1, 1)
    assert s["params"] == 102 and s["FLOPs (MACs)"] == 1002 and s["test_acc"] == 82.0
    text = format_summary(s)
    assert "best fitness" in text and "70" in text and "12.3" in text


def test_export_best(run, tmp_path):
    g = NB201Genome.sample(np.random.default_rng(1), NB201Space(N=1))
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"not really tensors, only copied")
    out = export_best(run.root, g, weights, fitness=70.0, individual=2)
    best = run.best
    assert load_genome(best / "genome.json") == g
    assert (best / "weights.safetensors").read_bytes() == weights.read_bytes()
    dot = (best / "arch.dot").read_text()
    assert dot.startswith("digraph") and '"stem"' in dot and dot.count("->") == g.decode().number_of_edges()
    with Image.open(best / "arch.png") as im:
        assert im.format == "PNG" and im.width > 50 and im.height > 50
    assert set(out) == {"genome", "dot", "png", "weights"}
    export_best(run.root, g, None)  # a best without weights must not keep stale ones
    assert not (best / "weights.safetensors").exists()


def test_to_dot_escapes_quotes():
    import networkx as nx
    g = nx.DiGraph()
    g.add_node('a"b', op="input", params={})
    assert '"a\\"b"' in to_dot(g)


def test_report_main(run, capsys):
    assert main([str(run.root)]) == 0
    out = capsys.readouterr().out
    assert "best id" in out and (run.root / "fitness.png").exists()
    assert main([str(run.root), "--json", "--no-plots"]) == 0
    assert '"best id": 2' in capsys.readouterr().out


def test_report_not_a_run_exits_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "evonas.report", str(tmp_path)], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "not a run directory" in r.stderr
