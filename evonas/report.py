"""Run reports: the final summary table, the exported best model, pictures.

``python -m evonas.report RUN_DIR`` prints the summary of a run from its
``lineage.csv`` and writes ``RUN_DIR/fitness.png`` (fitness of every individual
over evaluations, coloured by operator, with the running best),
``RUN_DIR/ancestry.png`` (the ancestry tree of the best individual) and, for
``nsga2`` runs, ``RUN_DIR/pareto.png`` (fitness vs params and FLOPs, front
highlighted; the front is also printed).

``export_best`` writes ``best/genome.json`` (the ``genomes/`` schema, loadable
with ``evonas.load_genome``), ``best/weights.safetensors`` (a copy of the trained
weights), ``best/arch.dot`` and ``best/arch.png`` (the decoded DAG, drawn by
Graphviz ``dot`` when it is on PATH, else by ``evonas.plot`` with Pillow).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import networkx as nx
import pandas as pd

from .errors import ConfigError, EvonasError, cli_exit_code
from .lineage import ancestry, load_lineage
from .store.rundir import BEST, RunPaths, atomic_copy, atomic_write_text, is_run_dir, read_json


# --- summary ------------------------------------------------------------------------------
def summarize(df: pd.DataFrame, wall_seconds: Optional[float] = None) -> dict[str, Any]:
    """The numbers of the final table. ``evaluations`` counts trained individuals
    (ok + failed); duplicates reused an earlier result and are counted apart."""
    ok = df[df["status"] == "ok"]
    out: dict[str, Any] = {"individuals": len(df),
                           "evaluations": int(df["status"].isin(["ok", "failed"]).sum()),
                           "duplicates skipped": int((df["status"] == "duplicate").sum()),
                           "failures": int((df["status"] == "failed").sum()),
                           "wall time (s)": None if wall_seconds is None else round(float(wall_seconds), 1)}
    if ok["fitness"].notna().any():
        best = ok.loc[ok["fitness"].idxmax()]
        out.update({"best id": int(best["id"]), "best fitness": float(best["fitness"]),
                    "best lineage epochs": None if "lineage_epochs" not in best or pd.isna(best["lineage_epochs"])
                    else float(best["lineage_epochs"]),
                    "params": _int_or_none(best["params"]), "FLOPs (MACs)": _int_or_none(best["flops"]),
                    "lineage depth": len(ancestry(df, int(best["id"]))) - 1,
                    "operator": best["operator"], "genome": best["genome"]})
        for col in df.columns[list(df.columns).index("reason") + 1:]:  # extra metrics
            out[col] = None if pd.isna(best[col]) else float(best[col])
    return out


def _int_or_none(v: Any) -> Optional[int]:
    return None if pd.isna(v) else int(v)


def format_summary(summary: dict[str, Any]) -> str:
    """A two-column text table."""
    rows = [(k, "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v))
            for k, v in summary.items()]
    width = max(len(k) for k, _ in rows)
    rule = "-" * (width + 3 + min(60, max(len(v) for _, v in rows)))
    return "\n".join([rule] + [f"{k:<{width}} | {v}" for k, v in rows] + [rule])


def wall_seconds(paths: RunPaths) -> Optional[float]:
    """Seconds from the manifest's start time to the last lineage write: wall time
    including any pauses between resumes (an upper bound of compute time)."""
    try:
        start = read_json(paths.manifest, str(paths.root)).get("start_time")
        t0 = _dt.datetime.fromisoformat(start).timestamp()
    except (EvonasError, TypeError, ValueError, AttributeError):
        return None
    return max(0.0, paths.lineage.stat().st_mtime - t0)


# --- best model export --------------------------------------------------------------------
def export_best(run_dir: str | Path, genome, weights_path: str | Path | None = None,
                fitness: Optional[float] = None, individual: Optional[int] = None) -> dict[str, Path]:
    """Write ``best/``: genome.json, weights.safetensors (copied from
    ``weights_path``; removed if None so stale weights never pair with a new
    genome), arch.dot and arch.png. Returns the written paths by kind."""
    from .genome import save_genome
    best = Path(run_dir) / BEST
    best.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"source": f"evonas run {Path(run_dir).name}"}
    if individual is not None:
        meta["note"] = f"individual {individual} of the run"
    if fitness is not None and math.isfinite(fitness):
        meta["fitness"] = float(fitness)
    out = {"genome": best / "genome.json", "dot": best / "arch.dot", "png": best / "arch.png"}
    save_genome(genome, out["genome"], **meta)
    target = best / "weights.safetensors"
    if weights_path is not None:
        atomic_copy(weights_path, target)
        out["weights"] = target
    elif target.exists():
        target.unlink()
    graph = genome.decode()
    atomic_write_text(out["dot"], to_dot(graph, title=f"{genome.type_name} {genome.to_string()}"))
    draw_png(graph, out["png"], dot_file=out["dot"])
    return out


def _label(g: nx.DiGraph, n: str) -> str:
    d = g.nodes[n]
    params = ",".join(f"{k}={v}" for k, v in sorted((d.get("params") or {}).items()))
    return "\n".join(x for x in (str(n), str(d.get("op", "?")), params[:40]) if x)


def to_dot(g: nx.DiGraph, title: str = "") -> str:
    """Graphviz DOT text of a DAG (node: id, op and params; edge: input order)."""
    def q(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    lines = ["digraph arch {", "  rankdir=TB;", "  node [shape=box, fontsize=10];"]
    if title:
        lines.append(f"  label={q(title[:200])}; labelloc=t;")
    for n in nx.topological_sort(g):
        lines.append(f"  {q(str(n))} [label={q(_label(g, n))}];")
    for u, v, d in g.edges(data=True):
        lines.append(f"  {q(str(u))} -> {q(str(v))} [label={q(str(d.get('order', 0)))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_png(g: nx.DiGraph, path: str | Path, dot_file: str | Path | None = None) -> str:
    """Draw ``g`` to ``path`` (PNG). Uses Graphviz ``dot`` on ``dot_file`` when both
    exist, else a layered drawing with Pillow. Returns the renderer used."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp.png")
    exe = shutil.which("dot")
    if exe and dot_file is not None:
        try:
            subprocess.run([exe, "-Tpng", str(dot_file), "-o", str(tmp)], check=True,
                           capture_output=True, timeout=60)
            os.replace(tmp, path)
            return "graphviz"
        except (OSError, subprocess.SubprocessError):
            tmp.unlink(missing_ok=True)  # fall back to Pillow
    from .plot import draw_dag
    draw_dag(g, {n: _label(g, n) for n in g}).save(tmp, format="PNG")
    os.replace(tmp, path)
    return "pillow"


