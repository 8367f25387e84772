"""evonas: evolutionary neural architecture search.

Pipeline: genome -> DAG IR (``evonas.graph``) -> module (``evonas.compile``) ->
fitness (``evonas.evaluate``) -> lineage (``evonas.store``).
"""
from .errors import (ConfigError, EvonasError, FieldError, GenomeError, GraphError,
                     PluginError, RegistryError)
from .genome import (GENOMES, Genome, genome_from_dict, genome_type, load_genome,
                     register_genome, save_genome)
from .operators import register_crossover, register_mutation

__version__ = "0.1.0"

_API = ("search", "resume", "load_run", "Run")


def __getattr__(name: str):
    """``evonas.search`` and friends load on first use: ``import evonas`` stays
    light (no torch, no pandas) for the genome and lineage layers."""
    if name in _API:
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'evonas' has no attribute {name!r}")

__all__ = ["ConfigError", "EvonasError", "FieldError", "GenomeError", "GraphError",
           "PluginError", "RegistryError", "GENOMES", "Genome", "genome_from_dict",
           "genome_type", "load_genome", "register_genome", "save_genome",
           "register_crossover", "register_mutation", "__version__", *_API]
