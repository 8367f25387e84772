"""Figures of a run with matplotlib (object API, no pyplot: no global state, no display).

* ``fitness_figure``: fitness of every individual against evaluations and, when the
  lineage has timestamps (``finished_s``), against wall-clock seconds. Ok points are
  coloured by operator (``draw.name_color``: the same colour in every run),
  duplicates hollow, failures as red crosses on the bottom edge; the running best
  as a step line, the median of the last ``population`` results with its
  25-75 % band, the table's report column of the running best (dashed) and the
  ancestry of the best drawn as a tree over the points.
* ``pareto_figure``: fitness against params with the non-dominated front labelled
  by id, and the hypervolume of the front over evaluations (nsga2 runs).
* ``ancestry_figure``: the best's ancestors (every parent) as a tree of boxes.
* ``fitness_label(config)``: what the fitness IS, for the y axis.

``save(fig, stem)`` writes ``stem.png`` and ``stem.svg``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import networkx as nx
import numpy as np
import pandas as pd

from .draw import draw_graph, layout, name_color
from .io import atomic_path


def fitness_label(cfg: Mapping[str, Any]) -> str:
    """The y label: a table column, or validation accuracy after how much training."""
    if cfg.get("benchmark_table"):
        return f"table lookup {cfg.get('fitness_column', '?')} (%)"
    epochs = cfg.get("epochs", "?")
    how = "inherited weights + " if cfg.get("inherit", "none") != "none" else ""
    return f"validation accuracy (%)\nafter {how}{epochs} epoch(s) on {cfg.get('dataset', '?')}"


def save(fig, stem: str | Path) -> list[Path]:
    """``stem.png`` (150 dpi) and ``stem.svg``, each written under a temporary name
    and renamed, so a reader (or report.html) never sees half a file."""
    out = []
    for ext in ("png", "svg"):
        path = Path(f"{stem}.{ext}")
        with atomic_path(path, tmp_name=f"{path.stem}.tmp.{ext}") as tmp:  # matplotlib goes by the suffix
            fig.savefig(tmp, dpi=150, bbox_inches="tight")
        out.append(path)
    return out


def running_best(df: pd.DataFrame) -> pd.Series:
    """Best fitness so far, by birth (failures carry the previous best)."""
    d = df.sort_values("birth")
    f = d["fitness"].where(d["status"] != "failed")
    return f.cummax().ffill().set_axis(d["birth"].to_numpy())


def ancestors(df: pd.DataFrame, individual: int) -> nx.DiGraph:
    """Every ancestor of ``individual`` (all parents, so crossover mates too):
    edges parent -> child, restricted to ids present in ``df``."""
    parents = dict(zip(df["id"], df["parent_ids"]))
    g, todo = nx.DiGraph(), [individual]
    g.add_node(individual)
    while todo:
        c = todo.pop()
        for p in parents.get(c, ()):
            if p in parents:
                if p not in g:
                    todo.append(p)
                g.add_edge(p, c)
    return g


# --- fitness ------------------------------------------------------------------------------
def fitness_figure(df: pd.DataFrame, cfg: Mapping[str, Any], best_id: Optional[int] = None):
    from matplotlib.figure import Figure
    timed = "finished_s" in df.columns and df["finished_s"].notna().any()
    two = timed or df["train_seconds"].fillna(0).sum() > 0
    fig = Figure(figsize=(12 if two else 7.5, 5.4), layout="constrained")
    axes = fig.subplots(1, 2 if two else 1, sharey=True, squeeze=False)[0]
    d = df.sort_values("birth")
    _fitness_axes(axes[0], d, d["birth"].to_numpy(), cfg, best_id, "evaluations (individuals completed)")
    if timed:
        t = d["finished_s"].ffill().fillna(0.0).to_numpy()
        _fitness_axes(axes[1], d, t, cfg, best_id, "wall-clock time (s since start)")
    elif d["train_seconds"].fillna(0).sum() > 0:  # no timestamps: compute time, honestly named
        t = d["train_seconds"].fillna(0.0).cumsum().to_numpy()
        _fitness_axes(axes[1], d, t, cfg, best_id, "training time (s, summed over trials; no timestamps)")
    axes[0].set_ylabel(fitness_label(cfg))
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    fig.suptitle(f"{cfg.get('genome', '?')} / {cfg.get('strategy', '?')}: {len(d)} individuals "
                 f"(seed {cfg.get('seed', '?')})", fontsize=10)
    return fig


def _fitness_axes(ax, d: pd.DataFrame, x: np.ndarray, cfg: Mapping, best_id, xlabel: str) -> None:
    st = d["status"].to_numpy()
    f = d["fitness"].to_numpy(dtype=float)
    ok = st == "ok"
    for op in sorted(set(d["operator"][ok])):
        m = ok & (d["operator"].to_numpy() == op)
        ax.scatter(x[m], f[m], s=14, color=name_color(op), label=op or "init", alpha=0.8, lw=0, zorder=3)
    dup = st == "duplicate"
    if dup.any():
        ax.scatter(x[dup], f[dup], s=18, facecolors="none", edgecolors="#777777", lw=0.8,
                   label=f"duplicate, not retrained ({dup.sum()})", zorder=2)
    alive = pd.Series(np.where(st == "failed", np.nan, f))
    window = int(cfg.get("population") or 20)
    roll = alive.rolling(window, min_periods=1)
    ax.fill_between(x, roll.quantile(0.25), roll.quantile(0.75), color="#9ecae1", alpha=0.35, lw=0,
                    label=f"25-75 % of the last {window}", zorder=1)
    ax.plot(x, roll.median(), color="#3182bd", lw=1, label=f"median of the last {window}", zorder=1)
    ax.step(x, alive.cummax().ffill(), where="post", color="black", lw=1.6, label="running best", zorder=4)
    rep = cfg.get("report_column")
    if cfg.get("benchmark_table") and rep in d.columns:
        best_rep = _report_of_running_best(d, alive, rep)
        ax.step(x, best_rep, where="post", color="#e6550d", lw=1.2, ls="--",
                label=f"{rep} of the running best (reported only)", zorder=4)
    if best_id is not None:
        _ancestry_overlay(ax, d, x, best_id)
    fail = st == "failed"
    if fail.any():  # no fitness: crosses on the bottom edge (axes coordinates in y)
        ax.scatter(x[fail], np.zeros(fail.sum()), marker="x", s=16, color="#d62728", clip_on=False,
                   transform=ax.get_xaxis_transform(), label=f"failed ({fail.sum()})", zorder=5)
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3)


def _report_of_running_best(d: pd.DataFrame, alive: pd.Series, rep: str) -> np.ndarray:
    out, best, cur = [], -np.inf, np.nan
    for f, r in zip(alive.to_numpy(), d[rep].to_numpy(dtype=float)):
        if f > best:
            best, cur = f, r
        out.append(cur)
    return np.asarray(out)


def _ancestry_overlay(ax, d: pd.DataFrame, x: np.ndarray, best_id: int) -> None:
    tree = ancestors(d, best_id)
    where = {i: (xi, fi) for i, xi, fi in zip(d["id"], x, d["fitness"].to_numpy(dtype=float))}
    first = True
    for p, c in tree.edges():
        (x0, y0), (x1, y1) = where[p], where[c]
        if np.isfinite(y0) and np.isfinite(y1):
            ax.plot([x0, x1], [y0, y1], color="#6a3d9a", lw=0.9, alpha=0.8, zorder=5,
                    label="ancestry of the best" if first else None)
            first = False
    bx, by = where[best_id]
    ax.scatter([bx], [by], marker="*", s=140, color="gold", edgecolors="black", zorder=6,
               label=f"best (id {best_id})")


# --- Pareto -------------------------------------------------------------------------------
def pareto_front(df: pd.DataFrame, cost: str = "params") -> pd.DataFrame:
    """Non-dominated ok individuals (max fitness, min ``cost``), by increasing cost."""
    ok = df[(df["status"] == "ok") & df["fitness"].notna() & df[cost].notna()]
    ok = ok.assign(_c=ok[cost].astype("float64")).sort_values(["_c", "fitness"], ascending=[True, False])
    keep, best = [], -np.inf
    for idx, f in zip(ok.index, ok["fitness"]):
        if f > best:
            keep.append(idx)
            best = f
    return ok.loc[keep].drop(columns="_c")


def hypervolume(points: np.ndarray, ref: tuple[float, float]) -> float:
    """2-D hypervolume of (cost, fitness) points, minimising cost and maximising
    fitness, against ``ref`` = (worst cost, worst fitness)."""
    pts = sorted((c, f) for c, f in points if c <= ref[0] and f >= ref[1])
    # sweep from the fittest down: each point adds the strip of cost it newly dominates
    hv, reach = 0.0, ref[0]
    for c, f in sorted(pts, key=lambda p: -p[1]):
        if c < reach:
            hv += (reach - c) * (f - ref[1])
            reach = c
    return hv


def hypervolume_over_time(df: pd.DataFrame, cost: str = "params") -> pd.Series:
    ok = df[(df["status"] == "ok") & df["fitness"].notna() & df[cost].notna()].sort_values("birth")
    c, f = ok[cost].astype("float64").to_numpy(), ok["fitness"].to_numpy(dtype=float)
    if not len(ok):
        return pd.Series(dtype=float)
    ref = (float(c.max()) * 1.1, float(f.min()))  # fixed reference: values comparable over time
    pts, births = np.column_stack([c, f]), ok["birth"].to_numpy()
    at = np.unique(np.linspace(0, len(pts) - 1, min(len(pts), 400)).astype(int))  # bounded cost
    return pd.Series([hypervolume(pts[:i + 1], ref) for i in at], index=births[at])


def pareto_figure(df: pd.DataFrame, cfg: Mapping[str, Any], cost: str = "params"):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    ax, hx = fig.subplots(1, 2)
    ok = df[(df["status"] == "ok") & df[cost].notna()]
    ax.scatter(ok[cost].astype(float), ok["fitness"], s=12, color="#bbbbbb", label="evaluated", zorder=2)
    front = pareto_front(df, cost)
    ax.step(front[cost].astype(float), front["fitness"], where="post", color="#d62728", lw=1.4, zorder=3)
    ax.scatter(front[cost].astype(float), front["fitness"], s=30, color="#d62728",
               label=f"Pareto front ({len(front)})", zorder=4)
    for _, r in front.iterrows():
        ax.annotate(f"id {int(r['id'])}", (float(r[cost]), float(r["fitness"])), fontsize=7,
                    xytext=(4, -10), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("parameters (count, log scale)" if cost == "params" else "MACs per sample (log scale)")
    ax.set_ylabel(fitness_label(cfg))
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8)
    hv = hypervolume_over_time(df, cost)
    hx.step(hv.index, hv.to_numpy(), where="post", color="#d62728")
    hx.set_xlabel("evaluations (individuals completed)")
    hx.set_ylabel(f"hypervolume ({cost} x fitness %)")
    hx.set_title("reference: 1.1 x max cost, min fitness", fontsize=8)
    hx.grid(True, alpha=0.3)
    return fig


# --- ancestry -----------------------------------------------------------------------------
def ancestry_figure_to(df: pd.DataFrame, individual: int, path: str | Path) -> Path:
    """The ancestors of ``individual`` as boxes (id, operator, fitness), oldest on top."""
    tree = ancestors(df, individual)
    by_id = df.set_index("id")
    g = nx.DiGraph()
    for n in tree:
        r = by_id.loc[n]
        fit = "failed" if r["status"] == "failed" else f"{r['fitness']:.4g}"
        g.add_node(str(n), op=r["operator"], label=f"id {n}\n{r['operator'] or 'init'}\n{fit}")
    g.add_edges_from((str(u), str(v)) for u, v in tree.edges())
    return draw_graph(g, path, title=f"ancestry of individual {individual}", pos=layout(g))
