"""The gradient transition matrix of one neuron, derived symbolically from its own step function.

For a neuron with state s = (s¹, …, sᵏ) the per-neuron gradient transition matrix is

    J = ∂s_t / ∂s_{t−1}            (k × k, input x_t and parameters held fixed)

:func:`derive` runs the neuron's one ``step`` on the sympy backend
(:class:`gradscape.models.ops.SympyOps`), so the equations analysed are the ones that train. A spike
comes out as ``Θ(a)`` (:class:`~gradscape.models.ops.Spike`) whose derivative is the unevaluated
surrogate slope ``σ(a) = SG'(a)`` (:class:`~gradscape.models.ops.SurrogateSlope`). From the full J
(spike path through σ) it forms

* ``J_sub``: the sub-threshold matrix, σ → 0 (the surrogate path cut; Θ terms are kept as they are),
* ``membrane_block``: the rows and columns of ``neuron.membrane`` (BRF: u, v) of ``J_sub``,

and offers the characteristic polynomial det(λI − M), the eigenvalues λ (closed form where sympy finds
them, numeric otherwise, with a time limit) and the spectral radius ρ(M) = max |λ| as an expression.

Closed forms: the matrix is first split into its block-triangular form (strongly connected
components of its non-zero pattern), whose diagonal blocks carry all eigenvalues; each block's
characteristic polynomial is factored and only linear and quadratic factors are solved (Cardano's
formulas for a cubic with σ inside are exact but useless). For a quadratic factor aλ² + bλ + c with
discriminant D = b² − 4ac the modulus is written |λ| = sqrt(c/a) where D < 0 (a complex pair, so
|λ|² = λλ̄ = c/a), which is how sympy proves |λ| = 1 on BRF's divergence boundary.
"""

from __future__ import annotations

import dataclasses
import math
import queue
import signal
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy
import torch
from sympy.printing.pytorch import TorchPrinter

from gradscape.errors import UserError
from gradscape.models.neurons import NEURONS, Neuron, get_neuron
from gradscape.models.ops import Spike, StopGradient, SurrogateSlope, SympyOps
from gradscape.models.surrogates import Surrogate, get_surrogate, heaviside

__all__ = [
    "WHICH",
    "LAMBDA",
    "EigenResult",
    "SymbolicJacobian",
    "derive",
    "derivation_times",
    "run_with_timeout",
    "SymbolicTimeout",
]

#: the matrices a :class:`SymbolicJacobian` offers: membrane block, sub-threshold J, full J.
WHICH = ("membrane", "sub", "full")

#: the eigenvalue variable of the characteristic polynomial det(λI − M).
LAMBDA = sympy.Symbol("lambda")

# Printed names of well-known parameter fields (the paper's notation); others keep the field name.
_PRETTY = {
    "dt": "delta",
    "b_offset": "b'",
    "tau_mem": "tau_m",
    "tau_adp": "tau_a",
    "theta0": "vartheta_0",
}


class SymbolicTimeout(Exception):
    """A sympy computation ran past its time limit."""


def run_with_timeout(fn: Callable[[], Any], timeout: float | None) -> Any:
    """``fn()``, or :class:`SymbolicTimeout` after ``timeout`` seconds.

    In the main thread (and when no other interval timer is running) SIGALRM interrupts the
    computation itself; elsewhere ``fn`` runs in a daemon thread that is abandoned (not killed:
    Python cannot kill a thread) when the limit passes.
    """
    if timeout is None or timeout <= 0:
        return fn()
    use_alarm = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )
    if use_alarm:

        def _alarm(signum: int, frame: Any) -> None:
            raise SymbolicTimeout(f"no result within {timeout:g} s")

        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    box: queue.Queue = queue.Queue(maxsize=1)

    def _worker() -> None:
        try:
            box.put((True, fn()))
        except BaseException as exc:  # handed back to the caller below
            box.put((False, exc))

    threading.Thread(target=_worker, daemon=True, name="gradscape-sympy").start()
    try:
        ok, value = box.get(timeout=timeout)
    except queue.Empty:
        raise SymbolicTimeout(f"no result within {timeout:g} s") from None
    if not ok:
        raise value
    return value


