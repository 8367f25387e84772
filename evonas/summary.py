"""The summary of one run (the table ``evonas.report`` prints and report.html and
comparisons show), read from its lineage, manifest and config."""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from .errors import EvonasError
from .io import read_json
from .lineage import ancestry
from .store.rundir import RunPaths


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


def load_config(root: Path) -> dict[str, Any]:
    try:
        cfg = read_json(RunPaths(root).config, str(root))
    except EvonasError:
        return {}
    from .config_sections import flat_view
    cfg = flat_view(cfg)  # sectioned, or flat from before sections: read as flat keys
    return cfg if isinstance(cfg, dict) else {}
