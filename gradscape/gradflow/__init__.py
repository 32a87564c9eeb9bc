"""Gradient flow: the gradient transition matrix J_t = ∂s_t/∂s_{t−1} and its spectral radius."""

# Numeric J_t along real trajectories (per neuron, batched) and whole-network gradient flow
# (gradflow/jacobians.py, gradflow/network_flow.py, gradflow/lyapunov.py); one neuron at an
# evaluation point (gradflow/evaluation_point.py); symbolic J from the neuron's own step on sympy and
# parameter maps of ρ (gradflow/symbolic.py, gradflow/parameter_map.py); the whole `spectrum`
# analysis as one call (gradflow/job.py).
from gradscape.gradflow.evaluation_point import PointSpectrum, point_spectrum
from gradscape.gradflow.jacobians import (
    NeuronSpectra,
    checkpoint_spectra,
    neuron_jacobians,
    record_trajectory,
    summarize,
    trajectory_spectra,
)
from gradscape.gradflow.job import CheckpointSpec, MapSpec, SpectrumJob, SpectrumResult, run_spectrum
from gradscape.gradflow.lyapunov import LyapunovResult, lyapunov_spectrum
from gradscape.gradflow.network_flow import (
    backprop_gradients,
    checkpoint_gradient_flow,
    gradient_norms,
    jacobian_gradients,
    jacobian_product,
    lyapunov_exponents,
)
from gradscape.gradflow.neuron_facts import membrane_indices, parameter_defaults, parameter_values
from gradscape.gradflow.parameter_map import (
    divergence_boundary_curve,
    spectral_radius_map,
    unit_modulus_b,
)
from gradscape.gradflow.symbolic import (
    SymbolicEigenvalues,
    SymbolicJacobian,
    derivation_times,
    derive,
)

__all__ = [
    "run_spectrum", "SpectrumJob", "SpectrumResult", "CheckpointSpec", "MapSpec",
    "point_spectrum", "PointSpectrum", "checkpoint_spectra", "checkpoint_gradient_flow",
    "membrane_indices", "parameter_defaults", "parameter_values",
    "neuron_jacobians", "record_trajectory", "trajectory_spectra", "summarize", "NeuronSpectra",
    "backprop_gradients", "jacobian_gradients", "jacobian_product", "gradient_norms", "lyapunov_exponents",
    "lyapunov_spectrum", "LyapunovResult",
    "derive", "SymbolicJacobian", "SymbolicEigenvalues", "derivation_times",
    "spectral_radius_map", "divergence_boundary_curve", "unit_modulus_b",
]  # fmt: skip
