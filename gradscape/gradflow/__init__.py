"""Gradient flow: the gradient transition matrix J_t = ∂s_t/∂s_{t−1} and its spectral radius."""

# Symbolic J from the neuron's own step on sympy, and parameter maps of ρ (gradflow/symbolic.py,
# gradflow/parameter_map.py).
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
    "derive", "SymbolicJacobian", "EigenResult", "derivation_times",
    "spectral_radius_map", "divergence_boundary_curve", "unit_modulus_b",
]  # fmt: skip
