"""Genome encodings. Importing this package registers every built-in type."""
from .base import (GENOMES, Genome, genome_from_dict, genome_type, load_genome,
                   register_genome, save_genome)
from . import nb201  # noqa: F401  (registers)
from . import tree  # noqa: F401  (registers)
from . import tree_ops  # noqa: F401  (registers the tree operators)
from . import genetic_cnn  # noqa: F401  (registers)
from . import cgp  # noqa: F401  (registers)
from . import cgp_ops  # noqa: F401  (registers the CGP operators)

__all__ = ["GENOMES", "Genome", "genome_from_dict", "genome_type", "load_genome",
           "register_genome", "save_genome"]
