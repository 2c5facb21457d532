"""The alignment toolbox: methods behind one interface, and what is built on alignments.

- :mod:`~tsim.alignment.interface`: ``align(A, B, method)``, :class:`AlignResult`, the method
  registry :data:`METHODS` ("weight", "activation", "ste", "optimal", "barrier");
- :mod:`~tsim.alignment.activation`, :mod:`~tsim.alignment.ste`, :mod:`~tsim.alignment.exhaustive`,
  :mod:`~tsim.alignment.barrier_aware`: the methods beyond weight matching (which is core,
  :mod:`tsim.match`);
- :mod:`~tsim.alignment.truth`: planted / functional recovery and agreement with the teacher;
- :mod:`~tsim.alignment.multi`, :mod:`~tsim.alignment.sequences`, :mod:`~tsim.alignment.spectral`:
  k-network merges, trajectories and pruning sequences, singular vectors.

Importing this package registers every method with :data:`tsim.barriers.ALIGNERS`, so
``tsim.barrier(A, B, T, align=NAME)`` accepts each name without the core importing this package.
"""
from __future__ import annotations

from functools import partial

from ..barriers import register_aligner
from .activation import ActivationMoments, activation_correlation, activation_matching, population_correlation
from .barrier_aware import barrier_aware_matching, hall_slack, teacher_types, type_matching
from .exhaustive import barrier_optimal_perm
from .interface import METHODS, AlignResult, align, pad_pair
from .multi import average_barrier, merge_many, merge_to_reference, simplex_barrier, strong_connectivity
from .sequences import prune_sequence, pruning_barriers, sequence_barriers, trajectory_barriers
from .spectral import l2_distance, spectral_report, svd_alignment
from .ste import ste_matching
from .truth import functional_recovery, planted_recovery, teacher_agreement, teacher_alignment

for _name in METHODS:
    register_aligner(_name, partial(align, method=_name))

__all__ = ["METHODS", "ActivationMoments", "AlignResult", "activation_correlation", "activation_matching",
           "align", "average_barrier", "barrier_aware_matching", "barrier_optimal_perm", "functional_recovery",
           "hall_slack", "l2_distance", "merge_many",
           "merge_to_reference", "pad_pair", "planted_recovery", "population_correlation", "prune_sequence",
           "pruning_barriers", "sequence_barriers", "simplex_barrier", "spectral_report", "ste_matching",
           "strong_connectivity", "svd_alignment", "teacher_agreement", "teacher_alignment",
           "teacher_types", "trajectory_barriers", "type_matching"]
