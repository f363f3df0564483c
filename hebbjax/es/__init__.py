"""Evolution strategies over flat parameter vectors."""

from hebbjax.es.fitness import centered_ranks, sanitise, shape_fitness, z_score
from hebbjax.es.open_es import Evaluation, OpenES, OpenESState, Population

__all__ = [
    "Evaluation", "OpenES", "OpenESState", "Population",
    "centered_ranks", "sanitise", "shape_fitness", "z_score",
]
