"""Spectral radius over a grid of two parameters, and the RF divergence boundary p(ω).

:func:`spectral_radius_map` evaluates ρ(M) = max |λ(M)| of one of a neuron's matrices
(:data:`gradscape.gradflow.symbolic.WHICH`: the membrane block, J_sub or the full J) on the grid
x_values × y_values of any two of its parameters (trainable ones such as ``omega``, ``b_offset``,
``tau_mem``; constants such as ``dt``; or a previous-state field such as ``q``). The matrix comes from
:func:`~gradscape.gradflow.symbolic.derive` (the neuron's own step on sympy, traced once with every
numeric parameter symbolic), is lambdified to torch and evaluated on the whole grid at once; the
eigenvalues of the batch of k × k matrices come from ``numpy.linalg.eigvals``.

The pseudo-parameter ``b`` (RF family: membrane (u, v), parameters ``b_offset`` and ``dt``) is the
damping b_t itself, defined from the membrane block as b_t = (tr M_uv / 2 − 1)/δ (its eigenvalues
are 1 + δ(b_t ± iω)). The map solves that relation for |b'| and substitutes it, i.e.

    vanilla RF / RF+RP:        |b'| = −b              (b = −b' as in the paper)
    with smooth reset:         |b'| = −b − q
    with divergence boundary:  |b'| = p(ω) − b [− q]

so b may also take values the neuron's parametrisation b = … − |b'| cannot reach (e.g. b > p(ω) for
vanilla RF, b > 0); there the map shows the same J continued analytically, which is what the
stability regions of the paper's figure show.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sympy
import torch

from gradscape.errors import UserError
from gradscape.gradflow.neuron_facts import parameter_defaults
from gradscape.gradflow.symbolic import WHICH, derive, torch_matrix_function
from gradscape.models.neurons import Neuron, divergence_boundary, get_neuron
from gradscape.models.surrogates import Surrogate

__all__ = ["spectral_radius_map", "divergence_boundary_curve", "unit_modulus_b", "B_AXIS"]

#: name of the pseudo-parameter "b_t itself" for RF-family neurons.
B_AXIS = "b"


class _NumpyOps:
    """The one op :func:`~gradscape.models.neurons.divergence_boundary` needs, on numpy arrays."""

    sqrt = staticmethod(np.sqrt)


def divergence_boundary_curve(omega_values: Any, dt: float = 0.01) -> np.ndarray:
    """p(ω) = (−1 + sqrt(1 − (δω)²))/δ (the model's own function) at |ω|; NaN where δ|ω| > 1."""
    omega = np.abs(np.asarray(omega_values, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        return divergence_boundary(_NumpyOps, omega, dt)


def unit_modulus_b(omega_values: Any, dt: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """The two dampings b where vanilla RF's membrane eigenvalues have |λ| = 1, solved by sympy from
    ρ(b, ω)² = 1 of the derived RF membrane block: b = (−1 ∓ sqrt(1 − (δω)²))/δ (lower, upper).
    |λ| < 1 exactly between them; the upper one is p(ω). NaN where δ|ω| > 1."""
    lower_f, upper_f = _unit_modulus_functions()
    omega = np.abs(np.asarray(omega_values, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        lo = np.broadcast_to(np.asarray(lower_f(omega, dt), dtype=np.float64), omega.shape).copy()
        hi = np.broadcast_to(np.asarray(upper_f(omega, dt), dtype=np.float64), omega.shape).copy()
    return lo, hi


_UNIT_CACHE: list[Any] = []


def _unit_modulus_functions() -> list[Any]:
    if not _UNIT_CACHE:
        jac = derive("rf", symbolic_constants=True)
        omega, b_off, dt = (jac.param_symbols[k] for k in ("omega", "b_offset", "dt"))
        b = sympy.Symbol("b", real=True)
        rho2 = sympy.expand(jac.spectral_radius("membrane") ** 2).subs(b_off, -b)
        roots = sympy.solve(sympy.Eq(rho2, 1), b)
        if len(roots) != 2:  # pragma: no cover - the RF step's structure fixes this
            raise RuntimeError(f"expected two roots of |λ| = 1, got {roots}")
        w, d = sympy.symbols("w d", positive=True)
        roots = sorted(
            (r.subs({omega: w, dt: d}) for r in roots), key=lambda r: float(r.subs({w: 1, d: 0.01}))
        )
        _UNIT_CACHE.extend(sympy.lambdify((w, d), r, modules="numpy") for r in roots)
    return _UNIT_CACHE


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_)


def _b_axis_matrix(jac: Any, M: sympy.Matrix, b: sympy.Symbol) -> sympy.Matrix:
    """M with |b'| replaced so that the membrane damping (tr M_uv / 2 − 1)/δ equals ``b``."""
    syms = jac.real_param_symbols
    if not {"b_offset", "dt"} <= set(syms) or len(jac.membrane_fields) != 2:
        raise UserError(
            f"the '{B_AXIS}' axis is defined for RF-family neurons (parameters b_offset and dt, membrane "
            f"(u, v)); {jac.neuron_name!r} is not one: map b_offset instead"
        )
    bo, dt = syms["b_offset"], syms["dt"]
    A = sympy.Dummy("A")
    mem = jac.real_matrix("membrane").xreplace({sympy.Abs(bo): A})
    sol = sympy.solve(sympy.Eq(mem.trace() / 2, 1 + dt * b), A)
    if len(sol) != 1 or bo in M.xreplace({sympy.Abs(bo): A}).free_symbols:
        raise UserError(f"cannot express b_t of {jac.neuron_name!r} through |b_offset|: map b_offset instead")
    return M.xreplace({sympy.Abs(bo): sol[0]})


def spectral_radius_map(
    neuron: Neuron | str,
    x_param: str,
    x_values: Sequence[float] | np.ndarray,
    y_param: str,
    y_values: Sequence[float] | np.ndarray,
    *,
    which: str = "membrane",
    constants: Mapping[str, float] | None = None,
    state: Mapping[str, float] | None = None,
    input_current: float = 0.0,
    surrogate: str | Surrogate = "double-gaussian",
) -> np.ndarray:
    """ρ(M) on the grid: array of shape (len(y_values), len(x_values)), row i at y_values[i].

    ``x_param``/``y_param``: parameter fields of the neuron (trainable or constant), previous-state
    fields, or ``"b"`` for RF-family neurons (module docstring; a neuron with a field of its own named
    ``b`` maps that field). ``constants`` gives values to the
    other parameters (constants default to the neuron's; a trainable parameter off the axes must be
    given); ``state`` the previous state (default 0, so q = 0 and below threshold); ``input_current``
    the input x_t (only the full J depends on it, through σ). ``which``: ``"membrane"``, ``"sub"``
    or ``"full"`` (σ evaluated with ``surrogate`` at the spike's argument). NaN where the matrix is
    not finite (e.g. δω > 1 with the divergence boundary).
    """
    neuron = get_neuron(neuron)
    if which not in WHICH:
        raise UserError(f"unknown matrix {which!r}; choose one of: {', '.join(WHICH)}")
    if x_param == y_param:
        raise UserError(f"the two map axes must differ (both are {x_param!r})")
    constants = dict(constants or {})
    state = dict(state or {})
    # Non-numeric fields (the RF switches refractory/smooth_reset/boundary …) select the equations:
    # they go into the derivation, not onto the grid.
    switches = {k: constants.pop(k) for k in list(constants) if not _is_number(constants[k])}
    jac = derive(neuron, symbolic_constants=True, params=switches)
    M = jac.real_matrix(which)

    b_sym = sympy.Symbol("b_t", real=True)
    names: dict[str, sympy.Symbol] = dict(jac.real_param_symbols)
    names.update(zip(jac.state_fields, jac.state_symbols, strict=True))
    # A neuron's own field named b (the exact resonator's damping) is mapped as itself; only
    # where there is none does "b" mean the RF family's derived damping b_t.
    if B_AXIS in (x_param, y_param) and B_AXIS not in names:
        M = _b_axis_matrix(jac, M, b_sym)
        names[B_AXIS] = b_sym
    for axis in (x_param, y_param):
        if axis not in names:
            raise UserError(
                f"{axis!r} is not a numeric parameter or state field of {neuron.name!r}; choose from: "
                + ", ".join(names)
            )
    unknown = set(constants) - set(names)
    if unknown:
        raise UserError(
            f"{sorted(unknown)} are not parameters of {neuron.name!r}; choose from: {', '.join(names)}"
        )

    xs = torch.as_tensor(np.asarray(x_values, dtype=np.float64))
    ys = torch.as_tensor(np.asarray(y_values, dtype=np.float64))
    Y, X = torch.meshgrid(ys, xs, indexing="ij")
    defaults = parameter_defaults(neuron)
    values: dict[sympy.Symbol, Any] = {jac.input_symbol: float(input_current)}
    needed = M.free_symbols
    for name, sym in names.items():
        if sym not in needed and name not in (x_param, y_param):
            continue  # e.g. b_offset once the b axis replaced it, or γ_q in the membrane block
        if name == x_param:
            values[sym] = X
        elif name == y_param:
            values[sym] = Y
        elif name in constants:
            values[sym] = float(constants[name])
        elif name in jac.state_fields:
            values[sym] = float(state.get(name, 0.0))
        elif name in neuron.trainable or name not in defaults:
            raise UserError(f"give a value for {name!r} (constants={{'{name}': ...}}) or put it on an axis")
        else:
            values[sym] = float(defaults[name])
    symbols = list(values)
    fn = torch_matrix_function(M, symbols, surrogate)
    with torch.no_grad():
        mats = fn(*(values[s] for s in symbols))
    k = M.shape[0]
    mats = mats.expand(len(ys), len(xs), k, k).numpy()
    rho = np.full((len(ys), len(xs)), np.nan)
    finite = np.isfinite(mats).all(axis=(-2, -1))
    if finite.any():
        rho[finite] = np.abs(np.linalg.eigvals(mats[finite])).max(axis=-1)
    return rho
