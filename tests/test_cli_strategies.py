"""Issue 17 acceptance: every seed-paper strategy (reinforce, nao, pvll) and the
surrogate pre-screen runs through the CLI for every registered genome type with
real training (digits, tiny spaces), and a run cut short and resumed gives the
same lineage as the run made in one go, as for the other strategies."""
from __future__ import annotations

import pandas as pd
import pytest

from evonas.genome import GENOMES
from evonas.run import main as run_main

from test_cli import FAST, TIMING, TINY, check_lineage

# Small enough for a tiny CPU run; everything else is the strategy's default.
ARGS = {"reinforce": [],
        "nao": ["--strategy-arg", "candidates=4"],
        "pvll": ["--strategy-arg", "candidates=4"],
        "surrogate": ["--strategy-arg", "candidates=3", "--strategy-arg", 'screen_args={"min_data": 2}']}
CASES = [(g, s) for s in ARGS for g in sorted(GENOMES.names()) if g in TINY]


@pytest.fixture(autouse=True)
def _passive_openmp(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads slow shared cores


def _args(genome: str, strategy: str) -> list[str]:
    return ["--genome", genome, "--strategy", strategy, *TINY[genome], *ARGS[strategy], "--population", "3",
            "--seed", "2", "--final-top", "0", *FAST]


@pytest.mark.slow
@pytest.mark.parametrize("genome,strategy", CASES)
def test_real_training_run_and_exact_resume(tmp_path, genome, strategy):
    args = _args(genome, strategy)
    assert run_main([*args, "--evaluations", "4", "--run-dir", str(tmp_path / "straight")]) == 0
    assert run_main([*args, "--evaluations", "2", "--run-dir", str(tmp_path / "part")]) == 0
    assert run_main(["--resume", str(tmp_path / "part"), "--evaluations", "4", "--quiet"]) == 0
    df = check_lineage(tmp_path / "straight", genome, 4)
    # CGP's function set has 32-128-channel convolutions: most of its children exceed
    # FAST's --max-macs and fail before training, which is what the bound is for
    failed = df[df["status"] == "failed"]
    assert (df["status"] == "ok").sum() >= (1 if genome == "cgp" else 3), df[["status", "reason"]]
    assert failed["reason"].astype(str).str.contains("macs", case=False).all(), failed["reason"].tolist()
    a, b = (pd.read_csv(tmp_path / d / "lineage.csv").drop(columns=TIMING) for d in ("straight", "part"))
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_naswot_prescreen_real_training(tmp_path):
    """``--surrogate naswot`` (zero-cost proxy on one mini-batch) around aging."""
    args = ["--genome", "tree", *TINY["tree"], "--strategy", "aging", "--surrogate", "naswot", "--population", "3",
            "--sample-size", "2", "--seed", "1", "--final-top", "0", *FAST]
    assert run_main([*args, "--evaluations", "6", "--run-dir", str(tmp_path / "straight")]) == 0
    assert run_main([*args, "--evaluations", "4", "--run-dir", str(tmp_path / "part")]) == 0
    assert run_main(["--resume", str(tmp_path / "part"), "--evaluations", "6", "--quiet"]) == 0
    df = check_lineage(tmp_path / "straight", "tree", 6)
    assert (df["operator"] != "init").any()
    a, b = (pd.read_csv(tmp_path / d / "lineage.csv").drop(columns=TIMING) for d in ("straight", "part"))
    pd.testing.assert_frame_equal(a, b)


# --- the surrogate's own parameters from the command line (--surrogate-arg) -----------------
def _table_args(table, tmp_path, *extra):
    return ["--genome", "nb201", "--strategy", "aging-novel-best", "--surrogate", "mlp", "--population", "10",
            "--benchmark-table", str(table), "--report-column", "c10_test_200", "--evaluations", "30",
            "--seed", "4", "--quiet", "--run-dir", str(tmp_path / "run"), *extra]


def test_surrogate_args_reach_the_middleware_and_the_predictor(tmp_path, nb201_table):
    import json
    screen = {"min_data": 5, "refit_every": 2, "predictor_args": {"steps": 10, "target": "log", "hidden": 16}}

    def run(name, kappa):
        args = _table_args(nb201_table, tmp_path / name, "--surrogate-arg", f"kappa={kappa}",
                           "--surrogate-arg", "candidates=6", "--surrogate-arg", f"screen_args={json.dumps(screen)}",
                           "--mutation", "edge_op_by_node", "--mutation", "edge_swap")
        assert run_main(args) == 0
        return pd.read_csv(tmp_path / name / "run" / "lineage.csv")

    df = run("a", 1.5)
    stored = json.loads((tmp_path / "a" / "run" / "config.json").read_text())["search"]["surrogate_args"]
    assert stored == {"kappa": 1.5, "candidates": 6, "screen_args": screen}
    assert len(df) == 30 and {"edge_op_by_node", "edge_swap"} <= set(df["operator"])
    pd.testing.assert_frame_equal(df.drop(columns=TIMING), run("b", 1.5).drop(columns=TIMING))  # same seed
    assert list(run("c", 0)["genome"]) != list(df["genome"])  # kappa reached the screen: another search


@pytest.mark.parametrize("item, field", [("kappa=-1", "surrogate_args.kappa"), ("base=aging", "surrogate_args.base"),
                                         ("foo=1", "surrogate_args.foo"), ("screen_args=3", "surrogate_args.screen_args"),
                                         ('screen_args={"predictor_args": {"target": "rank"}}', "surrogate_args.target")])
def test_bad_surrogate_args_exit_2_and_write_nothing(tmp_path, nb201_table, capsys, item, field):
    assert run_main(_table_args(nb201_table, tmp_path, "--surrogate-arg", item)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"'{field}'" in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


def test_surrogate_args_need_a_surrogate(tmp_path, nb201_table, capsys):
    args = [a for a in _table_args(nb201_table, tmp_path, "--surrogate-arg", "kappa=1") if a not in ("--surrogate", "mlp")]
    assert run_main(args) == 2
    assert "needs --surrogate" in capsys.readouterr().err and not (tmp_path / "run").exists()