def _exact(value: Any) -> Any:
    """Numbers as exact sympy numbers (a float is taken as the decimal it prints as: 0.01 → 1/100);
    booleans, strings, None and sympy objects unchanged."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise UserError(
                f"a symbolic analysis needs one number per parameter, got shape {tuple(value.shape)}"
            )
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str | sympy.Basic):
        return value
    if isinstance(value, int):
        return sympy.Integer(value)
    if isinstance(value, float):
        return sympy.Rational(repr(value)) if math.isfinite(value) else sympy.Float(value)
    return value


def _is_number_constant(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _TorchJPrinter(TorchPrinter):
    """Torch code printer that also knows Θ / σ and folds numeric constants (sqrt(3)/2 → 0.866…),
    which ``torch.sqrt`` would refuse as Python numbers."""

    def _print(self, expr: Any, **kwargs: Any) -> str:
        if isinstance(expr, sympy.Expr) and expr.is_number and not expr.is_Integer:
            try:
                return repr(float(expr))
            except TypeError:
                pass
        return super()._print(expr, **kwargs)

    def _print_Spike(self, expr: Spike) -> str:
        return "Spike(%s)" % self._print(expr.args[0])

    def _print_SurrogateSlope(self, expr: SurrogateSlope) -> str:
        return "SurrogateSlope(%s)" % self._print(expr.args[0])

    def _print_StopGradient(self, expr: StopGradient) -> str:
        return "StopGradient(%s)" % self._print(expr.args[0])


def torch_matrix_function(
    matrix: sympy.Matrix, symbols: Sequence[sympy.Symbol], surrogate: str | Surrogate = "double-gaussian"
) -> Callable[..., torch.Tensor]:
    """``f(*values) -> Tensor (..., k, k)``: ``matrix`` evaluated in torch, broadcasting the values
    given for ``symbols``; Θ(a) = heaviside(a) and σ(a) = ``surrogate.grad(a)``."""
    sg = get_surrogate(surrogate)
    k_rows, k_cols = matrix.shape

    def _as_tensor(a: Any) -> torch.Tensor:
        # A folded constant argument: float64 (a 0-dim tensor does not promote a float32 batch).
        return a if isinstance(a, torch.Tensor) else torch.as_tensor(a, dtype=torch.float64)

    namespace = {
        "SurrogateSlope": lambda a: sg.grad(_as_tensor(a)),
        "Spike": lambda a: heaviside(_as_tensor(a)),
        "StopGradient": lambda a: _as_tensor(a),
    }
    entries = list(matrix)
    fn = sympy.lambdify(list(symbols), entries, modules=[namespace, "torch"], printer=_TorchJPrinter)

    def evaluate(*values: Any) -> torch.Tensor:
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        like = tensors[0] if tensors else torch.zeros((), dtype=torch.float64)
        dtype = like.dtype if like.is_floating_point() else torch.float64
        vals = [torch.as_tensor(v, dtype=dtype, device=like.device) for v in values]
        out = fn(*vals)
        out = [torch.as_tensor(e, dtype=dtype, device=like.device) for e in out]
        out = torch.broadcast_tensors(*out)
        return torch.stack(out, dim=-1).reshape(*out[0].shape, k_rows, k_cols)

    return evaluate


@dataclass
class EigenResult:
    """Eigenvalues of one matrix: ``values`` (repeated by multiplicity) and their ``moduli`` |λ|.

    ``closed_form`` is False when the values are numeric (or missing); ``note`` says why: no
    closed form (an irreducible factor of degree ≥ 3), or the time limit ran out, and whether the
    values were then computed numerically.
    """

    values: list[sympy.Expr]
    closed_form: bool
    note: str
    moduli: list[sympy.Expr] = field(default_factory=list)

    def numeric(self) -> np.ndarray:
        """The eigenvalues as complex numbers (raises TypeError where symbols remain)."""
        return np.array([complex(sympy.N(v)) for v in self.values], dtype=complex)


@dataclass
class SymbolicJacobian:
    """A neuron's J = ∂s_t/∂s_{t−1}, derived by :func:`derive` (module docstring).

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
        raise UserError(f"unknown matrix {which!r}; choose one of: {', '.join(WHICH)}")

    def _membrane_index(self) -> list[int]:
        return [self.state_fields.index(f) for f in self.membrane_fields]

    def real_matrix(self, which: str = "full") -> sympy.Matrix:
        """Like :meth:`matrix` but with real (not positive) parameter symbols and the previous state
        and input left symbolic: what :meth:`lambdify_torch` evaluates."""
        assert self.J_real is not None
        if which == "full":
            return self.J_real
        sub = _cut_surrogate(self.J_real)
        if which == "sub":
            return sub
        if which == "membrane":
            idx = self._membrane_index()
            return sub.extract(idx, idx)
        raise UserError(f"unknown matrix {which!r}; choose one of: {', '.join(WHICH)}")

    # ------------------------------------------------------------------ spectra
    def charpoly(self, which: str = "membrane") -> sympy.Expr:
        """det(λI − M) as a product over the diagonal blocks of M's block-triangular form."""
        M = self.matrix(which)
        return sympy.Mul(
            *(M.extract(b, b).charpoly(self.lam, simplify=sympy.expand).as_expr() for b in _blocks(M))
        )

    def eigenvalues(self, which: str = "membrane", timeout: float | None = 10.0) -> EigenResult:
        """Eigenvalues of :meth:`matrix` ``(which)``: closed form if sympy finds one within
        ``timeout`` seconds, else numeric when the matrix holds numbers only (σ and Θ evaluated
        with ``self.surrogate``), else none; ``note`` says which happened."""
        key = (which, timeout)
        if key not in self._eigen_cache:
            self._eigen_cache[key] = _eigen(self.matrix(which), self.lam, timeout, self.surrogate)
        return self._eigen_cache[key]

    def spectral_radius(self, which: str = "membrane", timeout: float | None = 10.0) -> sympy.Expr | None:
        """ρ(M) = max |λ| as an expression (a number when numeric; None when unknown)."""
        key = ("rho", which, timeout)
        if key in self._eigen_cache:
            return self._eigen_cache[key]
        res = self.eigenvalues(which, timeout)
        rho: sympy.Expr | None = None
        if res.moduli:
            # Structural comparison only: simplify() on σ-laden moduli can take minutes.
            unique = list(dict.fromkeys(res.moduli))
            if len(unique) > 1:
                unique = [m for m in unique if m != 0]
            # Max() compares its arguments; on long σ expressions that alone takes seconds.
            small = sum(sympy.count_ops(m) for m in unique) < 200
            rho = unique[0] if len(unique) == 1 else sympy.Max(*unique, evaluate=small)
        self._eigen_cache[key] = rho
        return rho

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
        calls = set(self.spike.atoms(SurrogateSlope, Spike)) | set(self.J.atoms(SurrogateSlope, Spike))
        for e in self.next_state:
            calls |= e.atoms(SurrogateSlope, Spike)
        args = sorted({c.args[0] for c in calls}, key=sympy.default_sort_key)
        names = ["a_t"] if len(args) == 1 else [f"a_{i + 1}" for i in range(len(args))]
        return {sympy.Symbol(n, real=True): a for n, a in zip(names, args, strict=True)}

    def _sections(self, timeout: float | None) -> list[tuple[str, Any]]:
        """Everything the reports show, with Θ(a)/σ(a) written Θ(a_t)/σ(a_t) (a_t given first):
        the long argument repeated in every entry would make them unreadable (and slow to print)."""
        short = self.spike_arguments()
        calls = set(self.spike.atoms(SurrogateSlope, Spike)) | set(self.J.atoms(SurrogateSlope, Spike))
        for e in self.next_state:
            calls |= e.atoms(SurrogateSlope, Spike)
        by_arg = {a: n for n, a in short.items()}
        rename = {c: type(c)(by_arg[c.args[0]]) for c in calls}

        def brief(obj: Any) -> Any:
            if isinstance(obj, list):
                return [brief(v) for v in obj]
            return obj.xreplace(rename) if isinstance(obj, sympy.Basic | sympy.MatrixBase) else obj

        s_prev = ", ".join(str(s) for s in self.state_symbols)
        out: list[tuple[str, Any]] = []
        if short:
            out.append(
                (
                    "spike argument (Theta and sigma are evaluated at it)",
                    [sympy.Eq(n, a) for n, a in short.items()],
                )
            )
        out += [
            ("state s_{t-1}", sympy.Matrix(self.state_symbols).T),
            ("next state s_t", brief(sympy.Matrix(self.next_state))),
            ("output z_t", brief(self.spike)),
            (f"J = ds_t/d({s_prev})", brief(self.J)),
            ("J_sub (sigma -> 0)", brief(self.J_sub)),
            (f"membrane block ({', '.join(self.membrane_fields)})", brief(self.membrane_block)),
        ]
        for which in ("membrane", "sub", "full"):
            res = self.eigenvalues(which, timeout)
            out.append((f"det(lambda I - M), M = {which}", brief(self.charpoly(which))))
            out.append((f"eigenvalues ({which}) [{res.note}]", brief(res.values)))
            rho = self.spectral_radius(which, timeout)
            if rho is not None:
                out.append((f"spectral radius ({which})", brief(rho)))
        return out

    def _header(self) -> str:
        consts = ", ".join(f"{k}={v}" for k, v in self.constants.items())
        params = ", ".join(f"{k}: {v}" for k, v in self.param_symbols.items())
        return (
            f"neuron {self.neuron_name}; symbols {params or '(none)'}; input {self.input_symbol}; "
            f"constants {consts or '(none)'}; sigma(a) = surrogate slope SG'(a) ({self.surrogate.name}), "
            f"Theta(a) = spike"
        )

    def to_text(self, timeout: float | None = 10.0) -> str:
        """Plain-text report: s_t, z_t, J, J_sub, membrane block, det(λI − M), λ and ρ."""
        lines = [self._header(), ""]
        for title, obj in self._sections(timeout):
            lines.append(f"{title}:")
            if isinstance(obj, sympy.MatrixBase):
                lines.extend("  " + str(list(obj.row(i))) for i in range(obj.rows))
            elif isinstance(obj, list):
                lines.extend(f"  {v}" for v in obj)
            else:
                lines.append(f"  {obj}")
            lines.append("")
        return "\n".join(lines)

    def to_latex(self, timeout: float | None = 10.0) -> str:
        """LaTeX report (one ``align*`` per item) of the same content as :meth:`to_text`."""
        parts = [f"% {self._header()}"]
        for title, obj in self._sections(timeout):
            if isinstance(obj, list):
                body = r",\\ ".join(sympy.latex(v) for v in obj) or r"\text{(none)}"
                body = r"\begin{gathered}" + body + r"\end{gathered}"
            else:
                body = sympy.latex(obj)
            safe = title.replace("_", r"\_").replace("->", r"$\to$")
            parts.append(f"\\paragraph{{{safe}}}\n\\begin{{align*}}\n{body}\n\\end{{align*}}")
        return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------- helpers
