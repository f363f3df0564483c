"""Evolution strategies over flat parameter vectors.

:mod:`~hebbjax.es.base` writes down the contract every strategy keeps;
:mod:`~hebbjax.es.registry` is the table of strategies ``es.strategy`` names: OpenAI-ES
(:mod:`~hebbjax.es.open_es`, ``"openai"``) and any distribution-based evosax strategy
(:mod:`~hebbjax.es.evosax_adapter`, ``"evosax:NAME"``). How members are evaluated
(:mod:`~hebbjax.es.evaluation`), fitness shaping (:mod:`~hebbjax.es.fitness`), perturbations
(:mod:`~hebbjax.es.noise`) and the optimizer of the mean (:mod:`~hebbjax.es.optimizers`) are
separate pieces.
"""

from hebbjax.es.base import EvolutionStrategy, StrategyEntry
from hebbjax.es.evaluation import Evaluation, EvaluationSettings, evaluate_members
from hebbjax.es.fitness import (averaged_ranks, centered_ranks, sanitise, shape_fitness,
                                standardised_ranks, z_score)
from hebbjax.es.open_es import OpenES, OpenESState, Population
from hebbjax.es.registry import STRATEGIES, build, lookup

__all__ = [
    "Evaluation", "EvaluationSettings", "EvolutionStrategy", "OpenES", "OpenESState",
    "Population", "STRATEGIES", "StrategyEntry", "averaged_ranks", "build", "centered_ranks",
    "evaluate_members", "lookup", "sanitise", "shape_fitness", "standardised_ranks", "z_score",
]
