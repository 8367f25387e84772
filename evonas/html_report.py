"""``report.html``: one self-contained interactive page per run (no network needed).

The page is an HTML file with the run's data as one JSON block and hand-written
SVG + vanilla JavaScript (``evonas/assets/report.js``, inlined), so it opens from
a laptop, a mail attachment or a cluster's file browser alike. It shows:

* fitness against evaluations or wall-clock (hover: id, genome, operator,
  parents, params, lineage epochs; click: the cell drawing, the ancestry and the
  learning curve of that individual);
* operator statistics, the DEAP logbook (from ``journal.jsonl``), the config and,
  when present, the final stage's table (``final.csv``).

Learning curves come from ``curves.jsonl`` (one JSON object per trained trial:
``id``, ``train_loss``, ``val_acc`` per epoch), appended by the driver.
``Refresher`` rewrites the page at most every N seconds during a run.
"""
from __future__ import annotations

import html
import json
import math
import time
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from .io import atomic_write_text
from .lineage import load_lineage, operator_stats
from .store.rundir import RunPaths

CURVES = "curves.jsonl"
REPORT = "report.html"
FINAL = "final.csv"
MAX_DRAWINGS = 3000  # distinct architectures drawn into the page; keeps a 10k-lookup run's page small
_ASSET = Path(__file__).with_name("assets") / "report.js"


def read_curves(root: str | Path) -> dict[int, dict]:
    """``curves.jsonl`` by id (a torn or repeated line: the last good one wins)."""
    out: dict[int, dict] = {}
    path = Path(root) / CURVES
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
            out[int(rec["id"])] = {"train_loss": rec.get("train_loss", []), "val_acc": rec.get("val_acc", [])}
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a crash mid-write
    return out


def lineage_epochs(df: pd.DataFrame) -> dict[int, float]:
    """Epochs of training the weights received, inheritance included: the lineage's
    ``lineage_epochs`` column where written, else (older lineages) recomputed: an
    individual that inherited adds its own epochs to its first parent's."""
    if "lineage_epochs" in df.columns and df["lineage_epochs"].notna().any():
        return {int(i): (None if pd.isna(v) else float(v)) for i, v in zip(df["id"], df["lineage_epochs"])}
    own_col = "trained_epochs" if "trained_epochs" in df.columns else "epochs"
    out: dict[int, float] = {}
    # a parent always completes before its child is made, so birth order has parents first
    for r in df.sort_values("birth").to_dict("records"):
        own = 0.0 if pd.isna(r.get(own_col)) else float(r[own_col])
        parent = r["parent_ids"][0] if r["parent_ids"] else None
        inherited = r["inherited"] not in ("", "none") and parent in out
        out[int(r["id"])] = own + (out[parent] if inherited else 0.0)
    return out


def _drawings(df: pd.DataFrame, cfg: dict, cache: dict) -> dict[str, dict]:
    from .draw import cell_graph, graph_json
    from .genome import GENOMES
    from .genome.base import space_from_dict
    try:
        cls = GENOMES.get(cfg.get("genome", ""))
        space = space_from_dict(cls, dict(cfg.get("space") or {}))
    except Exception:  # a plug-in genome not loaded here: the page works without drawings
        return {}
    out = {}
    for s in df["genome"].drop_duplicates().head(MAX_DRAWINGS):
        if s not in cache:
            try:
                cache[s] = graph_json(cell_graph(cls.from_string(s, space)))
            except Exception as e:  # one unparsable genome must not cost the whole page
                cache[s] = {"error": f"{type(e).__name__}: {e}"}
        out[s] = cache[s]
    return out


def _records(df: pd.DataFrame) -> list[dict]:
    keep = [c for c in df.columns if c not in ("genome_type",)]
    out = []
    for r in df[keep].to_dict("records"):
        out.append({k: _clean(v) for k, v in r.items()})
    return out


def _clean(v: Any) -> Any:
    if isinstance(v, tuple):
        return list(v)
    if v is None or v is pd.NA or (isinstance(v, float) and not math.isfinite(v)):
        return None
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    return v


def _table_html(df: Optional[pd.DataFrame], cls: str) -> str:
    if df is None or not len(df):
        return "<p class='none'>none</p>"
    return df.to_html(classes=cls, border=0, float_format=lambda x: f"{x:.4g}", na_rep="-")


