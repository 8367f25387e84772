"""Evolution: individuals, variation and selection (``toolbox``), strategies (one module each: ``aging``, ``aging_novel``,
``generational``, ``es``, ``random_search``, ``nsga2``) and the ``Search`` engine."""
from . import aging, aging_novel, es, generational, nao, nsga2, pvll, random_search, reinforce, surrogate  # noqa: F401  (register strategies)
from .base import STRATEGIES, Proposal, Strategy, register_strategy
from ..evaluate.base import INHERIT
from .dedup import DEDUP
from .record import COLUMNS as LINEAGE_COLUMNS
from .engine import Search
from .toolbox import Member, Variation, parse_mutation_spec

__all__ = ["STRATEGIES", "Proposal", "Strategy", "register_strategy", "DEDUP", "INHERIT",
           "LINEAGE_COLUMNS", "Search", "Member", "Variation", "parse_mutation_spec"]
