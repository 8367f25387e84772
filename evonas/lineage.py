"""Analyse a run's lineage in pandas.

    >>> import evonas.lineage as L
    >>> df = L.load_lineage("runs/my-run")            # one row per individual
    >>> best = df.loc[df.fitness.idxmax(), "id"]
    >>> path = L.ancestry(df, best)                    # root -> best, with `gain`
    >>> path[path.gain > 0].groupby("operator").gain.agg(["count", "sum"])
    >>> L.operator_stats(df)                           # success rate per operator
    >>> L.alive_at(df, birth=250, population_size=100) # population after 251 results

The file format (columns, dtypes, durability) is described in
``evonas.store.lineage``.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .store.lineage import (COLUMNS, FLOAT_COLUMNS, INT_COLUMNS, NONE, NULLABLE_INT_COLUMNS,
                            TEXT_COLUMNS, parse_parent_ids, read_records, scan)

ALIVE_STATUSES = ("ok", "duplicate")


def load_lineage(path: str | Path) -> pd.DataFrame:
    """Read ``lineage.csv`` (or a run directory containing it) into a DataFrame:
    ``id``/``birth`` int64, ``params``/``flops`` nullable Int64, float metrics
    float64, text columns str with ``-`` turned into '', ``parent_ids`` a tuple of
    ints. A torn last line (a run still writing, or killed) is left out."""
    path = Path(path)
    if path.is_dir():
        path = path / "lineage.csv"
    header, _, rows = scan(path.read_bytes())  # good rows only: no torn tail
    if header is None:
        return pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in COLUMNS})
    df = pd.DataFrame(rows, columns=header, dtype=object)
    for c in header:
        if c in INT_COLUMNS:
            df[c] = df[c].astype("int64")
        elif c in NULLABLE_INT_COLUMNS:
            df[c] = pd.to_numeric(df[c].replace("", None)).astype("Int64")
        elif c in TEXT_COLUMNS:
            df[c] = df[c].astype(str)
        else:
            df[c] = pd.to_numeric(df[c].replace("", None), errors="coerce").astype("float64")
    for c in ("worker", "reason", "arch_hash", "operator"):
        df[c] = df[c].replace(NONE, "")
    df["parent_ids"] = df["parent_ids"].map(parse_parent_ids)
    return df.reset_index(drop=True)


def _dtype(c: str) -> str:
    return ("int64" if c in INT_COLUMNS else "Int64" if c in NULLABLE_INT_COLUMNS
            else "float64" if c in FLOAT_COLUMNS else "object")


def _first_parent(df: pd.DataFrame) -> pd.Series:
    return df["parent_ids"].map(lambda p: p[0] if len(p) else None)


def ancestry(df: pd.DataFrame, individual: int) -> pd.DataFrame:
    """The path from a root (an initial or seed individual) to ``individual``,
    following the first parent of each (the mutated one; for a crossover child
    the first mate). Rows in root -> individual order, plus a column ``gain`` =
    fitness minus the previous row's fitness (NaN for the root or after a
    failure). Stops early if a parent is not in ``df``."""
    by_id = df.set_index("id", drop=False)
    if individual not in by_id.index:
        raise KeyError(f"individual {individual} is not in the lineage")
    chain, seen, cur = [], set(), individual
    while cur is not None and cur in by_id.index and cur not in seen:
        seen.add(cur)
        chain.append(cur)
        parents = by_id.at[cur, "parent_ids"]
        cur = parents[0] if len(parents) else None
    path = by_id.loc[chain[::-1]].reset_index(drop=True)
    return path.assign(gain=path["fitness"].diff())


def alive_at(df: pd.DataFrame, birth: int, population_size: int) -> pd.DataFrame:
    """The aging-evolution population right after the result with ``birth`` was
    told: of the individuals with birth <= ``birth`` whose status is ok or
    duplicate (failed children never enter), the ``population_size`` youngest,
    oldest first. Matches ``evonas.evolve.aging`` (push back, pop the oldest)."""
    done = df[(df["birth"] <= birth) & df["status"].isin(ALIVE_STATUSES)]
    return done.sort_values("birth").tail(population_size)


def operator_stats(df: pd.DataFrame) -> pd.DataFrame:
    """Per operator: ``count`` (children made), ``failed``, ``with_parent``
    (children whose first parent has a fitness), ``success_rate`` (share of those
    that beat that parent; a failed child counts as no success) and
    ``mean_improvement`` (mean child - parent fitness over children that have
    both). Initial individuals (no parent) count only in ``count``/``failed``."""
    fitness = df.set_index("id")["fitness"]
    parent_fit = _first_parent(df).map(fitness).astype("float64")
    gain = df["fitness"] - parent_fit
    work = pd.DataFrame({"operator": df["operator"], "failed": df["status"].eq("failed"),
                         "with_parent": parent_fit.notna(), "success": gain.gt(0), "gain": gain})
    g = work.groupby("operator")
    out = pd.DataFrame({"count": g.size(), "failed": g["failed"].sum(),
                        "with_parent": g["with_parent"].sum(), "successes": g["success"].sum(),
                        "mean_improvement": g["gain"].mean()})
    out["success_rate"] = out["successes"] / out["with_parent"].where(out["with_parent"] > 0)
    return out[["count", "failed", "with_parent", "success_rate", "mean_improvement"]]


def depth(df: pd.DataFrame, individual: int) -> int:
    """Number of generations between ``individual`` and its root (root: 0)."""
    return len(ancestry(df, individual)) - 1


__all__ = ["load_lineage", "ancestry", "alive_at", "operator_stats", "depth", "read_records",
           "ALIVE_STATUSES"]
