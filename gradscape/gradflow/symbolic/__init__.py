"""The gradient transition matrix of one neuron, derived symbolically from its own step function.

For a neuron with state s = (s¹, …, sᵏ) the per-neuron gradient transition matrix is

    J = ∂s_t / ∂s_{t−1}            (k × k, input x_t and parameters held fixed)

:func:`derive` runs the neuron's one ``step`` on the sympy backend, so the equations analysed are
the ones that train, and returns a :class:`SymbolicJacobian`: the full J (spike path through the
surrogate slope σ), ``J_sub`` (σ → 0) and the ``membrane_block``, with det(λI − M), the eigenvalues
(:class:`SymbolicEigenvalues`: closed form where sympy finds them, numeric otherwise, with a time
limit), ρ(M) = max |λ|, torch functions of the matrices and text/LaTeX reports.

Modules, one concern each: :mod:`.derive` (tracing and differentiation), :mod:`.jacobian` (the
result), :mod:`.eigen` (eigenvalues), :mod:`.printer` (sympy → torch), :mod:`.render` (reports),
:mod:`.timeout` (a time limit for sympy).
"""

from gradscape.gradflow.symbolic.derive import derivation_times, derive
from gradscape.gradflow.symbolic.eigen import SymbolicEigenvalues
from gradscape.gradflow.symbolic.jacobian import LAMBDA, WHICH, SymbolicJacobian
from gradscape.gradflow.symbolic.printer import torch_matrix_function
from gradscape.gradflow.symbolic.timeout import SymbolicTimeout, run_with_timeout

#: Deprecated alias of :class:`SymbolicEigenvalues` (the name collided with the landscape's
#: Hessian eigenpairs); kept while ``gradscape.gradflow`` still re-exports it.
EigenResult = SymbolicEigenvalues

__all__ = [
    "WHICH",
    "LAMBDA",
    "SymbolicEigenvalues",
    "EigenResult",
    "SymbolicJacobian",
    "derive",
    "derivation_times",
    "torch_matrix_function",
    "run_with_timeout",
    "SymbolicTimeout",
]
