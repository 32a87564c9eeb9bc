"""Eigenvalues of a symbolic gradient transition matrix: closed form where it helps, else numeric.

The matrix is first split into its block-triangular form (strongly connected components of its
non-zero pattern), whose diagonal blocks carry all eigenvalues; each block's characteristic
polynomial det(λI − B) is factored and only linear and quadratic factors are solved (Cardano's
formulas for a cubic with σ inside are exact but useless). For a quadratic factor aλ² + bλ + c with
discriminant D = b² − 4ac the modulus is written |λ| = sqrt(c/a) where D ≤ 0 (a complex pair, so
|λ|² = λλ̄ = c/a; or a double root), which is how sympy proves |λ| = 1 on BRF's divergence boundary.

sympy's ``Matrix.eigenvals`` is not used directly: it solves the whole characteristic polynomial
(Cardano for a 3 × 3 J), has no notion of the block structure or of a time limit, and writes |λ| of a
complex pair as ``Abs`` of a radical that it cannot simplify to sqrt(c/a). It does the pieces:
``strongly_connected_components``, ``charpoly``, ``factor_list`` and ``roots``. The numeric fallback
is ``numpy.linalg.eigvals``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy

from gradscape.gradflow.symbolic.printer import numeric_matrix
from gradscape.gradflow.symbolic.timeout import SymbolicTimeout, run_with_timeout
from gradscape.models.ops import Spike, SurrogateSlope
from gradscape.models.surrogates import Surrogate

__all__ = ["SymbolicEigenvalues", "eigenvalues", "charpoly", "spectral_radius", "cut_surrogate", "blocks"]


@dataclass
class SymbolicEigenvalues:
    """Eigenvalues of one symbolic matrix: ``values`` (repeated by multiplicity) and their
    ``moduli`` |λ|.

    ``closed_form`` is False when the values are numeric (or missing); ``note`` says why: no
    closed form (an irreducible factor of degree ≥ 3), or the time limit ran out, and whether the
    values were then computed numerically. (Named apart from the landscape's Hessian eigenpairs.)
    """

    values: list[sympy.Expr]
    closed_form: bool
    note: str
    moduli: list[sympy.Expr] = field(default_factory=list)

    def numeric(self) -> np.ndarray:
        """The eigenvalues as complex numbers (raises TypeError where symbols remain)."""
        return np.array([complex(sympy.N(v)) for v in self.values], dtype=complex)


def cut_surrogate(M: sympy.Matrix) -> sympy.Matrix:
    """σ → 0: the sub-threshold matrix (spike path cut)."""
    return M.replace(SurrogateSlope, lambda *a: sympy.S.Zero)


def blocks(M: sympy.Matrix) -> list[list[int]]:
    """Index sets of the diagonal blocks of M's block-triangular form (strongly connected components
    of the non-zero pattern); the eigenvalues of M are those of the blocks together."""
    return [sorted(c) for c in M.strongly_connected_components()]


def charpoly(M: sympy.Matrix, lam: sympy.Symbol) -> sympy.Expr:
    """det(λI − M) as a product over the diagonal blocks of M's block-triangular form."""
    return sympy.Mul(*(M.extract(b, b).charpoly(lam, simplify=sympy.expand).as_expr() for b in blocks(M)))


class _NoClosedForm(Exception):
    pass


def _quadratic_moduli(poly: sympy.Poly, roots: list[sympy.Expr]) -> list[sympy.Expr]:
    """|λ| of the roots of aλ² + bλ + c (real coefficients): sqrt(c/a) where D = b² − 4ac ≤ 0 (a
    complex pair, λλ̄ = c/a; or a double real root λ = −b/2a, λ² = c/a), else |λ| itself."""
    a, b, c = poly.all_coeffs()
    disc = sympy.expand(b**2 - 4 * a * c)
    pair = sympy.sqrt(_tidy_trig(sympy.cancel(c / a)))
    return [sympy.Piecewise((pair, disc <= 0), (sympy.Abs(r), True)) for r in roots]


def _tidy_trig(expr: sympy.Expr) -> sympy.Expr:
    """c/a with sin² + cos² = 1 applied: an exactly discretised rotation r·R(ωδ) has c/a =
    r² sin²(ωδ) + r² cos²(ωδ), whose modulus sqrt(c/a) should read r. Only expressions with sin/cos
    are touched, after factor_terms has pulled the common factor out (trigsimp is then quick); σ and
    Θ are plain symbols here (:func:`_atomize`), so their long arguments are never walked."""
    if not expr.has(sympy.sin, sympy.cos):
        return expr
    return sympy.trigsimp(sympy.factor_terms(expr))


def _atomize(M: sympy.Matrix) -> tuple[sympy.Matrix, dict[sympy.Symbol, sympy.Expr]]:
    """M with every distinct σ(a), Θ(a) and piecewise entry (relu, clamp, where …) replaced by a
    plain symbol (the algebra of the characteristic polynomial then never expands the long
    arguments a), plus the way back."""
    calls = sorted(M.atoms(SurrogateSlope, Spike, sympy.Piecewise), key=sympy.default_sort_key)
    names = {SurrogateSlope: "sigma", Spike: "Theta", sympy.Piecewise: "pw"}
    back = {sympy.Dummy(f"{names[type(c)]}_{i}", real=True): c for i, c in enumerate(calls)}
    return M.xreplace({c: d for d, c in back.items()}), back


