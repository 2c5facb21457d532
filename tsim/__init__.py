"""tsim: teacher-student simulations of linear mode connectivity modulo permutation.

Public names only; numba kernels are private (tsim._kernels), torch lives in tsim.deep.
"""
from .align import (AlignResult, activation_matching, align, functional_recovery, pad_pair, planted_recovery,
                    teacher_agreement, teacher_alignment)
from .barrier import BarrierResult, barrier
from .brute import barrier_optimal_perm, optimal_permutation
from .data import labels, sample_inputs
from .fit import PowerLawFit, fit_power_law
from .losses import (empirical_loss, hessian_max_eig, kernel_matrix, path_losses, population_grad,
                     population_loss, population_loss_grad, teacher_energy)
from .multi import (average_barrier, merge_many, merge_to_reference, simplex_barrier,
                    strong_connectivity)
from .match import TieReport, assignment_ties, solve_assignment, weight_matching, weight_matching_ties
from .network import TwoLayer, init_ensemble
from .sequences import prune_sequence, pruning_barriers, sequence_barriers, trajectory_barriers
from .sparsity import effective_neurons, neuron_magnitudes, sparse_fraction
from .spectral import l2_distance, spectral_report, svd_alignment
from .teacher import Teacher
from .train import TrainResult, train_gd, train_population, train_sgd

__version__ = "0.1.0"

__all__ = [
    "PowerLawFit", "barrier_optimal_perm", "fit_power_law", "optimal_permutation",
    "BarrierResult", "TieReport", "Teacher", "TrainResult", "TwoLayer", "assignment_ties", "barrier",
    "effective_neurons", "empirical_loss", "hessian_max_eig", "init_ensemble", "kernel_matrix", "labels",
    "neuron_magnitudes", "path_losses", "population_grad", "population_loss", "population_loss_grad",
    "sample_inputs", "solve_assignment", "sparse_fraction", "teacher_energy", "train_gd",
    "train_population", "train_sgd", "weight_matching", "weight_matching_ties",
    # alignment toolbox
    "AlignResult", "activation_matching", "align", "average_barrier", "functional_recovery", "l2_distance",
    "merge_many", "merge_to_reference", "pad_pair", "planted_recovery", "prune_sequence", "pruning_barriers",
    "sequence_barriers", "simplex_barrier", "spectral_report", "strong_connectivity", "svd_alignment",
    "teacher_agreement", "teacher_alignment", "trajectory_barriers",
]
