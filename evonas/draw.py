"""Architecture drawings: a small labelled graph per genome, its layout, and a picture.

* ``cell_graph(genome)``: what a reader wants to see of an architecture. For NB201
  the 4-node cell (nodes 0..3, one edge per op, ``none`` edges left out), not the
  unrolled network of 15 cells; for every other genome its decoded DAG with the op
  names (and the main parameters) as node labels.
* ``layout(g)``: node positions from Graphviz ``dot`` when it is on PATH, else a
  layered layout (layer = longest path from the inputs, order in a layer by the
  mean position of the inputs). Both ``draw_graph`` and ``report.html`` use it.
* ``draw_graph(g, path)``: the picture (PNG or SVG, by suffix) with matplotlib.
  Edges that skip layers are drawn as arcs, so they bend around the boxes in between.
"""
from __future__ import annotations

import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any, Optional

import networkx as nx

# tab20 reordered so that neighbouring indices differ strongly; index = hash of a name
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
           "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d", "#393b79"]
_PARAM_KEYS = ("C", "k", "stride", "dilation", "groups")


def name_color(name: str) -> str:
    """A colour fixed by the name alone (crc32, not Python's salted ``hash``), so an
    operator or op has the same colour in every run and every figure."""
    if name in ("init", "seed", ""):
        return "#4d4d4d"
    return PALETTE[zlib.crc32(name.encode()) % len(PALETTE)]


def cell_graph(genome) -> nx.DiGraph:
    """Nodes carry ``label`` (and ``op``), edges an optional ``label``."""
    if genome.type_name == "nb201":
        return _nb201_cell(genome.ops)
    src = genome.decode()
    g = nx.DiGraph()
    for n, d in src.nodes(data=True):
        op = str(d.get("op", "?"))
        p = d.get("params") or {}
        extra = " ".join(f"{k}{p[k]}" for k in _PARAM_KEYS if k in p)
        g.add_node(str(n), op=op, label=op + ("\n" + extra if extra else ""))
    g.add_edges_from((str(u), str(v)) for u, v in src.edges())
    return g


def _nb201_cell(ops) -> nx.DiGraph:
    from .genome.nb201 import EDGES
    g = nx.DiGraph()
    for i, name in enumerate(("in", "node 1", "node 2", "out")):
        g.add_node(str(i), op="node", label=name)
    for (i, j), op in zip(EDGES, ops):
        if op != "none":  # a zero edge contributes nothing: drawing it would mislead
            g.add_edge(str(i), str(j), label=op, op=op)
    return g


# --- layout -------------------------------------------------------------------------------
def layout(g: nx.DiGraph, use_dot: Optional[bool] = None) -> dict[str, tuple[float, float]]:
    """Positions in layer units (inputs on top, y grows downwards). ``use_dot``:
    None = when ``dot`` is on PATH."""
    if not len(g):
        return {}
    exe = shutil.which("dot") if use_dot is not False else None
    if exe:
        pos = _dot_layout(g, exe)
        if pos is not None:
            return pos
    return _layered(g)


def _layered(g: nx.DiGraph) -> dict[str, tuple[float, float]]:
    depth: dict = {}
    order = list(nx.topological_sort(g))
    for n in order:
        depth[n] = max((depth[p] + 1 for p in g.predecessors(n)), default=0)
    layers: dict[int, list] = {}
    for n in order:
        layers.setdefault(depth[n], []).append(n)
    x: dict = {}
    for d in sorted(layers):
        row = layers[d]
        # one barycentre sweep: a node sits under the mean of its inputs -> fewer crossings
        row.sort(key=lambda n: sum(x.get(p, 0.0) for p in g.predecessors(n)) / max(1, g.in_degree(n)))
        for i, n in enumerate(row):
            x[n] = i - (len(row) - 1) / 2
    return {n: (x[n], float(depth[n])) for n in g}


