"""The registered evaluation backends by name (``--backend``): the slot-pool core
is ``pool``; each transport (``workers``: local processes, ``ray_backend``: Ray
actors) registers itself in ``pool.BACKENDS`` when imported, which this module does."""
from __future__ import annotations

from . import ray_backend, workers  # noqa: F401  (register 'local' and 'ray')
from .pool import BACKENDS


def backend(name: str) -> type:
    """The backend class ``name``; RegistryError naming the known ones otherwise."""
    return BACKENDS.get(name)
