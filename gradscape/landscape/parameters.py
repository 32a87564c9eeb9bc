"""Which parameters a landscape moves, and the one place where the moved point θ* + Σ_k c_k d_k is built.

Every analysis of :mod:`gradscape.landscape` works on a named subset θ of a module's parameters
(never its buffers, e.g. a connectivity mask):

* :func:`select_parameters`: ``--params`` globs → names (the default: the recurrent layer's
  W = [W_in | W_rec]);
* :func:`parameter_point`: names, a ``{name: tensor}`` point, or ``None`` (all trainable
  parameters) → the detached point θ, checked against the module's names and shapes;
* :func:`perturbed_params`: θ_p = θ* + Σ_k c_{p,k} d_k for rows of coefficients c_p (the grid
  evaluator's chunks and the curvature map's points both come from here).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence

import torch
from torch import Tensor, nn

from gradscape.errors import UserError

__all__ = ["DEFAULT_PARAMS", "select_parameters", "parameter_point", "perturbed_params"]

#: The paper's choice: the recurrent layer's weight matrix W = [W_in | W_rec].
DEFAULT_PARAMS = ("hidden.weight",)
_WILDCARDS = set("*?[")


def select_parameters(model: nn.Module, globs: Sequence[str] | None = None) -> list[str]:
    """Names of the parameters (never buffers) matched by ``globs`` (fnmatch), in model order.

    ``None`` selects ``hidden.weight`` when the model has one, else every parameter with ≥ 2 dims.
    A wildcard glob matches only parameters with ≥ 2 dims; 1-D/0-D parameters must be named exactly.
    A glob that matches nothing raises :class:`UserError` listing the available names.
    """
    params = dict(model.named_parameters())
    if globs is None or len(globs) == 0:
        if all(g in params for g in DEFAULT_PARAMS):
            return list(DEFAULT_PARAMS)
        chosen = [n for n, p in params.items() if p.dim() >= 2]
        if not chosen:
            raise UserError("the model has no weight matrix to perturb; name parameters with --params")
        return chosen
    buffers = {n for n, _ in model.named_buffers()}
    picked: set[str] = set()
    for glob in globs:
        if _WILDCARDS & set(glob):
            hits = [n for n, p in params.items() if fnmatch.fnmatchcase(n, glob) and p.dim() >= 2]
        else:
            hits = [glob] if glob in params else []
        if not hits:
            what = "names a buffer, not a parameter" if glob in buffers else "matches no parameter"
            skipped = [n for n, p in params.items() if fnmatch.fnmatchcase(n, glob) and p.dim() < 2]
            hint = f" (1-D parameters must be named exactly: {', '.join(skipped)})" if skipped else ""
            raise UserError(f"--params {glob!r} {what}{hint}; parameters are: {', '.join(params)}")
        picked.update(hits)
    return [n for n in params if n in picked]


def parameter_point(
    model: nn.Module, params: Mapping[str, Tensor] | Iterable[str] | None = None
) -> dict[str, Tensor]:
    """The point θ as ``{name: tensor}``: a mapping passes through (values detached), names are
    looked up in ``model.named_parameters()``, ``None`` takes every parameter that requires grad.

    Raises :class:`UserError` for a name the model lacks or a tensor of the wrong shape.
    """
    named = dict(model.named_parameters())
    if params is None:
        return {n: p.detach() for n, p in named.items() if p.requires_grad}
    wanted = list(params)
    unknown = [n for n in wanted if n not in named]
    if unknown:
        raise UserError(
            f"{unknown[0]!r} is not a parameter of the model; its parameters are: {', '.join(named)}"
        )
    if isinstance(params, Mapping):
        items = {n: torch.as_tensor(params[n]).detach() for n in wanted}
    else:
        items = {n: named[n].detach() for n in wanted}
    for n, v in items.items():
        if tuple(v.shape) != tuple(named[n].shape):
            raise UserError(
                f"parameter {n!r} has shape {tuple(v.shape)}, the model's is {tuple(named[n].shape)}"
            )
    if not items:
        raise UserError("no parameters selected")
    return items


def perturbed_params(
    theta: Mapping[str, Tensor], directions: Sequence[Mapping[str, Tensor]], coefs: Tensor
) -> dict[str, Tensor]:
    """Stacked θ_p = θ* + Σ_k c_{p,k} d_k for coefficient rows ``coefs`` (P, dims): each (P, *shape).

    A parameter that a direction does not name is not moved by it. Elementwise only, in θ's dtype
    (c cast first), so a point's parameters are bit-identical whatever chunk it is evaluated in.
    """
    out = {}
    for name, t in theta.items():
        shape = (coefs.shape[0],) + (1,) * t.dim()
        p = t.unsqueeze(0)
        for k, d in enumerate(directions):
            if name in d:
                p = p + coefs[:, k].to(t.dtype).reshape(shape) * d[name].to(t).unsqueeze(0)
        out[name] = p
    return out