def _cut_surrogate(M: sympy.Matrix) -> sympy.Matrix:
    """σ → 0: the sub-threshold matrix (spike path cut)."""
    return M.replace(SurrogateSlope, lambda *a: sympy.S.Zero)


def _blocks(M: sympy.Matrix) -> list[list[int]]:
    """Index sets of the diagonal blocks of M's block-triangular form (strongly connected components
    of the non-zero pattern); the eigenvalues of M are those of the blocks together."""
    return [sorted(c) for c in M.strongly_connected_components()]


def _quadratic_moduli(poly: sympy.Poly, roots: list[sympy.Expr]) -> list[sympy.Expr]:
    a, b, c = poly.all_coeffs()
    disc = sympy.expand(b**2 - 4 * a * c)
    pair = sympy.sqrt(sympy.cancel(c / a))
    return [sympy.Piecewise((pair, disc < 0), (sympy.Abs(r), True)) for r in roots]


def _atomize(M: sympy.Matrix) -> tuple[sympy.Matrix, dict[sympy.Symbol, sympy.Expr]]:
    """M with every distinct σ(a) and Θ(a) replaced by a plain symbol (the algebra of the
    characteristic polynomial then never expands the long arguments a), plus the way back."""
    calls = sorted(M.atoms(SurrogateSlope, Spike), key=sympy.default_sort_key)
    names = {SurrogateSlope: "sigma", Spike: "Theta"}
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
    for block in _blocks(M):
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