def _has_high_radical(expr: sympy.Expr) -> bool:
    return any(p.exp.is_Rational and not p.exp.is_Integer and p.exp.q > 2 for p in expr.atoms(sympy.Pow))


def _solve_factor(factor: sympy.Poly, lam: sympy.Symbol) -> tuple[list[sympy.Expr], list[sympy.Expr]]:
    deg = factor.degree()
    found = sympy.roots(factor, lam, cubics=False, quartics=False)
    if sum(found.values()) != deg:
        raise _NoClosedForm(f"irreducible factor of degree {deg}")
    rts = [r for r, m in found.items() for _ in range(m)]
    if deg > 2 and any(_has_high_radical(r) for r in rts):
        # sympy's heuristics can still reach Cardano-type cube roots: exact but unreadable.
        raise _NoClosedForm(f"factor of degree {deg} has only cube-root (Cardano) solutions")
    return rts, (_quadratic_moduli(factor, rts) if deg == 2 else [sympy.Abs(r) for r in rts])


def _closed_form(M: sympy.Matrix, lam: sympy.Symbol) -> tuple[list[sympy.Expr], list[sympy.Expr]]:
    """Eigenvalues and moduli per diagonal block: a 1×1 block is its own eigenvalue; otherwise
    zero roots are split off (vanishing trailing coefficients) and the rest is solved when it is
    of degree ≤ 2, or factored into factors of degree ≤ 2."""
    numeric = not M.free_symbols
    M, back = _atomize(M)
    values: list[sympy.Expr] = []
    moduli: list[sympy.Expr] = []
    for block in blocks(M):
        B = M.extract(block, block)
        if B.shape == (1, 1):
            values.append(B[0, 0])
            moduli.append(sympy.Abs(B[0, 0]))
            continue
        coeffs = [sympy.expand(c) for c in B.charpoly(lam, simplify=sympy.expand).all_coeffs()]
        while len(coeffs) > 1 and coeffs[-1] == 0:
            coeffs.pop()
            values.append(sympy.S.Zero)
            moduli.append(sympy.S.Zero)
        poly = sympy.Poly(coeffs, lam)
        if poly.degree() <= 2:
            factors = [(poly, 1)] if poly.degree() > 0 else []
        elif numeric:
            # Radicals of a numeric cubic say nothing more than its numeric roots, and factoring
            # over the algebraic numbers in it is slow.
            raise _NoClosedForm(f"numeric factor of degree {poly.degree()}")
        else:
            factors = sympy.factor_list(poly)[1]
        for factor, mult in factors:
            if factor.degree() == 0:
                continue
            rts, mods = _solve_factor(factor, lam)
            values.extend(rts * mult)
            moduli.extend(mods * mult)
    return [v.xreplace(back) for v in values], [m.xreplace(back) for m in moduli]


def eigenvalues(
    M: sympy.Matrix, lam: sympy.Symbol, timeout: float | None, surrogate: Surrogate
) -> SymbolicEigenvalues:
    """M's eigenvalues: closed form if found within ``timeout`` seconds, else numeric when M holds
    numbers only (σ and Θ evaluated with ``surrogate``), else none; ``note`` says which."""
    reason = ""
    try:
        values, moduli = run_with_timeout(lambda: _closed_form(M, lam), timeout)
        return SymbolicEigenvalues(values, True, "closed form", moduli)
    except _NoClosedForm as exc:
        reason = f"no closed form ({exc})"
    except SymbolicTimeout as exc:
        reason = f"closed form timed out ({exc})"
    A = numeric_matrix(M, surrogate)
    if A is None:
        names = ", ".join(sorted(str(s) for s in M.free_symbols))
        return SymbolicEigenvalues(
            [], False, f"{reason}; give numbers for {names} to get numeric eigenvalues"
        )
    ev = np.linalg.eigvals(A)
    values = [
        sympy.Float(v.real) + sympy.I * sympy.Float(v.imag) if v.imag else sympy.Float(v.real) for v in ev
    ]
    return SymbolicEigenvalues(
        values, False, f"{reason}; numeric (numpy.linalg.eigvals)", [sympy.Float(abs(v)) for v in ev]
    )


def spectral_radius(res: SymbolicEigenvalues) -> sympy.Expr | None:
    """ρ = max |λ| over ``res.moduli`` as an expression (a number when numeric; None when unknown)."""
    if not res.moduli:
        return None
    # Structural comparison only: simplify() on σ-laden moduli can take minutes.
    unique = list(dict.fromkeys(res.moduli))
    if len(unique) > 1:
        unique = [m for m in unique if m != 0]
    # Max() compares its arguments; on long σ expressions that alone takes seconds.
    small = sum(sympy.count_ops(m) for m in unique) < 200
    return unique[0] if len(unique) == 1 else sympy.Max(*unique, evaluate=small)
