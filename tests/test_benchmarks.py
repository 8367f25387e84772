"""The device scripts run end to end on CPU (so they cannot rot between the
sessions that have a GPU): the parallel benchmark, its nvidia-smi parsing, and
the device check, whose CUDA-only check says SKIP here."""
import sys

import pytest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import gpu_check  # noqa: E402
import parallel  # noqa: E402


def test_parse_smi():
    assert parallel.parse_smi("87, 1234\n 3 , 40\n[N/A], 5\n\n") == [(87.0, 1234.0), (3.0, 40.0)]


def test_smi_sampler_without_nvidia_smi_reports_nan(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with parallel.SmiSampler(every_s=0.01) as s:
        pass
    util, peak = s.summary()
    assert util != util and peak != peak  # NaN: nothing measured, nothing invented


def test_parallel_benchmark_cpu_end_to_end(capsys):
    parallel.main(["--dataset", "digits", "--max-train", "200", "--trials", "2", "--workers", "1x1",
                   "--C", "4"])
    out = capsys.readouterr().out.splitlines()
    row = out[-1].split()
    assert row[0] == "cpu" and row[1] == "1" and row[7] == "2/2"  # both trials trained ok
    assert float(row[5]) > 0  # trials per minute


@pytest.mark.slow  # ~25 s: it trains, starts a worker pool and replaces a faulted worker
def test_gpu_check_passes_on_cpu(capsys):
    rc = gpu_check.main(["--device", "cpu", "--dataset", "digits", "--max-train", "500", "--C", "8"])
    lines = capsys.readouterr().out.splitlines()[1:]
    assert rc == 0, lines
    assert [ln.split()[:2] for ln in lines] == [["PASS", "train"], ["PASS", "release"], ["SKIP", "real-oom"],
                                               ["PASS", "pool"], ["PASS", "cuda-fault"]]


@pytest.mark.slow
def test_search_real_quick_end_to_end(tmp_path, capsys):
    """benchmarks/search_real.py --quick: two arms and the hand-designed net on digits,
    each search arm ending in the final stage; the table names every arm."""
    import pandas as pd
    import search_real
    assert search_real.main(["--quick", "--arms", "none,random,hand", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for arm in ("none", "random", "hand"):
        assert f"| {arm} |" in out
    df = pd.read_csv(tmp_path / "tree" / "summary.csv")
    assert set(df.arm) == {"none", "random", "hand"} and df.final_test.between(0, 100).all()
    fin = pd.read_csv(tmp_path / "tree" / "none-s0" / "final.csv")
    assert len(fin) >= 1 and fin.status.eq("ok").all() and (fin.final_epochs == 1).all()
