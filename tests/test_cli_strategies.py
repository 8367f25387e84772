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
