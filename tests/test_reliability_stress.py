"""Stress: a 10,000-evaluation table run through the CLI (in-process), 4 lookups in
flight. Proves the lineage is complete (10,000 rows, unique ids, births 0..9,999)
and the driver's memory stays flat: RSS growth between evaluation 2,000 and
10,000 is bounded (the only state that grows is the dedup cache, one entry per
distinct architecture). Runs in CI; ~20-40 s on a loaded 2-core machine
(``EVONAS_STRESS_EVALS`` scales it down for a quick local run).
"""
import os
import resource
import time
from pathlib import Path

import pandas as pd
import pytest

from evonas import run as cli
from evonas.store import lineage as store_lineage

TABLE = None  # the synthetic NB201 table (conftest's nb201_table), set by _table: no ../shared needed


@pytest.fixture(scope="module", autouse=True)
def _table(nb201_table):
    global TABLE
    TABLE = nb201_table
EVALS = int(os.environ.get("EVONAS_STRESS_EVALS", "10000"))
MAX_GROWTH_MB = 40.0  # 8,000 evaluations: < 5 kB each, i.e. no per-evaluation leak of note


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs /proc to read RSS")
def test_long_table_run_memory_flat_and_lineage_complete(tmp_path, monkeypatch, capsys):
    samples = {}
    orig = store_lineage.LineageWriter.write

    def write(self, record, sync=True):
        out = orig(self, record, sync)
        n = len(self.ids)
        if n in (EVALS // 5, EVALS):
            samples[n] = (rss_mb(), time.monotonic())
        return out
    monkeypatch.setattr(store_lineage.LineageWriter, "write", write)
    d = tmp_path / "run"
    t0 = time.monotonic()
    rc = cli.main(["--genome", "nb201", "--population", "50", "--sample-size", "10",
                   "--evaluations", str(EVALS), "--workers", "4", "--time-budget", "0", "--dedup", "off",
                   "--benchmark-table", str(TABLE), "--run-dir", str(d), "--quiet"])
    wall = time.monotonic() - t0
    assert rc == 0
    df = pd.read_csv(d / "lineage.csv")
    # --dedup off: every child is looked up, so the run really makes EVALS evaluations
    # (with reuse, aging at P=50 converges and ends on the duplicate budget first)
    assert (df["status"] != "duplicate").sum() == EVALS and df["id"].is_unique
    assert sorted(df["birth"]) == list(range(len(df)))
    assert set(df["status"]) <= {"ok", "duplicate"}
    (m0, t_a), (m1, t_b) = samples[EVALS // 5], samples[EVALS]
    growth = m1 - m0
    with capsys.disabled():
        print(f"\n[stress] {EVALS} evaluations in {wall:.1f} s ({1e3 * (t_b - t_a) / (0.8 * EVALS):.2f} ms "
              f"per evaluation after the first 20%), RSS {m0:.0f} -> {m1:.0f} MB (+{growth:.1f} MB), "
              f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
              f"{df['arch_hash'].nunique()} distinct architectures")
    assert growth < MAX_GROWTH_MB * EVALS / 10000