def build(root: str | Path, cache: Optional[dict] = None) -> str:
    """The page's HTML text (``cache``: drawings by genome string, reused by ``Refresher``)."""
    from .plot import fitness_label
    from .summary import load_config, summarize, wall_seconds
    root = Path(root)
    paths = RunPaths(root)
    df = load_lineage(paths.lineage)
    cfg = load_config(root)
    summary = summarize(df, wall_seconds(paths)) if len(df) else {}
    logbook = _logbook(paths)
    final = pd.read_csv(root / FINAL) if (root / FINAL).exists() else None
    lep = lineage_epochs(df) if len(df) else {}
    data = {"config": cfg, "summary": {k: _clean(v) for k, v in summary.items()},
            "rows": _records(df.assign(lineage_epochs=df["id"].map(lep))) if len(df) else [],
            "curves": {str(k): v for k, v in read_curves(root).items()},
            "drawings": _drawings(df, cfg, cache if cache is not None else {}) if len(df) else {},
            "ylabel": fitness_label(cfg).split("\n")[0], "fitness_is": fitness_label(cfg).replace("\n", " "),
            "report_column": cfg.get("report_column") if cfg.get("benchmark_table") else None,
            "generated": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    # every "<" as \u003c: no text in the data can end the script block or open a comment
    payload = json.dumps(data, allow_nan=False, default=str).replace("<", "\\u003c")
    sections = [("Operators", _table_html(operator_stats(df) if len(df) else None, "ops")),
                ("Logbook (population statistics)", _table_html(logbook, "logbook")),
                ("Final stage (final.csv)", _table_html(final, "final")),
                ("Config", _table_html(pd.DataFrame({"value": {k: json.dumps(v) for k, v in cfg.items()}}),
                                       "config"))]
    body = "\n".join(f"<section><h2>{html.escape(t)}</h2>{h}</section>" for t, h in sections)
    title = html.escape(f"evonas: {cfg.get('name', root.name)}")
    return (_TEMPLATE.replace("@TITLE@", title).replace("@TABLES@", body)
            .replace("@DATA@", payload).replace("@SCRIPT@", _ASSET.read_text()))


def _logbook(paths: RunPaths) -> Optional[pd.DataFrame]:
    from .store.journal import read_logbook
    try:
        rows = read_logbook(paths.journal)  # the engine journals each logbook record
    except Exception:  # unreadable journal: no logbook shown
        return None
    return pd.DataFrame(rows) if rows else None


def write_report(root: str | Path, cache: Optional[dict] = None) -> Path:
    """Write ``root/report.html`` atomically; returns its path."""
    path = Path(root) / REPORT
    atomic_write_text(path, build(root, cache))
    return path


class CurveWriter:
    """The driver's ``on_record`` part for learning curves: appends one line to
    ``curves.jsonl`` per record with a ``curve`` (trained trials). Flushed per line,
    not fsync'd: a curve lost in a power cut costs a plot, never the search."""

    def __init__(self, root: str | Path):
        self.path, self._fh = Path(root) / CURVES, None

    def __call__(self, record: dict) -> None:
        curve = record.get("curve")
        if not isinstance(curve, dict) or record.get("status") == "duplicate":
            return
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(json.dumps({"id": int(record["id"]), **curve}) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


class Refresher:
    """Called after every lineage row: rewrites report.html when ``every_s`` seconds
    passed since the last write (the page re-reads nothing itself: reload to update)."""

    def __init__(self, root: str | Path, every_s: float = 30.0):
        self.root, self.every_s = Path(root), every_s
        self.cache: dict = {}
        self.last = -math.inf

    def __call__(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last >= self.every_s:
            write_report(self.root, self.cache)
            self.last = time.monotonic()


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>@TITLE@</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}
#top{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}
#plot svg,#detail svg{background:#fff;border:1px solid #ddd}
#detail{min-width:380px;max-width:540px}#detail code{word-break:break-all}
#tip{position:fixed;pointer-events:none;background:#fffbe6;border:1px solid #aaa;padding:4px 6px;
font-size:12px;max-width:460px;display:none;word-break:break-all}
table{border-collapse:collapse;font-size:12px}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:right}
.legend span{display:inline-block;margin-right:1em;font-size:12px}
.sw{display:inline-block;width:10px;height:10px;border-radius:5px;margin-right:4px}
.none{color:#888}a.anc{cursor:pointer;color:#1f5fbf}
</style></head><body>
<h1>@TITLE@</h1>
<div id="summary"></div><p id="fitness-is"></p>
<p>x axis: <select id="xaxis"></select> &nbsp; hover a point for its details, click it for its cell,
ancestry and learning curve.</p>
<div id="top"><div id="plot"></div><div id="detail"><p class="none">click a point</p></div></div>
<div class="legend" id="legend"></div>
@TABLES@
<div id="tip"></div>
<script type="application/json" id="evonas-data">@DATA@</script>
<script>
@SCRIPT@
</script>
</body></html>
"""
