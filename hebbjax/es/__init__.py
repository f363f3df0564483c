"""Evolution strategies over flat parameter vectors.

:mod:`~hebbjax.es.base` writes down the contract every strategy keeps and the registry that
maps ``es.strategy`` names to them; :mod:`~hebbjax.es.open_es` (OpenAI-ES, ``"openai"``) and
:mod:`~hebbjax.es.evosax_adapter` (any distribution-based evosax strategy, ``"evosax:NAME"``)
register themselves on import. Fitness shaping (:mod:`~hebbjax.es.fitness`) and perturbations
(:mod:`~hebbjax.es.noise`) are separate pieces.
"""

from hebbjax.es import open_es  # noqa: F401  (registers "openai")
from hebbjax.es import evosax_adapter  # noqa: F401,I001  (registers "evosax:NAME")
from hebbjax.es.base import (Evaluation, EvolutionStrategy, StrategyEntry, build, entries,
                             evaluate_members, lookup, register)
from hebbjax.es.fitness import (averaged_ranks, centered_ranks, sanitise, shape_fitness,
                                standardised_ranks, z_score)
from hebbjax.es.open_es import OpenES, OpenESState, Population

__all__ = [
    "Evaluation", "EvolutionStrategy", "OpenES", "OpenESState", "Population", "StrategyEntry",
    "averaged_ranks", "build", "centered_ranks", "entries", "evaluate_members", "lookup",
    "register", "sanitise", "shape_fitness", "standardised_ranks", "z_score",
]