def _dot_layout(g: nx.DiGraph, exe: str) -> Optional[dict[str, tuple[float, float]]]:
    names = {n: f"n{i}" for i, n in enumerate(g)}
    lines = ["digraph g {", "rankdir=TB; nodesep=0.3; ranksep=0.4;"]
    lines += [f'{names[n]} [label="{_dot_escape(g.nodes[n].get("label", n))}", shape=box];' for n in g]
    lines += [f"{names[u]} -> {names[v]};" for u, v in g.edges()]
    try:
        out = subprocess.run([exe, "-Tplain"], input="\n".join(lines + ["}"]), text=True,
                             capture_output=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None  # a broken graphviz install: the layered layout still works
    back = {v: k for k, v in names.items()}
    pos = {}
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "node" and f[1] in back:
            pos[back[f[1]]] = (float(f[2]), float(f[3]))
    if len(pos) != len(g):
        return None
    top = max(y for _, y in pos.values())
    # dot's inches, y up -> layer units (one rank = 0.9 in), y down, like _layered
    return {n: (x / 1.3, (top - y) / 0.9) for n, (x, y) in pos.items()}


def _dot_escape(s: Any) -> str:
    return str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def graph_json(g: nx.DiGraph, pos: Optional[dict] = None) -> dict[str, Any]:
    """Nodes with positions and colours, edges with labels: what report.html draws."""
    pos = pos if pos is not None else layout(g)
    return {"nodes": [{"id": n, "label": str(d.get("label", n)), "x": round(pos[n][0], 3),
                       "y": round(pos[n][1], 3), "color": name_color(str(d.get("op", "")))}
                      for n, d in g.nodes(data=True)],
            "edges": [{"u": u, "v": v, "label": str(d.get("label", "")),
                       "color": name_color(str(d["op"])) if "op" in d else "#555555"}
                      for u, v, d in g.edges(data=True)]}


# --- picture ------------------------------------------------------------------------------
def draw_graph(g: nx.DiGraph, path: str | Path, title: str = "", pos: Optional[dict] = None) -> Path:
    """Draw ``g`` into ``path`` (format from the suffix: .png, .svg, .pdf)."""
    from matplotlib.figure import Figure
    pos = pos if pos is not None else layout(g)
    xs = [p[0] for p in pos.values()] or [0.0]
    ys = [p[1] for p in pos.values()] or [0.0]
    width = min(40.0, 1.7 * (max(xs) - min(xs)) + 2.5)
    height = min(80.0, 0.9 * (max(ys) - min(ys)) + 1.6)
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 0.94 if title else 1))
    ax.set_xlim(min(xs) - 0.9, max(xs) + 0.9)
    ax.set_ylim(max(ys) + 0.6, min(ys) - 0.6)  # inputs on top
    ax.axis("off")
    boxes = {}
    for n, d in g.nodes(data=True):
        colour = name_color(str(d.get("op", "")))
        boxes[n] = ax.text(*pos[n], str(d.get("label", n)), ha="center", va="center", fontsize=8,
                           zorder=3, bbox={"boxstyle": "round,pad=0.3", "fc": _tint(colour), "ec": colour})
    for u, v, d in g.edges(data=True):
        span = abs(pos[v][1] - pos[u][1])
        rad = 0.0 if span <= 1.01 else 0.25  # long edges bend around the layers they skip
        colour = name_color(str(d["op"])) if "op" in d else "#555555"
        ax.annotate("", xy=pos[v], xytext=pos[u], zorder=2,
                    arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.2,
                                "connectionstyle": f"arc3,rad={rad}",
                                "patchA": boxes[u].get_bbox_patch(), "patchB": boxes[v].get_bbox_patch()})
        if d.get("label"):
            mx, my = (pos[u][0] + pos[v][0]) / 2, (pos[u][1] + pos[v][1]) / 2
            if rad:  # the arc's midpoint lies off the straight line
                mx, my = mx + rad * (pos[v][1] - pos[u][1]) / 2, my - rad * (pos[v][0] - pos[u][0]) / 2
            ax.text(mx, my, d["label"], fontsize=7, ha="center", va="center", color=colour, zorder=4,
                    bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.85})
    if title:
        fig.suptitle(title, fontsize=9)
    path = Path(path)
    fig.savefig(path, dpi=150)
    return path


def _tint(hex_colour: str, amount: float = 0.8) -> tuple[float, float, float]:
    """The colour mixed with white: a light box fill that keeps black text readable."""
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return tuple(c + (1 - c) * amount for c in (r, g, b))
