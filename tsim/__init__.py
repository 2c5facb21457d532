"""tsim: teacher-student simulations of linear mode connectivity modulo permutation.

Public names only. Layers (each imports only those below it; docs/architecture.md):
face (tsim.config, tsim.cli, tsim.results) -> tsim.sweep -> tsim.studies -> tsim.alignment ->
core (network, teacher, data, losses, train, match, barriers, sparsity, fit) -> tsim._kernels
(every Numba kernel, private). torch lives only in tsim.deep, beside tsim.alignment.
"""
from . import alignment  # registers the alignment methods with tsim.barriers (barrier(align=...))
from .alignment import (AlignResult, activation_matching, align, average_barrier, barrier_aware_matching,
                        barrier_optimal_perm,
                        functional_recovery, l2_distance, merge_many, merge_to_reference, pad_pair,
                        planted_recovery, prune_sequence, pruning_barriers, sequence_barriers, simplex_barrier,
                        spectral_report, strong_connectivity, svd_alignment, teacher_agreement, teacher_alignment,
                        trajectory_barriers)
from .barriers import BarrierResult, barrier
from .data import labels, sample_inputs
from .errors import ConfigError
from .fit import PowerLawFit, fit_power_law
from .losses import (empirical_loss, hessian_max_eig, kernel_matrix, path_losses, population_grad,
                     population_loss, population_loss_grad, teacher_energy)
from .match import (Assignment, TieReport, assignment_ties, certificate_holds, solve_assignment, solve_lap,
                    weight_assignment, weight_matching, weight_matching_ties)
from .network import TwoLayer, init_ensemble
from .sparsity import effective_neurons, neuron_magnitudes, sparse_fraction
from .teacher import Teacher
from .train import TrainResult, train_gd, train_population, train_sgd

__version__ = "0.2.0"

__all__ = [
    "Assignment", "ConfigError", "PowerLawFit", "barrier_aware_matching", "barrier_optimal_perm",
    "certificate_holds", "fit_power_law", "solve_lap", "weight_assignment",
    "BarrierResult", "TieReport", "Teacher", "TrainResult", "TwoLayer", "assignment_ties", "barrier",
    "effective_neurons", "empirical_loss", "hessian_max_eig", "init_ensemble", "kernel_matrix", "labels",
    "neuron_magnitudes", "path_losses", "population_grad", "population_loss", "population_loss_grad",
    "sample_inputs", "solve_assignment", "sparse_fraction", "teacher_energy", "train_gd",
    "train_population", "train_sgd", "weight_matching", "weight_matching_ties",
    # alignment toolbox (tsim.alignment)
    "AlignResult", "activation_matching", "align", "alignment", "average_barrier", "functional_recovery",
    "l2_distance", "merge_many", "merge_to_reference", "pad_pair", "planted_recovery", "prune_sequence",
    "pruning_barriers", "sequence_barriers", "simplex_barrier", "spectral_report", "strong_connectivity",
    "svd_alignment", "teacher_agreement", "teacher_alignment", "trajectory_barriers",
]
