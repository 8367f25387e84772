"""evonas: evolutionary neural architecture search.

Pipeline: genome -> DAG IR (``evonas.graph``) -> module (``evonas.compile``) ->
fitness (``evonas.evaluate``) -> lineage (``evonas.store``).

The public names below are loaded on first use (``__getattr__``), so that
``import evonas`` (and every ``import evonas.<module>``, which runs this file
first) costs nothing: a torch-free module stays torch-free, and a plug-in's
``import evonas`` does not load every genome before it needs one.
"""
from .version import __version__

_ERRORS = ("ConfigError", "EvonasError", "FieldError", "GenomeError", "GraphError", "PluginError",
           "RegistryError")
_GENOME = ("GENOMES", "Genome", "genome_from_dict", "genome_type", "load_genome", "register_genome",
           "save_genome")
_OPERATORS = ("register_crossover", "register_mutation")

_API = ("search", "resume", "load_run", "Run")  # the notebook API (evonas.api)

__all__ = [*_ERRORS, *_GENOME, *_OPERATORS, *_API, "__version__"]


def __getattr__(name: str):
    if name in _ERRORS:
        from . import errors as module
    elif name in _GENOME:
        from . import genome as module
    elif name in _OPERATORS:
        from . import operators as module
    elif name in _API:
        from . import api as module
    else:
        raise AttributeError(f"module 'evonas' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
