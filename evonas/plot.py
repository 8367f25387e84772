"""Pictures with Pillow only (matplotlib is not a dependency).

* ``draw_dag``: a layered drawing of a DAG (layer = longest path from the
  sources, order within a layer by the mean position of the inputs).
* ``fitness_plot``: fitness of every individual against its completion order
  (``birth``), one colour per operator, and the running best as a line.
* ``ancestry_plot``: the ancestors of one individual (every parent, so the
  second parents of crossovers too) as a tree, oldest on top, boxes coloured
  by operator, the first-parent path drawn bold.
* ``pareto_plot``: fitness against cost (params and FLOPs, log scale) of every
  ok individual, the non-dominated front highlighted (nsga2 runs).
"""
from __future__ import annotations

import math
from typing import Mapping

import networkx as nx
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
           "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
MAX_SIDE = 12000  # pixels; larger drawings are shrunk to keep PNGs reasonable


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def _layers(g: nx.DiGraph) -> list[list]:
    """Nodes grouped by longest-path depth, each layer ordered by the mean index
    of its inputs in the previous layers (one barycentre sweep: fewer crossings)."""
    depth: dict = {}
    for n in nx.topological_sort(g):
        depth[n] = max((depth[p] + 1 for p in g.predecessors(n)), default=0)
    layers: list[list] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    pos: dict = {}
    for n in nx.topological_sort(g):
        layers[depth[n]].append(n)
    for layer in layers:
        layer.sort(key=lambda n: (sum(pos.get(p, 0) for p in g.predecessors(n))
                                  / max(1, g.in_degree(n))))
        for i, n in enumerate(layer):
            pos[n] = i
    return layers


