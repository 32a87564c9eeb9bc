"""The result of :func:`~gradscape.gradflow.symbolic.derive`: a neuron's symbolic J and what it offers.

For a neuron with state s = (s¹, …, sᵏ), J = ∂s_t/∂s_{t−1} (k × k, input x_t and parameters held
fixed), with the spike path through σ(a) (the surrogate slope); ``J_sub`` is J with σ → 0 (the
sub-threshold matrix, Θ terms kept as they are) and ``membrane_block`` the rows and columns of
``neuron.membrane`` of ``J_sub``. On each: det(λI − M), the eigenvalues
(:mod:`~gradscape.gradflow.symbolic.eigen`), ρ(M) = max |λ|, a torch function of the matrix at any
batch of states (:mod:`~gradscape.gradflow.symbolic.printer`) and the text/LaTeX reports
(:mod:`~gradscape.gradflow.symbolic.render`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sympy
import torch

from gradscape.errors import UserError
from gradscape.gradflow.symbolic import eigen, render
from gradscape.gradflow.symbolic.printer import torch_matrix_function
from gradscape.models.surrogates import Surrogate, get_surrogate

__all__ = ["WHICH", "LAMBDA", "SymbolicJacobian"]

#: the matrices a :class:`SymbolicJacobian` offers: membrane block, sub-threshold J, full J.
WHICH = ("membrane", "sub", "full")

#: the eigenvalue variable of the characteristic polynomial det(λI − M).
LAMBDA = sympy.Symbol("lambda")


def _unknown(which: str) -> UserError:
    return UserError(f"unknown matrix {which!r}; choose one of: {', '.join(WHICH)}")


@dataclass
class SymbolicJacobian:
    """A neuron's J = ∂s_t/∂s_{t−1}, derived by :func:`~gradscape.gradflow.symbolic.derive`.

    ``state_symbols`` stand for s_{t−1} (printed ``u_{t-1}`` …), ``next_state`` holds s_t as
    expressions of them, ``spike`` the neuron's output z_t. ``param_symbols`` maps the parameter
    fields that are still symbolic to their symbols; ``constants`` the fields fixed to values.
    With ``positive=True`` the parameter symbols are positive (so |ω| = ω, and σ/Θ arguments simplify);
    :meth:`lambdify_torch` nevertheless evaluates the matrices traced with *real* symbols, so it is
    exact for parameters of either sign (the neuron's own ``ops.abs`` included).
    """

    neuron_name: str
    state_symbols: tuple[sympy.Symbol, ...]
    param_symbols: dict[str, sympy.Symbol]
    input_symbol: sympy.Symbol
    next_state: tuple[sympy.Expr, ...]
    spike: sympy.Expr
    J: sympy.Matrix
    J_sub: sympy.Matrix
    membrane_block: sympy.Matrix
    state_fields: tuple[str, ...] = ()
    membrane_fields: tuple[str, ...] = ()
    #: positions of ``membrane_fields`` in ``state_fields`` (from neuron_facts.membrane_indices)
    membrane_index: tuple[int, ...] = ()
    constants: dict[str, Any] = field(default_factory=dict)
    positive: bool = True
    surrogate: Surrogate = field(default_factory=lambda: get_surrogate("double-gaussian"))
    lam: sympy.Symbol = LAMBDA
    #: J traced with real symbols and no state/input substituted (for :meth:`lambdify_torch`).
    J_real: sympy.Matrix | None = field(default=None, repr=False)
    real_param_symbols: dict[str, sympy.Symbol] = field(default_factory=dict, repr=False)
    #: s_t and z_t traced with real symbols, nothing substituted (same symbols as ``J_real``).
    next_state_real: tuple[sympy.Expr, ...] = field(default=(), repr=False)
    spike_real: sympy.Expr | None = field(default=None, repr=False)
    _eigen_cache: dict[tuple, Any] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ matrices
    def matrix(self, which: str = "full") -> sympy.Matrix:
        """The ``"membrane"`` block, the sub-threshold ``"sub"`` J or the ``"full"`` J."""
        if which == "membrane":
            return self.membrane_block
        if which == "sub":
            return self.J_sub
        if which == "full":
            return self.J
        raise _unknown(which)

    def real_matrix(self, which: str = "full") -> sympy.Matrix:
        """Like :meth:`matrix` but with real (not positive) parameter symbols and the previous state
        and input left symbolic: what :meth:`lambdify_torch` evaluates."""
        assert self.J_real is not None
        if which == "full":
            return self.J_real
        sub = eigen.cut_surrogate(self.J_real)
        if which == "sub":
            return sub
        if which == "membrane":
            idx = list(self.membrane_index)
            return sub.extract(idx, idx)
        raise _unknown(which)

    # ------------------------------------------------------------------ spectra
    def charpoly(self, which: str = "membrane") -> sympy.Expr:
        """det(λI − M) as a product over the diagonal blocks of M's block-triangular form."""
        return eigen.charpoly(self.matrix(which), self.lam)

    def eigenvalues(self, which: str = "membrane", timeout: float | None = 10.0) -> eigen.SymbolicEigenvalues:
        """Eigenvalues of :meth:`matrix` ``(which)``: closed form if sympy finds one within
        ``timeout`` seconds, else numeric when the matrix holds numbers only (σ and Θ evaluated
        with ``self.surrogate``), else none; ``note`` says which happened."""
        key = (which, timeout)
        if key not in self._eigen_cache:
            self._eigen_cache[key] = eigen.eigenvalues(self.matrix(which), self.lam, timeout, self.surrogate)
        return self._eigen_cache[key]

    def spectral_radius(self, which: str = "membrane", timeout: float | None = 10.0) -> sympy.Expr | None:
        """ρ(M) = max |λ| as an expression (a number when numeric; None when unknown)."""
        key = ("rho", which, timeout)
        if key not in self._eigen_cache:
            self._eigen_cache[key] = eigen.spectral_radius(self.eigenvalues(which, timeout))
        return self._eigen_cache[key]

    # ------------------------------------------------------------------ numeric
    def lambdify_torch(
        self, which: str = "full", surrogate: str | Surrogate | None = None
    ) -> Callable[..., torch.Tensor]:
        """``f(state, x, params) -> Tensor (..., k, k)``: the numeric matrix at any batch of states.

        ``state``: the neuron's state NamedTuple of tensors, a mapping field → tensor, or a
        sequence in field order; ``x``: the input current (None: 0); ``params``: a mapping (or the params
        dataclass) holding at least the fields in ``param_symbols`` (others are ignored). All are
        broadcast together. σ(a) is ``surrogate.grad(a)`` at the spike's argument a (default: this
        Jacobian's surrogate, the paper's double Gaussian), Θ(a) the Heaviside step.
        """
        M = self.real_matrix(which)
        names = list(self.real_param_symbols)
        symbols = [*self.state_symbols, self.input_symbol, *(self.real_param_symbols[n] for n in names)]
        fn = torch_matrix_function(M, symbols, surrogate if surrogate is not None else self.surrogate)
        fields = self.state_fields

        def evaluate(state: Any, x: Any, params: Any = None) -> torch.Tensor:
            if isinstance(state, Mapping):
                svals = [state[f] for f in fields]
            elif hasattr(state, "_fields"):
                svals = [getattr(state, f) for f in fields]
            else:
                svals = list(state)
            if len(svals) != len(fields):
                raise UserError(f"{self.neuron_name}: expected {len(fields)} state fields {fields}")
            pvals = []
            for n in names:
                if isinstance(params, Mapping) and n in params:
                    pvals.append(params[n])
                elif params is not None and not isinstance(params, Mapping) and hasattr(params, n):
                    pvals.append(getattr(params, n))
                else:
                    raise UserError(f"{self.neuron_name}: J needs a value for parameter {n!r}")
            return fn(*svals, 0.0 if x is None else x, *pvals)

        return evaluate

    # ------------------------------------------------------------------ output
    def spike_arguments(self) -> dict[sympy.Symbol, sympy.Expr]:
        """Short names for the arguments of Θ and σ: ``a_t`` (or ``a_1``, ``a_2`` … when several),
        the quantity whose sign decides the spike (e.g. u_t − θ − q_{t−1} written out)."""
        return render.spike_arguments(self)

    def to_text(self, timeout: float | None = 10.0) -> str:
        """Plain-text report: s_t, z_t, J, J_sub, membrane block, det(λI − M), λ and ρ."""
        return render.to_text(self, timeout)

    def to_latex(self, timeout: float | None = 10.0) -> str:
        """LaTeX report (one ``align*`` per item) of the same content as :meth:`to_text`."""
        return render.to_latex(self, timeout)
