"""Per-individual weights as safetensors files (never pickle).

``WeightStore(root)`` keeps ``<root>/<id>.safetensors`` for every living
individual: ``save`` after training (atomic: tmp file + fsync + ``os.replace``, so
a crash leaves the old file or the new one, never half of one), ``load`` when a
child inherits (also after a restart), ``delete`` when the individual dies
(aging evolution pops it). Tensors are stored contiguous on CPU; the state dict
keys (``nodes.<node id>.<param>``, ``head.*``, BN running statistics and
``num_batches_tracked`` included) are kept as they are.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import torch

from ..errors import ConfigError
from ..tensor_io import load_weights_file, save_weights_file  # noqa: F401  (re-exported)

_ID = re.compile(r"^[A-Za-z0-9_-]+$")


class WeightStore:
    """Safetensors files of individuals under one directory (created on demand)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, individual_id: int | str) -> Path:
        """``<root>/<id>.safetensors``; ids are non-negative ints or [A-Za-z0-9_-]+."""
        if isinstance(individual_id, bool) or not (
                (isinstance(individual_id, int) and individual_id >= 0)
                or (isinstance(individual_id, str) and _ID.match(individual_id))):
            raise ConfigError("weight store", "individual id", individual_id,
                              "must be a non-negative integer or a string of [A-Za-z0-9_-]")
        return self.root / f"{individual_id}.safetensors"

    def save(self, individual_id: int | str, state: Mapping[str, torch.Tensor],
             metadata: Mapping[str, str] | None = None) -> Path:
        """Write ``state`` (a state dict) atomically; returns the file path."""
        return save_weights_file(self.path(individual_id), state, metadata)

    def load(self, individual_id: int | str) -> dict[str, torch.Tensor]:
        """The saved state dict (CPU tensors); ConfigError if absent or corrupt."""
        return load_weights_file(self.path(individual_id), "weight store")

    def exists(self, individual_id: int | str) -> bool:
        return self.path(individual_id).is_file()

    def delete(self, individual_id: int | str) -> bool:
        """Remove an individual's weights (it died); False if there were none."""
        try:
            self.path(individual_id).unlink()
            return True
        except FileNotFoundError:
            return False

    def ids(self) -> list[str]:
        """Ids with saved weights (as strings, sorted)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name[:-len(".safetensors")] for p in self.root.glob("*.safetensors"))
