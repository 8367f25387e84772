"""Pictures with Pillow only (matplotlib is not a dependency).

* ``draw_dag``: a layered drawing of a DAG (layer = longest path from the
  sources, order within a layer by the mean position of the inputs).
* ``fitness_plot``: fitness of every individual against its completion order
  (``birth``), one colour per operator, and the running best as a line.
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


def draw_dag(g: nx.DiGraph, labels: Mapping) -> Image.Image:
    """A white-background RGB drawing: boxes with ``labels[n]`` (multi-line) and
    arrows from inputs to consumers, inputs on top."""
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
        d.line([a, b], fill="#555555", width=1)
        _arrowhead(d, a, b)
    for n, (x, y) in xy.items():
        d.rectangle([x, y, x + bw, y + bh], outline="black", fill="#eef3fb")
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
        line = []
        for b, f in zip(ok["birth"], best):
            if line:
                line.append(px(b, line_f))
            line.append(px(b, f))
            line_f = f
        line.append(px(x1, line_f))
        d.line(line, fill="black", width=2)
    for i, op in enumerate(ops[:20]):
        y = top + 14 * i
        d.rectangle([right + 12, y + 2, right + 20, y + 10], fill=color[op])
        d.text((right + 26, y), op[:22], fill="black", font=font)
    d.line([right + 12, top + 14 * min(len(ops), 20) + 6, right + 20, top + 14 * min(len(ops), 20) + 6],
           fill="black", width=2)
    d.text((right + 26, top + 14 * min(len(ops), 20)), "running best", fill="black", font=font)
    return img
