"""Table evaluator on a tiny CSV, plus aging vs random on an NB201 table (the synthetic
one, and the real one where ../shared/data has it)."""
from pathlib import Path

import numpy as np
import pytest

from evonas.errors import ConfigError
from evonas.evaluate.base import Job
from evonas.evaluate.table import TableEvaluator, nb201_dataset, nb201_setting
from evonas.evolve import Search
from evonas.genome.nb201 import NB201Genome

A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
B = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


@pytest.fixture
def csv(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(f"arch_str,c10_val_12,c10_test_200,other\n{A},82.5,93.6,1\n{B},10.0,,2\n")
    return p


def test_lookup_ok_unknown_and_nan(csv):
    ev = TableEvaluator(csv, report_column="c10_test_200", slots=2)
    ev.submit(Job(0, NB201Genome.from_string(A)))
    ev.submit(Job(1, NB201Genome(("nor_conv_1x1",) * 6)))
    ev.submit(Job(2, NB201Genome.from_string(B)))
    r0, r1 = ev.poll()[0], ev.poll()[0]
    assert (r0.status, r0.fitness, r0.extra) == ("ok", 82.5, {"c10_test_200": 93.6})
    assert r1.status == "failed" and "not in table" in r1.reason
    r2 = ev.poll()[0]
    assert r2.status == "ok" and np.isnan(r2.extra["c10_test_200"])


def test_cost_on_request_equals_the_built_network(csv):
    from evonas.compile import build
    g = NB201Genome.from_string(A)
    plain = TableEvaluator(csv)
    plain.submit(Job(0, g))
    assert plain.poll()[0].params is None  # off by default: lookups stay microseconds
    ev = TableEvaluator(csv, cost_input=(3, 32, 32), num_classes=10)
    ev.submit(Job(0, g))
    r = ev.poll()[0]
    assert r.params == sum(p.numel() for p in build(g, (3, 32, 32), 10).parameters())
    assert r.flops > r.params


def test_cost_setting_follows_the_fitness_columns_data_set():
    assert nb201_setting("c10_val_12") == ((3, 32, 32), 10)
    assert nb201_setting("c100_test_200") == ((3, 32, 32), 100)
    assert nb201_setting("cifar100-valid") == ((3, 32, 32), 100)
    assert nb201_setting("ImageNet16-120_val") == ((3, 16, 16), 120)
    assert nb201_setting("imgnet16_val_200") == ((3, 16, 16), 120)
    assert nb201_setting("my_metric") == ((3, 32, 32), 10)
    assert [nb201_dataset(c) for c in ("c10_val_12", "cifar100-valid", "imgnet16_val_200", "my_metric")] == \
        ["cifar10", "cifar100", "ImageNet16-120", None]


def test_report_column_is_optional(tmp_path, csv):
    ev = TableEvaluator(csv)  # no report column: nothing reported
    ev.submit(Job(0, NB201Genome.from_string(A)))
    assert ev.poll()[0].extra == {}
    bare = tmp_path / "bare.csv"  # a table with only the key and a fitness column
    bare.write_text(f"arch_str,acc\n{A},50.0\n")
    ev = TableEvaluator(bare, fitness_column="acc")
    ev.submit(Job(0, NB201Genome.from_string(A)))
    r = ev.poll()[0]
    assert (r.status, r.fitness, r.extra) == ("ok", 50.0, {})


def test_any_genome_type_keyed_by_its_string(tmp_path):
    from evonas.genome.cgp import CGPGenome
    rng = np.random.default_rng(0)
    gs = [CGPGenome.sample(rng) for _ in range(3)]
    p = tmp_path / "cgp.csv"
    p.write_text("genome,score\n" + "".join(f'"{g.to_string()}",{i}\n' for i, g in enumerate(gs)))
    ev = TableEvaluator(p, fitness_column="score", genome_type="cgp", key_column="genome")
    for i, g in enumerate(gs):
        ev.submit(Job(i, g))
        assert ev.poll()[0].fitness == float(i)
    ev.submit(Job(9, NB201Genome.from_string(A)))
    r = ev.poll()[0]
    assert r.status == "failed" and "holds cgp architectures, not nb201" in r.reason
    s = Search(ev, "cgp", strategy="random", seed=0, max_evaluations=3, confirm_hash=False)
    assert s.run()["evaluations"] == 3  # random cgp genomes are not in the table: failed rows


def test_other_columns(csv):
    ev = TableEvaluator(csv, fitness_column="other", report_column="c10_val_12")
    ev.submit(Job(0, NB201Genome.from_string(A)))
    r = ev.poll()[0]
    assert r.fitness == 1.0 and r.extra == {"c10_val_12": 82.5}


def test_config_errors(csv, tmp_path):
    with pytest.raises(ConfigError, match="missing.csv.*file not found"):
        TableEvaluator(tmp_path / "missing.csv")
    with pytest.raises(ConfigError, match="fitness_column.*'c10_val_99'"):
        TableEvaluator(csv, fitness_column="c10_val_99")
    with pytest.raises(ConfigError, match="report_column"):
        TableEvaluator(csv, report_column="nope")
    bad = tmp_path / "noarch.csv"
    bad.write_text("x,c10_val_12,c10_test_200\n1,2,3\n")
    with pytest.raises(ConfigError, match="arch_str"):
        TableEvaluator(bad)
    with pytest.raises(ConfigError, match="genome_type.*'nope'"):
        TableEvaluator(csv, genome_type="nope")


def test_aging_beats_random_on_nb201(any_nb201_table):
    ev = TableEvaluator(any_nb201_table, report_column="c10_test_200")
    res = {}
    for strategy, args in (("aging", {"population": 10, "sample": 3}), ("random", {})):
        best = []
        for seed in range(20):
            s = Search(ev, "nb201", strategy=strategy, strategy_args=args, seed=seed,
                       max_evaluations=100, dedup="off", confirm_hash=False)
            s.run()
            best.append(s.best().value)
        res[strategy] = np.mean(best)
    assert res["aging"] > res["random"] + 0.2, res


@pytest.fixture(scope="module")
def bench_mod():
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "search_nb201.py"
    spec = importlib.util.spec_from_file_location("search_nb201", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def full_table(tmp_path_factory):
    """Every NB201 cell with made-up C100 columns and a column of no known data set."""
    import itertools

    import pandas as pd
    from evonas.genome.nb201 import OPS
    rng = np.random.default_rng(0)
    archs = [NB201Genome(o).to_string() for o in itertools.product(OPS, repeat=6)]
    p = tmp_path_factory.mktemp("t") / "c100.csv"
    pd.DataFrame({"arch_str": archs, "c100_val_12": rng.random(len(archs)) * 70,
                  "c100_test_200": rng.random(len(archs)) * 70, "acc": rng.random(len(archs))}).to_csv(p, index=False)
    return p


@pytest.mark.parametrize("args, paper, report", [
    (["--fitness-column", "c100_val_12"], "71.84 ± 0.99 (REA)", "report c100_test_200"),
    (["--fitness-column", "acc"], None, "report none"),
    (["--fitness-column", "acc", "--paper", "ImageNet16-120"], "45.54 ± 1.03 (REA)", "report none"),
    (["--fitness-column", "c100_val_12", "--report-column", ""], "71.84 ± 0.99 (REA)", "report none"),
])
def test_benchmark_paper_figures_per_data_set(bench_mod, full_table, capsys, args, paper, report):
    bench_mod.main(["--table", str(full_table), *args, "--seeds", "2", "--hit-seeds", "0", "--strategy", "aging"])
    out = capsys.readouterr().out
    assert report in out
    row = next(line for line in out.splitlines() if line.startswith("aging "))
    if paper:
        assert paper in row
    else:
        assert "REA" not in row and "paper figures: none (unknown data set)" in out
    assert "93.92" not in out  # never the CIFAR-10 figures beside another data set


def test_benchmark_report_column_must_exist(bench_mod, full_table):
    with pytest.raises(ConfigError, match="report_column"):
        bench_mod.main(["--table", str(full_table), "--fitness-column", "acc", "--report-column", "c10_test_200",
                        "--seeds", "1"])
