"""Compare runs per config over seeds: ``python -m evonas.report RUN RUN ...``.

Runs are grouped by their config minus the keys that do not change the search
(``IGNORED``: seed, names, paths, hardware). Per group: mean ± std (sample std,
ddof=1) of the best fitness over its runs, and anytime curves: the running best
against evaluations (and against wall-clock seconds when every run of the group
has lineage timestamps), mean with a ±1 std band and the min-max range.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from .lineage import load_lineage

IGNORED = ("seed", "name", "run_dir", "devices", "workers", "trials_per_device", "backend",
           "backend_args", "ray_address", "data_root", "benchmark_table", "time_budget", "trial_timeout")


def config_key(cfg: dict) -> str:
    return json.dumps({k: v for k, v in sorted(cfg.items()) if k not in IGNORED}, sort_keys=True, default=str)


def _labels(keys: list[str]) -> dict[str, str]:
    """A short name per group: only the config keys whose values differ between groups."""
    dicts = {k: json.loads(k) for k in keys}
    fields = sorted({f for d in dicts.values() for f in d})
    differ = [f for f in fields if len({json.dumps(d.get(f), sort_keys=True) for d in dicts.values()}) > 1]
    return {k: ", ".join(f"{f}={json.dumps(d.get(f))}" for f in differ) or "all runs" for k, d in dicts.items()}


def run_table(roots: Sequence[Path]) -> pd.DataFrame:
    """One row per run: group key, seed, best fitness, evaluations, and its curves."""
    from .summary import load_config
    rows = []
    for root in roots:
        cfg = load_config(root)
        df = load_lineage(root / "lineage.csv").sort_values("birth")
        alive = df["fitness"].where(df["status"] != "failed")
        rows.append({"run": str(root), "key": config_key(cfg), "seed": cfg.get("seed"),
                     "best": float(alive.max()) if alive.notna().any() else np.nan,
                     "individuals": len(df), "curve": alive.cummax().ffill().to_numpy(),
                     "time": df["finished_s"].to_numpy(dtype=float) if "finished_s" in df.columns else None})
    out = pd.DataFrame(rows)
    out["config"] = out["key"].map(_labels(list(out["key"].unique())))
    return out


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    g = runs.groupby("config", sort=True)
    return pd.DataFrame({"runs": g.size(), "seeds": g["seed"].apply(lambda s: ",".join(map(str, s))),
                         "best mean": g["best"].mean(), "best std": g["best"].std(ddof=1),
                         "best min": g["best"].min(), "best max": g["best"].max()})


def band(curves: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    """mean, std, min, max over runs at each evaluation, up to the shortest run
    (beyond it a mean would silently mix fewer seeds)."""
    n = min(len(c) for c in curves)
    m = np.vstack([c[:n] for c in curves])
    std = m.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(n)
    return m.mean(axis=0), std, m.min(axis=0), m.max(axis=0)


def time_band(curves: list[np.ndarray], times: list[np.ndarray], points: int = 200) -> tuple[np.ndarray, ...]:
    """As ``band``, on a common wall-clock grid (each run's best at time t: a step function)."""
    end = min(np.nanmax(t) for t in times)
    grid = np.linspace(0.0, end, points)
    vals = []
    for c, t in zip(curves, times):
        idx = np.searchsorted(np.nan_to_num(t, nan=np.inf), grid, side="right") - 1
        vals.append(np.where(idx >= 0, c[np.clip(idx, 0, None)], np.nan))
    m = np.vstack(vals)
    return (grid, np.nanmean(m, axis=0), np.nanstd(m, axis=0, ddof=1 if len(vals) > 1 else 0))


def comparison_figure(runs: pd.DataFrame, ylabel: str):
    from matplotlib.figure import Figure
    from .draw import name_color
    timed = all(t is not None and np.isfinite(t).any() for t in runs["time"])
    fig = Figure(figsize=(12 if timed else 7.5, 4.8), layout="constrained")
    axes = fig.subplots(1, 2 if timed else 1, sharey=True, squeeze=False)[0]
    for config, grp in runs.groupby("config", sort=True):
        colour = name_color(config)
        mean, std, lo, hi = band(list(grp["curve"]))
        x = np.arange(len(mean))
        axes[0].plot(x, mean, color=colour, lw=1.6, label=f"{config} (n={len(grp)})")
        axes[0].fill_between(x, mean - std, mean + std, color=colour, alpha=0.25, lw=0)
        axes[0].fill_between(x, lo, hi, color=colour, alpha=0.08, lw=0)
        if timed:
            grid, tm, ts = time_band(list(grp["curve"]), list(grp["time"]))
            axes[1].plot(grid, tm, color=colour, lw=1.6)
            axes[1].fill_between(grid, tm - ts, tm + ts, color=colour, alpha=0.25, lw=0)
    axes[0].set_xlabel("evaluations (individuals completed)")
    axes[0].set_ylabel(f"best so far: {ylabel}")
    if timed:
        axes[1].set_xlabel("wall-clock time (s since start)")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("anytime performance: mean over seeds, band ±1 std, light band min-max", fontsize=10)
    return fig


def compare(roots: Sequence[Path], output: Optional[Path] = None, plots: bool = True,
            as_json: bool = False) -> str:
    """The comparison text; writes ``comparison.csv`` (+ ``.png``/``.svg`` with
    ``plots``) into ``output`` (default: the first run's parent directory)."""
    from .errors import ConfigError
    from .plot import fitness_label, save
    from .summary import load_config
    out_dir = Path(output) if output is not None else Path(roots[0]).resolve().parent
    if not out_dir.is_dir():
        raise ConfigError("report", "output", str(out_dir), "is not a directory")
    runs = run_table(roots)
    table = summary_table(runs)
    if as_json:
        return table.reset_index().to_json(orient="records", indent=2)
    runs.drop(columns=["curve", "time", "key"]).to_csv(out_dir / "comparison.csv", index=False)
    text = table.to_string(float_format=lambda v: f"{v:.4g}")
    text += f"\nwrote {out_dir / 'comparison.csv'}"
    if plots:
        ylabel = fitness_label(load_config(Path(roots[0]))).replace("\n", " ")
        for p in save(comparison_figure(runs, ylabel), out_dir / "comparison"):
            text += f"\nwrote {p}"
    return text