def draw_dag(g: nx.DiGraph, labels: Mapping, fills: Mapping | None = None,
             bold: set | None = None) -> Image.Image:
    """A white-background RGB drawing: boxes with ``labels[n]`` (multi-line) and
    arrows from inputs to consumers, inputs on top. ``fills``: box colour per node
    (default light blue); ``bold``: edges ``(u, v)`` drawn thick and black."""
    fills, bold = fills or {}, bold or set()
    font, probe = _font(), ImageDraw.Draw(Image.new("RGB", (1, 1)))
    size = {n: probe.multiline_textbbox((0, 0), str(labels[n]), font=font) for n in g}
    bw = max((b[2] - b[0] for b in size.values()), default=40) + 12
    bh = max((b[3] - b[1] for b in size.values()), default=12) + 10
    gx, gy = 16, 28
    layers = _layers(g)
    width = max((len(l) for l in layers), default=1) * (bw + gx) + gx
    height = len(layers) * (bh + gy) + gy
    img = Image.new("RGB", (max(width, 120), max(height, 60)), "white")
    d = ImageDraw.Draw(img)
    xy: dict = {}
    for r, layer in enumerate(layers):
        x0 = (width - len(layer) * (bw + gx) + gx) // 2
        for i, n in enumerate(layer):
            xy[n] = (x0 + i * (bw + gx), gy + r * (bh + gy))
    for u, v in g.edges():
        (ux, uy), (vx, vy) = xy[u], xy[v]
        a, b = (ux + bw // 2, uy + bh), (vx + bw // 2, vy)
        thick = (u, v) in bold
        d.line([a, b], fill="black" if thick else "#555555", width=3 if thick else 1)
        _arrowhead(d, a, b)
    for n, (x, y) in xy.items():
        d.rectangle([x, y, x + bw, y + bh], outline="black", fill=fills.get(n, "#eef3fb"))
        d.multiline_text((x + 6, y + 5), str(labels[n]), fill="black", font=font)
    return _shrink(img)


def _arrowhead(d: ImageDraw.ImageDraw, a: tuple, b: tuple, size: float = 6.0) -> None:
    ang = math.atan2(b[1] - a[1], b[0] - a[0])
    left = (b[0] - size * math.cos(ang - 0.4), b[1] - size * math.sin(ang - 0.4))
    right = (b[0] - size * math.cos(ang + 0.4), b[1] - size * math.sin(ang + 0.4))
    d.polygon([b, left, right], fill="#555555")


def _shrink(img: Image.Image) -> Image.Image:
    scale = MAX_SIDE / max(img.size)
    if scale >= 1:
        return img
    return img.resize((max(1, int(img.width * scale)), max(1, int(img.height * scale))))


def fitness_plot(df: pd.DataFrame, width: int = 900, height: int = 500) -> Image.Image:
    """Scatter of ``fitness`` over ``birth`` coloured by ``operator`` (legend on
    the right) with the running best of ok individuals as a black step line."""
    img = Image.new("RGB", (width, height), "white")
    d, font = ImageDraw.Draw(img), _font()
    left, right, top, bottom = 60, width - 170, 20, height - 40
    pts = df[df["fitness"].notna()].sort_values("birth")
    d.rectangle([left, top, right, bottom], outline="black")
    d.text((left, bottom + 18), "evaluation (birth)", fill="black", font=font)
    d.text((4, (top + bottom) // 2), "fitness", fill="black", font=font)
    if pts.empty:
        d.text((left + 10, top + 10), "no evaluated individual yet", fill="black", font=font)
        return img
    x0, x1 = float(df["birth"].min()), float(max(df["birth"].max(), df["birth"].min() + 1))
    y0, y1 = float(pts["fitness"].min()), float(pts["fitness"].max())
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 1, y1 + 1

    def px(b: float, f: float) -> tuple[float, float]:
        return (left + (b - x0) / (x1 - x0) * (right - left), bottom - (f - y0) / (y1 - y0) * (bottom - top))

    for v, anchor in ((y0, bottom), (y1, top)):
        d.text((4, anchor - 6), f"{v:.4g}", fill="black", font=font)
    d.text((left, bottom + 4), f"{x0:.0f}", fill="black", font=font)
    d.text((right - 30, bottom + 4), f"{x1:.0f}", fill="black", font=font)
    ops = sorted(pts["operator"].astype(str).unique())
    color = {op: PALETTE[i % len(PALETTE)] for i, op in enumerate(ops)}
    for b, f, op in zip(pts["birth"], pts["fitness"], pts["operator"].astype(str)):
        x, y = px(b, f)
        d.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=color[op])
    ok = pts[pts["status"] == "ok"]
    if not ok.empty:
        best = ok["fitness"].cummax()
        line, prev = [], None  # a step line: horizontal until the next improvement
        for b, f in zip(ok["birth"], best):
            if prev is not None:
                line.append(px(b, prev))
            line.append(px(b, f))
            prev = f
        line.append(px(x1, prev))
        d.line(line, fill="black", width=2)
    for i, op in enumerate(ops[:20]):
        y = top + 14 * i
        d.rectangle([right + 12, y + 2, right + 20, y + 10], fill=color[op])
        d.text((right + 26, y), op[:22], fill="black", font=font)
    d.line([right + 12, top + 14 * min(len(ops), 20) + 6, right + 20, top + 14 * min(len(ops), 20) + 6],
           fill="black", width=2)
    d.text((right + 26, top + 14 * min(len(ops), 20)), "running best", fill="black", font=font)
    return img


def _light(hex_color: str, amount: float = 0.6) -> str:
    """``hex_color`` mixed with white (0 = unchanged, 1 = white): readable box fills."""
    rgb = [int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{int(c + (255 - c) * amount):02x}" for c in rgb)


def ancestry_graph(df: pd.DataFrame, individual: int, max_nodes: int = 120) -> nx.DiGraph:
    """Ancestors of ``individual`` (following every parent id) as a DiGraph with
    edges parent -> child. When there are more than ``max_nodes`` ancestors, the
    closest ones (fewest generations away, breadth first) are kept. Node
    attributes: ``operator``, ``fitness`` (NaN when failed), ``status``."""
    by_id = df.set_index("id", drop=False)
    if individual not in by_id.index:
        raise KeyError(f"individual {individual} is not in the lineage")
    g, frontier = nx.DiGraph(), [individual]
    g.add_node(individual)
    while frontier and g.number_of_nodes() < max_nodes:
        nxt = []
        for child in frontier:
            for p in by_id.at[child, "parent_ids"]:
                if p not in by_id.index or g.number_of_nodes() >= max_nodes and p not in g:
                    continue
                if p not in g:
                    nxt.append(p)
                g.add_edge(p, child)
        frontier = nxt
    for n in g:
        row = by_id.loc[n]
        g.nodes[n].update(operator=str(row["operator"]), fitness=float(row["fitness"]),
                          status=str(row["status"]))
    return g


def ancestry_plot(df: pd.DataFrame, individual: int, max_nodes: int = 120) -> Image.Image:
    """The ancestry tree of ``individual`` (see ``ancestry_graph``): one box per
    ancestor with its id, operator, status and fitness, filled by operator, the
    first-parent path (``evonas.lineage.ancestry``) in bold."""
    g = ancestry_graph(df, individual, max_nodes)
    ops = sorted({g.nodes[n]["operator"] for n in g})
    color = {op: _light(PALETTE[i % len(PALETTE)]) for i, op in enumerate(ops)}
    labels, fills = {}, {}
    for n in g:
        a = g.nodes[n]
        fit = "-" if math.isnan(a["fitness"]) else f"{a['fitness']:.4g}"
        labels[n] = f"#{n} {a['operator'][:18]}\n{a['status']} {fit}" + ("\n(best)" if n == individual else "")
        fills[n] = color[a["operator"]]
    by_id = df.set_index("id")
    bold, cur = set(), individual
    while cur in g and len(by_id.at[cur, "parent_ids"]):
        p = by_id.at[cur, "parent_ids"][0]
        if p not in g or (p, cur) in bold:
            break
        bold.add((p, cur))
        cur = p
    return draw_dag(g, labels, fills, bold)


def pareto_front(df: pd.DataFrame, cost: str) -> pd.DataFrame:
    """The ok individuals not dominated in (higher ``fitness``, lower ``cost``),
    sorted by ``cost``; an individual equal to a front member in both is left out."""
    pts = df[(df["status"] == "ok") & df["fitness"].notna() & df[cost].notna()]
    pts = pts.sort_values([cost, "fitness"], ascending=[True, False], kind="stable")
    keep, best = [], -math.inf
    for i, f in zip(pts.index, pts["fitness"]):
        if f > best:
            keep.append(i)
            best = f
    return pts.loc[keep]


def pareto_plot(df: pd.DataFrame, costs: tuple = ("params", "flops"), width: int = 1000,
                height: int = 460) -> Image.Image:
    """One panel per column in ``costs``: fitness of every ok individual against the
    cost on a log10 axis (grey), the Pareto front in red joined by a step line."""
    img = Image.new("RGB", (width, height), "white")
    d, font = ImageDraw.Draw(img), _font()
    pw = width // len(costs)
    for k, cost in enumerate(costs):
        _pareto_panel(d, font, df, cost, (k * pw + 60, 20, (k + 1) * pw - 20, height - 40))
    return img


def _pareto_panel(d: ImageDraw.ImageDraw, font, df: pd.DataFrame, cost: str, box: tuple) -> None:
    left, top, right, bottom = box
    d.rectangle(box, outline="black")
    d.text((left, bottom + 18), f"{cost} (log scale)", fill="black", font=font)
    d.text((left - 56, (top + bottom) // 2), "fitness", fill="black", font=font)
    pts = df[(df["status"] == "ok") & df["fitness"].notna() & df[cost].notna()]
    pts = pts[pts[cost].astype("float64") > 0]
    if pts.empty:
        d.text((left + 10, top + 10), f"no ok individual with {cost}", fill="black", font=font)
        return
    xs = pts[cost].astype("float64").map(math.log10)
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = float(pts["fitness"].min()), float(pts["fitness"].max())
    x0, x1 = (x0 - 0.5, x1 + 0.5) if x1 - x0 < 1e-9 else (x0, x1)
    y0, y1 = (y0 - 1, y1 + 1) if y1 - y0 < 1e-9 else (y0, y1)

    def px(c: float, f: float) -> tuple[float, float]:
        x = left + 8 + (math.log10(c) - x0) / (x1 - x0) * (right - left - 16)
        return x, bottom - 8 - (f - y0) / (y1 - y0) * (bottom - top - 16)

    for v, anchor in ((y0, bottom), (y1, top)):
        d.text((left - 56, anchor - 6), f"{v:.4g}", fill="black", font=font)
    d.text((left, bottom + 4), f"{10 ** x0:.3g}", fill="black", font=font)
    d.text((right - 50, bottom + 4), f"{10 ** x1:.3g}", fill="black", font=font)
    for c, f in zip(pts[cost].astype("float64"), pts["fitness"]):
        x, y = px(c, f)
        d.ellipse([x - 2, y - 2, x + 2, y + 2], fill="#9a9a9a")
    front = pareto_front(df, cost)
    front = front[front[cost].astype("float64") > 0]
    line = []
    for c, f in zip(front[cost].astype("float64"), front["fitness"]):
        if line:
            line.append((px(c, f)[0], line[-1][1]))
        line.append(px(c, f))
    if len(line) > 1:
        d.line(line, fill="#d62728", width=2)
    for x, y in line[::2]:  # every other vertex is a front point (the rest are steps)
        d.ellipse([x - 4, y - 4, x + 4, y + 4], fill="#d62728", outline="black")
    d.text((left + 8, top + 4), f"Pareto front: {len(front)} of {len(pts)} ok", fill="#d62728", font=font)
