"""Lineage CSV: fixed columns, dtypes through a plain pd.read_csv, fsync'd appends,
torn-tail repair on reopen, idempotent ids; ancestry / alive_at / operator_stats."""
import os

import pandas as pd
import pytest

import evonas.lineage as L
from evonas.store import lineage as store
from evonas.store.lineage import COLUMNS, LineageWriter, read_records


def rec(i, parents=(), op="init", fitness=None, status="ok", **kw):
    return {"id": i, "birth": i, "parent_ids": parents, "operator": op, "genome_type": "nb201",
            "genome": f"|g~{i}|", "arch_hash": f"{i:016x}", "status": status, "fitness": fitness,
            "params": 1000 + i, "flops": 10 ** 6, "trained_epochs": 1.0, "train_seconds": 0.5, "worker": "cpu0", **kw}


# ids 0-2 init; 3 <- 0 (mut_a, better); 4 <- 3 (mut_b, better); 5 <- 4 (mut_a, failed);
# 6 <- 4 (mut_b, worse); 7 duplicate of 4's architecture
SYNTH = [rec(0, fitness=50.0), rec(1, fitness=60.0), rec(2, fitness=40.0),
         rec(3, (0,), "mut_a", 70.0), rec(4, (3,), "mut_b", 80.0),
         rec(5, (4,), "mut_a", None, "failed", reason="NaN loss", params=None, flops=None),
         rec(6, (4,), "mut_b", 75.0), rec(7, (6,), "mut_a", 80.0, "duplicate", worker="")]


@pytest.fixture
def lineage(tmp_path):
    path = tmp_path / "lineage.csv"
    with LineageWriter(path) as w:
        for r in SYNTH:
            assert w.write(r)
    return path


def test_plain_read_csv_dtypes(lineage):
    df = pd.read_csv(lineage)
    assert tuple(df.columns) == COLUMNS
    assert df["id"].dtype == "int64" and df["birth"].dtype == "int64"
    for c in ("fitness", "train_seconds", "trained_epochs", "params"):  # params has a NaN (failed row)
        assert df[c].dtype == "float64", c
    for c in ("parent_ids", "status", "genome", "operator", "reason", "worker", "inherited"):
        assert pd.api.types.is_string_dtype(df[c]), c
    assert df.loc[3, "parent_ids"] == "[0]" and df.loc[0, "parent_ids"] == "[]"


def test_single_parent_and_all_ok_stay_strings(tmp_path):
    path = tmp_path / "l.csv"
    with LineageWriter(path) as w:  # every parent list has one id, no failure, no reason
        w.write(rec(0, (12,), "m", 1.0))
        w.write(rec(1, (13,), "m", 2.0, worker="7"))
    df = pd.read_csv(path)
    assert pd.api.types.is_string_dtype(df["parent_ids"])
    assert pd.api.types.is_string_dtype(df["reason"]) and pd.api.types.is_string_dtype(df["worker"])
    assert df["params"].dtype == "int64" and df["fitness"].dtype == "float64"
    assert list(df["worker"]) == ["cpu0", "w7"]


