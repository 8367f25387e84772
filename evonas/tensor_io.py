"""A network's state dict as a safetensors file (never pickle), written with the
one atomic write of ``evonas.io``. Tensors are stored contiguous on CPU; the
state-dict keys (``nodes.<node id>.<param>``, ``head.*``, BN running statistics
and ``num_batches_tracked`` included) are kept as they are.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import ConfigError
from .io import atomic_write_bytes


def save_weights_file(path: str | Path, state: Mapping[str, torch.Tensor],
                      metadata: Mapping[str, str] | None = None) -> Path:
    """Write a state dict to ``path`` as safetensors, atomically (CPU, contiguous)."""
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    data = st_save(tensors, metadata=dict(metadata) if metadata else None)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path


def load_weights_file(path: str | Path, where: str = "weights") -> dict[str, torch.Tensor]:
    """A state dict (CPU tensors) from a safetensors file; ConfigError naming the
    path if it is absent or not safetensors. Never unpickles anything."""
    path = Path(path)
    try:
        return st_load(path.read_bytes())
    except (FileNotFoundError, IsADirectoryError):  # the path in `where`: values are shortened
        raise ConfigError(f"{where} {path}", "file", path.name, "no such weights file") from None
    except (SafetensorError, ValueError, OSError) as e:
        raise ConfigError(f"{where} {path}", "file", path.name, f"unreadable, not a safetensors file ({e})") from None
