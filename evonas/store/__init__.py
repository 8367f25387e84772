"""Persistence of a run: lineage, checkpoints, per-individual weights (safetensors)."""
from .lineage import COLUMNS, LineageWriter, read_records  # noqa: E402
from .rundir import RunPaths, create_run_dir, load_state, record_resume, save_state  # noqa: E402
