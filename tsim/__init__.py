"""tsim: teacher-student simulations of linear mode connectivity modulo permutation.

Public names only; numba kernels are private (tsim._kernels), torch lives in tsim.deep.
"""
from .barrier import BarrierResult, barrier
from .data import labels, sample_inputs
from .losses import (empirical_loss, hessian_max_eig, kernel_matrix, path_losses, population_grad,
                     population_loss, population_loss_grad, teacher_energy)
from .match import TieReport, assignment_ties, solve_assignment, weight_matching, weight_matching_ties
from .network import TwoLayer, init_ensemble
from .sparsity import effective_neurons, neuron_magnitudes, sparse_fraction
from .teacher import Teacher
from .train import TrainResult, train_gd, train_population, train_sgd

__version__ = "0.1.0"

__all__ = [
    "BarrierResult", "TieReport", "Teacher", "TrainResult", "TwoLayer", "assignment_ties", "barrier",
    "effective_neurons", "empirical_loss", "hessian_max_eig", "init_ensemble", "kernel_matrix", "labels",
    "neuron_magnitudes", "path_losses", "population_grad", "population_loss", "population_loss_grad",
    "sample_inputs", "solve_assignment", "sparse_fraction", "teacher_energy", "train_gd",
    "train_population", "train_sgd", "weight_matching", "weight_matching_ties",
]
