"""Random, filter-normalised directions in parameter space (where a landscape is evaluated).

A direction is a dict ``{parameter name: tensor of that parameter's shape}``; the landscape is
f(α, β) = L(θ* + α d + β e). Each direction is drawn from a seeded Gaussian, d_raw ~ N(0, I), and
normalised per *filter* f so that it has the scale of the trained weights (Li et al. 2018):

    d_f = d_raw,f · ‖θ_f‖ / ‖d_raw,f‖

* ``filter``: a filter is one row of a weight matrix (one postsynaptic unit; for the recurrent layer's
  W = [W_in | W_rec] a unit's whole fan-in), or one output slice ``θ[i]`` of a higher-rank tensor.
* ``filter-blocks``: like ``filter`` but the input block W_in and the recurrent block W_rec of a row are
  normalised separately (the split is at ``model.input_size`` columns), as the BRF paper's code did.
* ``layer``: the whole tensor is one filter, ‖d‖ = ‖θ‖.
* ``none``: the raw Gaussian draw.

1-D (and 0-D) parameters (ω, b', τ, biases) are included only when named explicitly (a glob without
wildcards) and are normalised per tensor in their raw, unconstrained form (``‖d‖ = ‖θ_raw‖``) by every
mode but ``none``. Weights absent under a fixed mask M (a buffer ``mask`` of the same shape in the
parameter's module) stay zero in d and are left out of every norm: norms use θ ⊙ M.

Unlike Li et al.'s code: draws are Gaussian (not uniform), 1-D parameters are never set to |θ| or θ,
and the optional orthogonalisation of e against d happens *after* normalisation,
e ← e − (⟨e, d⟩ / ⟨d, d⟩) d, after which e no longer has exact filter norms (recorded in ``info``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from gradscape.errors import UserError
from gradscape.landscape.parameters import DEFAULT_PARAMS, parameter_point, select_parameters

__all__ = [
    "NORMALIZATIONS",
    "DEFAULT_PARAMS",
    "Directions",
    "select_parameters",
    "parameter_masks",
    "parameter_blocks",
    "filter_norms",
    "normalize_direction",
    "orthogonalize_against",
    "random_directions",
    "as_directions",
    "dot",
]

NORMALIZATIONS = ("filter", "filter-blocks", "layer", "none")


@dataclass
class Directions:
    """One or two directions (``vectors``) plus a JSON-able description of how they were made."""

    vectors: list[dict[str, Tensor]]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return list(self.vectors[0]) if self.vectors else []

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, k: int) -> dict[str, Tensor]:
        return self.vectors[k]

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        return iter(self.vectors)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Directions:
        vecs = [{k: v.to(device=device, dtype=dtype) for k, v in d.items()} for d in self.vectors]
        return Directions(vecs, dict(self.info))


def as_directions(obj: Directions | Sequence[Mapping[str, Tensor]], **info: Any) -> Directions:
    """Wrap a list of ``{name: tensor}`` dicts (e.g. Hessian eigenvectors) as :class:`Directions`."""
    if isinstance(obj, Directions):
        return obj
    vecs = [dict(d) for d in obj]
    if not vecs or not 1 <= len(vecs) <= 2:
        raise UserError(f"a landscape needs 1 or 2 directions, got {len(vecs)}")
    if any(set(v) != set(vecs[0]) for v in vecs):
        raise UserError("all directions must perturb the same parameters")
    return Directions(vecs, {"kind": "given", "params": list(vecs[0]), **info})


def parameter_masks(model: nn.Module, names: Sequence[str]) -> dict[str, Tensor]:
    """``{name: mask}`` for each parameter whose module holds a same-shaped ``mask`` buffer."""
    out: dict[str, Tensor] = {}
    for name in names:
        prefix, _, _ = name.rpartition(".")
        module = model.get_submodule(prefix) if prefix else model
        mask = module._buffers.get("mask") if hasattr(module, "_buffers") else None
        param = model.get_parameter(name)
        if mask is not None and tuple(mask.shape) == tuple(param.shape):
            out[name] = mask
    return out


def parameter_blocks(model: nn.Module, names: Sequence[str]) -> dict[str, list[int]]:
    """Column block widths for ``filter-blocks``: ``hidden.weight`` → [input_size, hidden_size]."""
    out: dict[str, list[int]] = {}
    if "hidden.weight" in names and hasattr(model, "input_size"):
        w = model.get_parameter("hidden.weight")
        i = int(model.input_size)
        if w.dim() == 2 and 0 < i < w.shape[1]:
            out["hidden.weight"] = [i, w.shape[1] - i]
    return out


def _filters(t: Tensor, blocks: Sequence[int] | None) -> list[Tensor]:
    """Views of ``t`` as (n_filters, filter_size) matrices, one per column block."""
    if t.dim() < 2:
        return [t.reshape(1, -1)]
    if blocks is None:
        return [t.reshape(t.shape[0], -1)]
    return list(t.split(list(blocks), dim=1))


def filter_norms(
    t: Tensor, mask: Tensor | None = None, blocks: Sequence[int] | None = None, layer: bool = False
) -> Tensor:
    """Euclidean norm of every filter of ``t ⊙ mask`` (float64): shape (n_filters, n_blocks).

    ``layer`` treats the whole tensor as one filter; 1-D tensors are always one filter.
    """
    x = t.detach().to(torch.float64)
    if mask is not None:
        x = x * (mask.to(x) != 0)
    if layer or x.dim() < 2:
        return x.norm().reshape(1, 1)
    return torch.stack([f.norm(dim=1) for f in _filters(x, blocks)], dim=1)


def normalize_direction(
    direction: Mapping[str, Tensor],
    theta: Mapping[str, Tensor],
    *,
    normalization: str = "filter",
    masks: Mapping[str, Tensor] | None = None,
    blocks: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, Tensor]:
    """Scale ``direction`` filter by filter to the norms of ``theta`` (module docstring); float64 out.

    Masked entries are zeroed; a filter whose θ or draw has zero norm becomes zero.
    """
    if normalization not in NORMALIZATIONS:
        raise UserError(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")
    masks = masks or {}
    blocks = blocks or {}
    out: dict[str, Tensor] = {}
    for name, raw in direction.items():
        d = raw.detach().to(torch.float64).clone()
        mask = masks.get(name)
        if mask is not None:
            d = d * (mask.to(d) != 0)
        if normalization == "none":
            out[name] = d
            continue
        th = theta[name].detach().to(torch.float64)
        if mask is not None:
            th = th * (mask.to(th) != 0)
        if normalization == "layer" or d.dim() < 2:
            nd, nt = d.norm(), th.norm()
            out[name] = d * (nt / nd) if nd > 0 else torch.zeros_like(d)
            continue
        use_blocks = blocks.get(name) if normalization == "filter-blocks" else None
        parts = []
        for fd, ft in zip(_filters(d, use_blocks), _filters(th, use_blocks), strict=True):
            nd = fd.norm(dim=1, keepdim=True)
            nt = ft.norm(dim=1, keepdim=True)
            scale = torch.where(nd > 0, nt / torch.where(nd > 0, nd, 1.0), 0.0)
            parts.append(fd * scale)
        out[name] = (torch.cat(parts, dim=1) if use_blocks else parts[0]).reshape(d.shape)
    return out


def dot(a: Mapping[str, Tensor], b: Mapping[str, Tensor]) -> Tensor:
    """⟨a, b⟩ over all shared parameters, in float64."""
    return sum((a[k].to(torch.float64) * b[k].to(torch.float64)).sum() for k in a)  # type: ignore[return-value]


def orthogonalize_against(e: Mapping[str, Tensor], d: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """e − (⟨e, d⟩ / ⟨d, d⟩) d (Gram–Schmidt over the concatenated parameter vector)."""
    c = dot(e, d) / dot(d, d)
    return {k: e[k] - c * d[k] for k in e}


def random_directions(
    model: nn.Module,
    params: Sequence[str] | None = None,
    *,
    normalization: str = "filter",
    seed: int = 0,
    dims: int = 2,
    orthogonalize: bool = False,
    masks: Mapping[str, Tensor] | None = None,
    blocks: Mapping[str, Sequence[int]] | None = None,
) -> Directions:
    """``dims`` seeded Gaussian directions over the parameters ``params`` (globs) of ``model``.

    Draws come from ``torch.Generator().manual_seed(seed)`` in float64 on the CPU, d first then e,
    parameters in model order, so d is the same for a 1-D and a 2-D landscape with the same seed and
    does not depend on the device or dtype. ``masks`` defaults to :func:`parameter_masks`, ``blocks``
    (column split for ``filter-blocks``) to :func:`parameter_blocks`. Tensors are returned in each
    parameter's dtype and device.
    """
    if dims not in (1, 2):
        raise UserError(f"dims must be 1 or 2, not {dims}")
    if normalization not in NORMALIZATIONS:
        raise UserError(f"unknown normalization {normalization!r}; choose one of {', '.join(NORMALIZATIONS)}")
    names = select_parameters(model, params)
    theta = parameter_point(model, names)
    masks = parameter_masks(model, names) if masks is None else dict(masks)
    blocks = parameter_blocks(model, names) if blocks is None else {k: list(v) for k, v in blocks.items()}
    if normalization == "filter-blocks" and not blocks and any(t.dim() >= 2 for t in theta.values()):
        raise UserError(
            "filter-blocks needs a column split (input | recurrent); none is known for "
            f"{', '.join(names)}: use --normalization filter"
        )
    g = torch.Generator().manual_seed(int(seed))
    vectors = []
    for _ in range(dims):
        raw = {n: torch.randn(t.shape, generator=g, dtype=torch.float64) for n, t in theta.items()}
        vectors.append(
            normalize_direction(raw, theta, normalization=normalization, masks=masks, blocks=blocks)
        )
    if orthogonalize and dims == 2:
        vectors[1] = orthogonalize_against(vectors[1], vectors[0])
    vectors = [{n: v[n].to(dtype=theta[n].dtype, device=theta[n].device) for n in names} for v in vectors]
    exact = [normalization != "none"] * dims
    if orthogonalize and dims == 2:
        exact[1] = False
    info = {
        "kind": "random",
        "distribution": "gaussian",
        "params": names,
        "normalization": normalization,
        "seed": int(seed),
        "dims": dims,
        "orthogonalized": bool(orthogonalize and dims == 2),
        "exact_filter_norms": exact,
        "masked": sorted(masks),
        "blocks": blocks if normalization == "filter-blocks" else {},
        "note": (
            "e was orthogonalised against d after filter normalisation, so e's filter norms are no "
            "longer exactly those of θ"
            if orthogonalize and dims == 2
            else ""
        ),
    }
    return Directions(vectors, info)