# --- command line -------------------------------------------------------------------------
def report(run_dir: str | Path, plots: bool = True) -> str:
    """The summary text of a run, plus, when ``plots``: ``fitness.png``,
    ``ancestry.png`` (the best individual's ancestors) and, for ``nsga2`` runs,
    the Pareto front (listed in the text and drawn in ``pareto.png``)."""
    root = Path(run_dir)
    if not is_run_dir(root):
        raise ConfigError("report", "run_dir", str(root), "not a run directory (needs config.json and lineage.csv)")
    paths = RunPaths(root)
    df = load_lineage(paths.lineage)
    summary = summarize(df, wall_seconds(paths))
    text = format_summary(summary)
    nsga2 = _strategy(paths) == "nsga2"
    if nsga2:
        text += "\n" + _pareto_text(df)
    if plots and len(df):
        from .plot import ancestry_plot, fitness_plot, pareto_plot
        images = {"fitness.png": fitness_plot(df)}
        if "best id" in summary:
            images["ancestry.png"] = ancestry_plot(df, summary["best id"])
        if nsga2:
            images["pareto.png"] = pareto_plot(df)
        for name, img in images.items():
            _save_png(img, root / name)
            text += f"\nwrote {root / name}"
    return text


def _strategy(paths: RunPaths) -> Optional[str]:
    try:
        return read_json(paths.config, str(paths.root)).get("strategy")
    except (EvonasError, AttributeError):
        return None


def _pareto_text(df: pd.DataFrame) -> str:
    from .plot import pareto_front
    lines = []
    for cost in ("params", "flops"):
        front = pareto_front(df, cost)
        lines.append(f"Pareto front (fitness vs {cost}): {len(front)} individuals")
        lines += [f"  id {int(r['id'])}: fitness {r['fitness']:.4g}, {cost} {int(r[cost])}"
                  for _, r in front.iterrows()]
    return "\n".join(lines)


def _save_png(img, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp.png")  # atomic: a reader never sees half a PNG
    img.save(tmp, format="PNG")
    os.replace(tmp, path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evonas.report",
                                     description="Print the summary of a run and write its plots (fitness, ancestry, Pareto front).")
    parser.add_argument("run_dir", help="a run directory (runs/<name>)")
    parser.add_argument("--no-plots", action="store_true", help="only print the summary (default: off)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (default: off)")
    args = parser.parse_args(argv)
    return cli_exit_code(lambda: _main(args))


def _main(args) -> int:
    if args.json:
        if not is_run_dir(args.run_dir):
            raise ConfigError("report", "run_dir", args.run_dir, "not a run directory")
        df = load_lineage(Path(args.run_dir) / "lineage.csv")
        print(json.dumps(summarize(df, wall_seconds(RunPaths(Path(args.run_dir)))), indent=2))
    else:
        print(report(args.run_dir, plots=not args.no_plots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
