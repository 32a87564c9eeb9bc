"""Plain-text and LaTeX reports of a :class:`~gradscape.gradflow.symbolic.jacobian.SymbolicJacobian`.

sympy prints each expression (``str`` and ``sympy.latex``); what is added here is the layout and
the one readability step sympy cannot take by itself: each distinct spike argument a (e.g.
u_t − θ − q_{t−1} written out) is named once (``a_t``, or ``a_1``, ``a_2`` …) and Θ(a), σ(a) are
printed with that name, since the long argument repeated in every entry would make the matrices
unreadable (and slow to print).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sympy

from gradscape.models.ops import Spike, SurrogateSlope

if TYPE_CHECKING:
    from gradscape.gradflow.symbolic.jacobian import SymbolicJacobian

__all__ = ["spike_arguments", "to_text", "to_latex"]


def _spike_calls(jac: SymbolicJacobian) -> set[sympy.Expr]:
    calls = set(jac.spike.atoms(SurrogateSlope, Spike)) | set(jac.J.atoms(SurrogateSlope, Spike))
    for e in jac.next_state:
        calls |= e.atoms(SurrogateSlope, Spike)
    return calls


def spike_arguments(jac: SymbolicJacobian) -> dict[sympy.Symbol, sympy.Expr]:
    """Short names for the arguments of Θ and σ: ``a_t`` (or ``a_1``, ``a_2`` … when several),
    the quantity whose sign decides the spike."""
    args = sorted({c.args[0] for c in _spike_calls(jac)}, key=sympy.default_sort_key)
    names = ["a_t"] if len(args) == 1 else [f"a_{i + 1}" for i in range(len(args))]
    return {sympy.Symbol(n, real=True): a for n, a in zip(names, args, strict=True)}


def sections(jac: SymbolicJacobian, timeout: float | None) -> list[tuple[str, Any]]:
    """Everything the reports show, with Θ(a)/σ(a) written Θ(a_t)/σ(a_t) (a_t given first)."""
    short = spike_arguments(jac)
    by_arg = {a: n for n, a in short.items()}
    rename = {c: type(c)(by_arg[c.args[0]]) for c in _spike_calls(jac)}

    def brief(obj: Any) -> Any:
        if isinstance(obj, list):
            return [brief(v) for v in obj]
        return obj.xreplace(rename) if isinstance(obj, sympy.Basic | sympy.MatrixBase) else obj

    s_prev = ", ".join(str(s) for s in jac.state_symbols)
    out: list[tuple[str, Any]] = []
    if short:
        out.append(
            (
                "spike argument (Theta and sigma are evaluated at it)",
                [sympy.Eq(n, a) for n, a in short.items()],
            )
        )
    out += [
        ("state s_{t-1}", sympy.Matrix(jac.state_symbols).T),
        ("next state s_t", brief(sympy.Matrix(jac.next_state))),
        ("output z_t", brief(jac.spike)),
        (f"J = ds_t/d({s_prev})", brief(jac.J)),
        ("J_sub (sigma -> 0)", brief(jac.J_sub)),
        (f"membrane block ({', '.join(jac.membrane_fields)})", brief(jac.membrane_block)),
    ]
    for which in ("membrane", "sub", "full"):
        res = jac.eigenvalues(which, timeout)
        out.append((f"det(lambda I - M), M = {which}", brief(jac.charpoly(which))))
        out.append((f"eigenvalues ({which}) [{res.note}]", brief(res.values)))
        rho = jac.spectral_radius(which, timeout)
        if rho is not None:
            out.append((f"spectral radius ({which})", brief(rho)))
    return out


def header(jac: SymbolicJacobian) -> str:
    consts = ", ".join(f"{k}={v}" for k, v in jac.constants.items())
    params = ", ".join(f"{k}: {v}" for k, v in jac.param_symbols.items())
    return (
        f"neuron {jac.neuron_name}; symbols {params or '(none)'}; input {jac.input_symbol}; "
        f"constants {consts or '(none)'}; sigma(a) = surrogate slope SG'(a) ({jac.surrogate.name}), "
        f"Theta(a) = spike"
    )


def to_text(jac: SymbolicJacobian, timeout: float | None = 10.0) -> str:
    """Plain-text report: s_t, z_t, J, J_sub, membrane block, det(λI − M), λ and ρ."""
    lines = [header(jac), ""]
    for title, obj in sections(jac, timeout):
        lines.append(f"{title}:")
        if isinstance(obj, sympy.MatrixBase):
            lines.extend("  " + str(list(obj.row(i))) for i in range(obj.rows))
        elif isinstance(obj, list):
            lines.extend(f"  {v}" for v in obj)
        else:
            lines.append(f"  {obj}")
        lines.append("")
    return "\n".join(lines)


def to_latex(jac: SymbolicJacobian, timeout: float | None = 10.0) -> str:
    """LaTeX report (one ``align*`` per item) of the same content as :func:`to_text`."""
    parts = [f"% {header(jac)}"]
    for title, obj in sections(jac, timeout):
        if isinstance(obj, list):
            body = r",\\ ".join(sympy.latex(v) for v in obj) or r"\text{(none)}"
            body = r"\begin{gathered}" + body + r"\end{gathered}"
        else:
            body = sympy.latex(obj)
        safe = title.replace("_", r"\_").replace("->", r"$\to$")
        parts.append(f"\\paragraph{{{safe}}}\n\\begin{{align*}}\n{body}\n\\end{{align*}}")
    return "\n".join(parts) + "\n"