class _NoClosedForm(Exception):
    pass


def _numeric_matrix(M: sympy.Matrix, surrogate: Surrogate) -> np.ndarray | None:
    """M as a float array (σ and Θ evaluated numerically), or None while symbols remain."""
    if M.free_symbols:
        return None
    fn = torch_matrix_function(M, [], surrogate)
    with torch.no_grad():
        out = fn()
    return out.to(torch.float64).numpy()


def _eigen(M: sympy.Matrix, lam: sympy.Symbol, timeout: float | None, surrogate: Surrogate) -> EigenResult:
    reason = ""
    try:
        values, moduli = run_with_timeout(lambda: _closed_form(M, lam), timeout)
        return EigenResult(values, True, "closed form", moduli)
    except _NoClosedForm as exc:
        reason = f"no closed form ({exc})"
    except SymbolicTimeout as exc:
        reason = f"closed form timed out ({exc})"
    A = _numeric_matrix(M, surrogate)
    if A is None:
        names = ", ".join(sorted(str(s) for s in M.free_symbols))
        return EigenResult([], False, f"{reason}; give numbers for {names} to get numeric eigenvalues")
    ev = np.linalg.eigvals(A)
    values = [
        sympy.Float(v.real) + sympy.I * sympy.Float(v.imag) if v.imag else sympy.Float(v.real) for v in ev
    ]
    return EigenResult(
        values, False, f"{reason}; numeric (numpy.linalg.eigvals)", [sympy.Float(abs(v)) for v in ev]
    )


