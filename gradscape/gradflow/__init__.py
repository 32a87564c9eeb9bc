"""Gradient flow: the gradient transition matrix J_t = ∂s_t/∂s_{t−1} and its spectral radius."""

# Numeric J_t along real trajectories (per neuron, batched) and whole-network gradient flow
# (gradflow/jacobians.py, gradflow/network_flow.py); symbolic J from the neuron's own step on sympy
# and parameter maps of ρ (gradflow/symbolic.py, gradflow/parameter_map.py).
from gradscape.gradflow.jacobians import (
    NeuronSpectra,
    neuron_jacobians,
    record_trajectory,
    summarize,
    trajectory_spectra,
)
from gradscape.gradflow.network_flow import (
    backprop_gradients,
    gradient_norms,
    jacobian_gradients,
    jacobian_product,
    lyapunov_exponents,
)
from gradscape.gradflow.parameter_map import (
    divergence_boundary_curve,
    spectral_radius_map,
    unit_modulus_b,
)
from gradscape.gradflow.symbolic import (
    EigenResult,
    SymbolicJacobian,
    derivation_times,
    derive,
)

__all__ = [
    "neuron_jacobians", "record_trajectory", "trajectory_spectra", "summarize", "NeuronSpectra",
    "backprop_gradients", "jacobian_gradients", "jacobian_product", "gradient_norms", "lyapunov_exponents",
    "derive", "SymbolicJacobian", "EigenResult", "derivation_times",
    "spectral_radius_map", "divergence_boundary_curve", "unit_modulus_b",
]  # fmt: skip
