"""Run reports: the summary table, the exported ``best/``, figures, report.html, comparisons.

``python -m evonas.report RUN_DIR`` prints the summary of a run from its
``lineage.csv`` and writes, next to it, ``fitness.png/.svg`` (``evonas.plot``),
``ancestry.png/.svg`` of the best, for ``nsga2`` runs ``pareto.png/.svg`` (the
front is also printed) and ``report.html`` (``evonas.html_report``: one
self-contained interactive page). ``python -m evonas.report RUN RUN ...``
compares several runs per config, seeds pooled (``evonas.compare``).

``export_best`` writes ``best/genome.json`` (the ``genomes/`` schema, loadable
with ``evonas.load_genome``), ``best/weights.safetensors`` (a copy of the trained
weights), ``best/arch.dot`` (the whole decoded DAG, for tools) and
``best/arch.png``/``arch.svg`` (the cell drawing of ``evonas.draw``: the 4-node
cell for NB201, the labelled DAG otherwise).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import networkx as nx
import pandas as pd

from .errors import ConfigError, cli_exit_code
from .lineage import load_lineage
from .io import atomic_copy, atomic_path, atomic_write_text
from .store.rundir import BEST, RunPaths, is_run_dir
from .summary import format_summary, load_config, summarize, wall_seconds  # noqa: F401  (re-exported)


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
    target = best / "weights.safetensors"
    if weights_path is not None:  # checked, then copied before genome.json: never a best/ without them
        from .store.resume import check_weights_file
        check_weights_file(weights_path, genome.to_dict(), "export best")
        atomic_copy(weights_path, target)
        out["weights"] = target
    elif target.exists():
        target.unlink()
    save_genome(genome, out["genome"], **meta)
    atomic_write_text(out["dot"], to_dot(genome.decode(), title=f"{genome.type_name} {genome.to_string()}"))
    from .draw import cell_graph, draw_graph
    cell = cell_graph(genome)
    title = f"{genome.type_name}: {genome.to_string()}"[:120]
    for kind in ("png", "svg"):
        out[kind] = best / f"arch.{kind}"
        with atomic_path(out[kind], tmp_name=f"arch.tmp.{kind}") as tmp:  # matplotlib goes by the suffix
            draw_graph(cell, tmp, title=title)
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


# --- command line -------------------------------------------------------------------------
def check_run_dir(run_dir: str | Path) -> Path:
    root = Path(run_dir)
    if not is_run_dir(root):
        raise ConfigError("report", "run_dir", str(root), "not a run directory (needs config.json and lineage.csv)")
    return root


def report(run_dir: str | Path, plots: bool = True) -> str:
    """The summary text of a run, plus, when ``plots``: the figures (PNG + SVG) and
    ``report.html``. For ``nsga2`` runs the Pareto front is listed in the text."""
    root = check_run_dir(run_dir)
    paths = RunPaths(root)
    df = load_lineage(paths.lineage)
    cfg = load_config(root)
    summary = summarize(df, wall_seconds(paths))
    text = format_summary(summary)
    nsga2 = cfg.get("strategy") == "nsga2"
    if nsga2:
        text += "\n" + _pareto_text(df)
    if plots and len(df):
        for path in write_figures(root, df, cfg, summary.get("best id")):
            text += f"\nwrote {path}"
        from .html_report import write_report
        text += f"\nwrote {write_report(root)}"
    return text


def write_figures(root: Path, df: pd.DataFrame, cfg: dict, best_id: Optional[int]) -> list[Path]:
    from .plot import ancestry_figure_to, fitness_figure, pareto_figure, save
    out = save(fitness_figure(df, cfg, best_id), root / "fitness")
    if best_id is not None:
        for ext in ("png", "svg"):
            out.append(ancestry_figure_to(df, best_id, root / f"ancestry.{ext}"))
    if cfg.get("strategy") == "nsga2":
        out += save(pareto_figure(df, cfg), root / "pareto")
    return out


def _pareto_text(df: pd.DataFrame) -> str:
    from .plot import pareto_front
    lines = []
    for cost in ("params", "flops"):
        front = pareto_front(df, cost)
        lines.append(f"Pareto front (fitness vs {cost}): {len(front)} individuals")
        lines += [f"  id {int(r['id'])}: fitness {r['fitness']:.4g}, {cost} {int(r[cost])}"
                  for _, r in front.iterrows()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evonas.report",
        description="Print the summary of a run and write its figures (PNG+SVG) and report.html; "
                    "with several runs, compare them per config over seeds.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (runs/<name>)")
    parser.add_argument("--no-plots", action="store_true", help="only print the summary (default: off)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON (default: off)")
    parser.add_argument("--output", metavar="DIR", help="where a comparison of several runs writes "
                        "comparison.png/.svg/.csv (default: the first run's parent directory)")
    args = parser.parse_args(argv)
    return cli_exit_code(lambda: _main(args))


def _main(args) -> int:
    roots = [check_run_dir(r) for r in args.run_dirs]  # every path checked before any write
    if len(roots) > 1:
        from .compare import compare
        print(compare(roots, None if args.output is None else Path(args.output),
                      plots=not args.no_plots, as_json=args.json))
    elif args.json:
        df = load_lineage(roots[0] / "lineage.csv")
        print(json.dumps(summarize(df, wall_seconds(RunPaths(roots[0]))), indent=2))
    else:
        print(report(roots[0], plots=not args.no_plots))
    return 0


if __name__ == "__main__":
    sys.exit(main())