def _trace_error(neuron: Neuron, exc: BaseException) -> UserError:
    """A UserError naming the neuron and the line of its step that the sympy backend cannot run."""
    where = ""
    step_file = getattr(getattr(neuron.step, "__code__", None), "co_filename", None)
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if f.filename == step_file] or frames[1:]
    if mine:
        f = mine[-1]
        where = f" at {Path(f.filename).name}:{f.lineno} `{(f.line or '').strip()}`"
    return UserError(
        f"neuron {neuron.name!r} uses a function the sympy backend cannot trace{where}: "
        f"{type(exc).__name__}: {exc}. Write its step with the ops namespace only "
        f"(ops.exp, ops.sqrt, ops.abs, ops.tanh, ops.sigmoid, ops.spike, ...), not torch.* or tensor methods"
    )


# ---------------------------------------------------------------------- derive
def derive(
    neuron: Neuron | str,
    *,
    symbolic_constants: bool = False,
    params: Mapping[str, Any] | None = None,
    state: Mapping[str, Any] | None = None,
    x: Any = None,
    positive: bool = True,
    surrogate: str | Surrogate = "double-gaussian",
) -> SymbolicJacobian:
    """Trace ``neuron.step`` on the sympy backend and form J = ∂s_t/∂s_{t−1}, J_sub and the
    membrane block (module docstring).

    ``neuron``: a :class:`Neuron`, a built-in name or ``path/to/file.py:Name``. Trainable
    parameters become symbols (positive ones with ``positive=True``, so |ω| = ω; else real).
    Numeric constants (δ = ``dt``, θ, γ_q, …) are exact numbers (0.01 → 1/100) unless
    ``symbolic_constants=True`` makes them symbols too (booleans always stay values: they select
    the variant). ``params`` fixes any parameter field to a number; ``state`` and ``x``
    substitute numbers for s_{t−1} fields and the input in the displayed matrices *after*
    differentiating. ``surrogate`` is what σ means when a numeric value is needed.

    Raises :class:`UserError` when the step cannot run on sympy (torch.* calls, tensor methods)
    or a parameter name is unknown.
    """
    neuron = get_neuron(neuron)
    params = dict(params or {})
    state = dict(state or {})
    fields = {f.name: f for f in dataclasses.fields(neuron.params)}
    unknown = set(params) - set(fields)
    if unknown:
        raise UserError(
            f"neuron {neuron.name!r} has no parameter(s) {sorted(unknown)}; its parameters are {list(fields)}"
        )
    state_fields = neuron.state_fields
    unknown = set(state) - set(state_fields)
    if unknown:
        raise UserError(
            f"neuron {neuron.name!r} has no state field(s) {sorted(unknown)}; "
            f"its state is {list(state_fields)}"
        )

    taken = set(state_fields) | {"x_t"}
    real_syms: dict[str, sympy.Symbol] = {}
    pos_syms: dict[str, sympy.Symbol] = {}
    values: dict[str, Any] = {}
    constants: dict[str, Any] = {}
    for name, f in fields.items():
        if name in params:
            values[name] = constants[name] = _exact(params[name])
            continue
        if name in neuron.constants:
            default = neuron.constants[name]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        symbolic = name in neuron.trainable or (symbolic_constants and _is_number_constant(default))
        if symbolic:
            pretty = _PRETTY.get(name, name)
            if pretty in taken:
                pretty = name
            taken.add(pretty)
            real_syms[name] = sympy.Symbol(pretty, real=True)
            pos_syms[name] = sympy.Symbol(pretty, positive=True) if positive else real_syms[name]
            values[name] = real_syms[name]
        elif default is dataclasses.MISSING:
            raise UserError(f"neuron {neuron.name!r}: parameter {name!r} has no value; give it in params")
        else:
            values[name] = constants[name] = _exact(default)

    s_syms = tuple(sympy.Symbol(f"{n}_{{t-1}}", real=True) for n in state_fields)
    x_sym = sympy.Symbol("x_t", real=True)
    trainable = {k: v for k, v in values.items() if k in neuron.trainable}
    others = {k: v for k, v in values.items() if k not in neuron.trainable}
    try:
        z, new_state = neuron.step(
            SympyOps(), x_sym, neuron.state(*s_syms), neuron.make_params(trainable, **others)
        )
        next_state = tuple(sympy.sympify(e) for e in new_state)
        z = sympy.sympify(z)
    except UserError:
        raise
    except Exception as exc:
        raise _trace_error(neuron, exc) from None
    if len(next_state) != len(s_syms):
        raise UserError(
            f"neuron {neuron.name!r}: step returned {len(next_state)} state fields, expected {len(s_syms)}"
        )

    J_real = sympy.Matrix(next_state).jacobian(s_syms)
    # Positive symbols (|ω| = ω …) for display and closed forms; numbers for state/x where given.
    to_pos = {real_syms[n]: pos_syms[n] for n in real_syms}
    point = {s: _exact(state[f]) for s, f in zip(s_syms, state_fields, strict=True) if f in state}
    if x is not None:
        point[x_sym] = _exact(x)

    def shown(e: Any) -> Any:
        e = e.xreplace(to_pos)
        return e.subs(point) if point else e

    J = shown(J_real)
    J_sub = _cut_surrogate(J)
    membrane = tuple(neuron.membrane) or state_fields
    idx = [state_fields.index(m) for m in membrane]
    return SymbolicJacobian(
        neuron_name=neuron.name,
        state_symbols=s_syms,
        param_symbols=pos_syms,
        input_symbol=x_sym,
        next_state=tuple(shown(e) for e in next_state),
        spike=shown(z),
        J=J,
        J_sub=J_sub,
        membrane_block=J_sub.extract(idx, idx),
        state_fields=state_fields,
        membrane_fields=membrane,
        constants=constants,
        positive=positive,
        surrogate=get_surrogate(surrogate),
        J_real=J_real,
        real_param_symbols=real_syms,
        next_state_real=next_state,
        spike_real=z,
    )


def derivation_times(names: Sequence[str] | None = None, *, timeout: float | None = 10.0) -> dict[str, float]:
    """Seconds for the full symbolic derivation of each neuron: :func:`derive`, eigenvalues and ρ of
    the membrane block, J_sub and J, and the LaTeX report (used by the benchmark). Default: every
    built-in spiking neuron (the LSTM's step uses tensor methods and cannot be traced)."""
    names = list(names) if names is not None else [n for n, neu in NEURONS.items() if neu.spiking]
    times: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        jac = derive(name)
        for which in WHICH:
            jac.spectral_radius(which, timeout)
        jac.to_latex(timeout)
        times[name] = time.perf_counter() - t0
    return times
