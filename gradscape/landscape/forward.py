"""The inference forward of a landscape: f(θ_p) at chunks of points, batched (vmap) or one at a time.

Every point is evaluated with :func:`torch.func.functional_call` on a parameter dict built by
:func:`~gradscape.landscape.parameters.perturbed_params`; the model is never written to. Values are
f(θ_p) = (1/N) Σ_b n_b L(model_{θ_p}(x_b), y_b) over fixed batches (x_b, y_b) of n_b samples (the
same weighting for the accuracy).

Recurrent networks run with a forward-only ``ops`` (:class:`ForwardOps`): the same step function,
but ``ops.spike`` returns Θ(x) directly instead of Θ(x) + (F(x) − stopgrad F(x)), whose value is
identical for finite x; the surrogate primitive F (two ``erf`` per step for the double Gaussian) only
matters for gradients. A non-finite membrane gives a NaN spike, so divergence reaches the loss.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from gradscape.landscape.directions import Directions, as_directions
from gradscape.landscape.memory import output_bytes
from gradscape.landscape.parameters import parameter_point, perturbed_params
from gradscape.models.ops import ForwardOps, TorchOps

__all__ = ["ForwardOps", "forward_view", "eval_mode", "PointEvaluator", "spike_flips"]


def forward_view(model: nn.Module) -> nn.Module:
    """A shallow copy of ``model`` sharing its parameters but running :class:`ForwardOps`."""
    ops = getattr(model, "ops", None)
    if isinstance(ops, TorchOps) and not isinstance(ops, ForwardOps):
        view = copy.copy(model)
        object.__setattr__(view, "ops", ForwardOps(ops.surrogate))
        return view
    return model


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """``model`` in eval mode for the block; its previous mode afterwards."""
    was = model.training
    model.train(False)
    try:
        yield
    finally:
        model.train(was)


class PointEvaluator:
    """(loss, accuracy) at θ* (:meth:`centre`) and at chunks of grid points (:meth:`chunk`).

    The centre's forward also records the output size (``out_bytes``) and one point's per-step state
    (``step_bytes``), from which :func:`~gradscape.landscape.memory.auto_chunk_size` sizes chunks.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[Any, Tensor], Tensor],
        accuracy_fn: Callable[[Any, Tensor], Tensor] | None,
        theta: dict[str, Tensor],
        directions: list[dict[str, Tensor]],
        data: list[tuple[Tensor, Tensor, int]],
        model_kwargs: Mapping[str, Any],
    ) -> None:
        self.model, self.loss_fn, self.accuracy_fn = model, loss_fn, accuracy_fn
        self.theta, self.directions, self.data = theta, directions, data
        self.kwargs = dict(model_kwargs)
        self.total = sum(n for *_, n in data)
        self.recording, self.out_bytes, self.step_bytes = False, 0, 0

    def _metrics(self, params: dict[str, Tensor], x: Tensor, y: Tensor) -> Tensor:
        out = functional_call(self.model, params, (x,), self.kwargs)
        if self.recording:  # the centre's forward tells how much memory one point needs
            # a recurrent network's RunOutput: final state z_T (B, H), or the spikes (T, B, H)
            final = getattr(getattr(out, "final", None), "z", None)
            spikes = getattr(out, "spikes", None)
            per_step = (
                final if isinstance(final, Tensor) else (spikes[0] if isinstance(spikes, Tensor) else None)
            )
            step = per_step.numel() * per_step.element_size() if per_step is not None else 0
            self.out_bytes = max(self.out_bytes, output_bytes(out))
            self.step_bytes = max(self.step_bytes, step)
        loss = self.loss_fn(out, y).to(torch.float64)
        acc = (
            self.accuracy_fn(out, y).to(torch.float64)
            if self.accuracy_fn is not None
            else torch.full_like(loss, math.nan)
        )
        return torch.stack([loss, acc])

    def centre(self) -> np.ndarray:
        self.recording = True
        try:
            return self._accumulate(lambda x, y: self._metrics(self.theta, x, y)[None])[0]
        finally:
            self.recording = False

    def chunk(self, coefs: np.ndarray, sequential: bool) -> np.ndarray:
        dev = next(iter(self.theta.values())).device
        c = torch.as_tensor(coefs, dtype=torch.float64, device=dev)
        stacked = perturbed_params(self.theta, self.directions, c)
        # A one-point chunk runs unbatched (no vmap overhead); it always does, so results stay
        # reproducible chunk by chunk.
        if sequential or len(c) == 1:

            def run(x: Tensor, y: Tensor) -> Tensor:
                rows = [self._metrics({k: v[p] for k, v in stacked.items()}, x, y) for p in range(len(c))]
                return torch.stack(rows)

        else:
            batched = vmap(self._metrics, in_dims=(0, None, None))

            def run(x: Tensor, y: Tensor) -> Tensor:
                return batched(stacked, x, y)

        return self._accumulate(run)

    def _accumulate(self, run: Callable[[Tensor, Tensor], Tensor]) -> np.ndarray:
        acc = None
        with torch.no_grad():
            for x, y, n in self.data:
                v = run(x, y) * n
                acc = v if acc is None else acc + v
        vals = (acc / self.total).cpu().numpy()  # type: ignore[union-attr]
        vals[~np.isfinite(vals[:, 0]), 1] = np.nan
        return vals


def spike_flips(
    model: nn.Module,
    directions: Directions | Sequence[Mapping[str, Tensor]],
    coefs: np.ndarray,
    inputs: Tensor,
    *,
    model_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare batched (vmap) and sequential forwards of a spiking model at points ``coefs`` (P, dims).

    Returns the number of hidden spikes z_t that differ (``flips``) out of ``total`` and the largest
    absolute readout difference; at short T in float64 both should be 0.
    """
    dirs = as_directions(directions)
    kwargs = {**dict(model_kwargs or {"fast": True}), "keep_spikes": True}
    theta = parameter_point(model, dirs.names)
    vecs = [{n: d[n].to(theta[n]) for n in dirs.names} for d in dirs]
    fmodel = forward_view(model)
    stacked = perturbed_params(theta, vecs, torch.as_tensor(coefs, dtype=torch.float64))

    def run(p: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        o = functional_call(fmodel, p, (inputs,), kwargs)
        return o.spikes, o.outputs

    with torch.no_grad(), eval_mode(model):
        zb, ob = vmap(run)(stacked)
        seq = [run({k: v[p] for k, v in stacked.items()}) for p in range(len(coefs))]
    zs = torch.stack([s[0] for s in seq])
    os_ = torch.stack([s[1] for s in seq])
    return {
        "flips": int((zb != zs).sum()),
        "total": int(zs.numel()),
        "max_output_diff": float((ob - os_).abs().max()),
    }