def test_each_row_is_fsynced(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(store.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    w = LineageWriter(tmp_path / "l.csv")
    n0 = len(calls)
    w.write(rec(0, fitness=1.0))
    assert len(calls) == n0 + 1
    # visible to another reader before close
    assert len(pd.read_csv(tmp_path / "l.csv")) == 1
    w.close()


@pytest.mark.parametrize("tail", [b"8,[7],mut_a,nb201,|g", b"8,[7],mut\n", b"\x00\x00\x00\x00\n"])
def test_torn_last_line_is_repaired_on_reopen(lineage, tail):
    good = lineage.read_bytes()
    with open(lineage, "ab") as fh:
        fh.write(tail)
    assert len(L.load_lineage(lineage)) == len(SYNTH)  # readers skip it too
    w = LineageWriter(lineage)
    assert lineage.read_bytes() == good                 # cut back to the good rows
    assert w.ids == set(range(len(SYNTH)))
    assert w.write(rec(8, (7,), "mut_b", 81.0))
    w.close()
    df = pd.read_csv(lineage)
    assert list(df["id"]) == list(range(9))


def test_torn_header_and_foreign_file(tmp_path):
    p = tmp_path / "l.csv"
    p.write_bytes(b"id,parent_ids,oper")
    LineageWriter(p).close()
    assert list(pd.read_csv(p).columns) == list(COLUMNS)
    q = tmp_path / "other.csv"
    q.write_text("a,b\n1,2\n")
    with pytest.raises(Exception, match="not a lineage CSV"):
        LineageWriter(q)
    assert q.read_text() == "a,b\n1,2\n"


def test_write_is_idempotent_by_id(lineage):
    with LineageWriter(lineage) as w:
        assert not w.write(rec(4, (3,), "mut_b", 80.0))
    assert len(pd.read_csv(lineage)) == len(SYNTH)


def test_extra_columns(tmp_path):
    p = tmp_path / "l.csv"
    with LineageWriter(p, extra_columns=["test_acc"]) as w:
        w.write(rec(0, fitness=1.0, extra={"test_acc": 90}))
        w.write(rec(1, fitness=1.0))
    df = pd.read_csv(p)
    assert df["test_acc"].dtype == "float64" and df.loc[0, "test_acc"] == 90.0
    with LineageWriter(p) as w:  # None adopts the file's columns
        assert w.extra_columns == ("test_acc",)
    with pytest.raises(Exception, match="metric columns"):
        LineageWriter(p, extra_columns=["other"])


def test_load_lineage_types(lineage):
    df = L.load_lineage(lineage.parent)
    assert df.loc[4, "parent_ids"] == (3,) and df.loc[0, "parent_ids"] == ()
    assert str(df["params"].dtype) == "Int64" and pd.isna(df.loc[5, "params"])
    assert df.loc[0, "reason"] == "" and df.loc[5, "reason"] == "NaN loss"
    recs = read_records(lineage)
    assert recs[5]["fitness"] is None and recs[4]["parent_ids"] == (3,) and recs[7]["worker"] == ""


def test_ancestry(lineage):
    df = L.load_lineage(lineage)
    path = L.ancestry(df, 6)
    assert list(path["id"]) == [0, 3, 4, 6]
    assert list(path["gain"].round(6))[1:] == [20.0, 10.0, -5.0]
    assert L.depth(df, 6) == 3 and L.depth(df, 1) == 0
    improving = path[path.gain > 0].groupby("operator").gain.agg(["count", "sum"])
    assert improving.to_dict() == {"count": {"mut_a": 1, "mut_b": 1}, "sum": {"mut_a": 20.0, "mut_b": 10.0}}
    with pytest.raises(KeyError):
        L.ancestry(df, 99)


def test_alive_at(lineage):
    df = L.load_lineage(lineage)
    assert list(L.alive_at(df, 2, 3)["id"]) == [0, 1, 2]
    assert list(L.alive_at(df, 4, 3)["id"]) == [2, 3, 4]
    assert list(L.alive_at(df, 5, 3)["id"]) == [2, 3, 4]   # failed 5 never enters
    assert list(L.alive_at(df, 7, 3)["id"]) == [4, 6, 7]   # duplicate 7 does


def test_operator_stats(lineage):
    s = L.operator_stats(L.load_lineage(lineage))
    assert s.loc["init", "count"] == 3 and pd.isna(s.loc["init", "success_rate"])
    # mut_a: 3 (+20 over 0), 5 (failed), 7 (+5 over 6: 80 vs 75)
    assert s.loc["mut_a", "count"] == 3 and s.loc["mut_a", "failed"] == 1
    assert s.loc["mut_a", "success_rate"] == pytest.approx(2 / 3)
    assert s.loc["mut_a", "mean_improvement"] == pytest.approx(12.5)
    # mut_b: 4 (+10 over 3), 6 (-5 over 4)
    assert s.loc["mut_b", "success_rate"] == pytest.approx(0.5)
    assert s.loc["mut_b", "mean_improvement"] == pytest.approx(2.5)
