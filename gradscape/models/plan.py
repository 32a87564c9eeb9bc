"""Which simulation path a :class:`~gradscape.models.network.RecurrentNetwork` forward takes.

Three paths compute the same recurrence (they differ only in floating-point summation order):

- ``eager``: the plain step loop, x_t = W [i_t ; z_{t−1}] then the neuron's ``step`` (the reference).
- ``fast``: W_in i_t for all t in one GEMM, the readout after the loop; optionally the hidden update
  compiled (:func:`~gradscape.models.fastpath.make_step`), with its backward.
- ``sparse``: on a CPU, W_rec z_{t−1} and W_out z_t from the nonzero outputs
  (:mod:`gradscape.models.sparse`); under autograd the whole loop is one node with its own backward,
  the weight gradients Σ_t δ_tᵀ z_{t−1} from the nonzeros too
  (:mod:`gradscape.models.sparse_sequence`, exact incl. ``create_graph``); the neuron step as
  compiled kernels (:mod:`gradscape.models.step_kernels`) or, with ``compiled=False``, uncompiled.
  Under ``torch.func`` transforms, forward-mode AD, other devices or dtypes
  numpy cannot view, the forward takes the dense fast path instead.

:func:`plan_forward` is the one place that chooses among them from the device, the batch, whether
gradients are needed and what the caller allows; :meth:`RecurrentNetwork.forward` takes the plan, and
with no plan asks :func:`auto_plan`.
Every result that depends on the path records :meth:`ForwardPlan.describe`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from gradscape.errors import UserError

__all__ = ["ForwardPlan", "PATHS", "SPARSE_MIN_STEP_BYTES", "plan_forward", "auto_plan", "as_plan"]

PATHS = ("eager", "fast", "sparse")

#: The smallest per-step state (batch · hidden · element size) at which the spike-sparse path is
#: chosen on a CPU: below it the fixed cost of locating nonzeros outweighs the skipped products
#: (``benchmarks/bench_landscape.py``; the landscape evaluates such points one at a time). Training
#: uses the same size (``benchmarks/bench_train.py``: B 256, H 256 float32 is at the threshold).
SPARSE_MIN_STEP_BYTES = 256 << 10


@dataclass(frozen=True)
class ForwardPlan:
    """A chosen path. ``step_fn`` replaces the fast path's hidden update (e.g. the compiled one);
    ``update_fn`` the sparse path's neuron update (default: compiled); ``keep_spikes=False`` skips
    materialising the (T, B, H) spikes when only the readout matters."""

    path: str = "eager"
    step_fn: Callable | None = None
    update_fn: Callable | None = None
    keep_spikes: bool = True
    compiled: bool = False

    def __post_init__(self) -> None:
        if self.path not in PATHS:
            raise UserError(f"unknown forward path {self.path!r}; choose one of {', '.join(PATHS)}")

    def describe(self) -> dict[str, Any]:
        """JSON-able record of the plan for result files (resume exactness depends on it)."""
        return {"path": self.path, "compiled": self.compiled, "keep_spikes": self.keep_spikes}


_LEGACY = ("fast", "sparse", "step_fn", "update_fn", "keep_spikes")


def as_plan(plan: ForwardPlan | str | None, **legacy: Any) -> ForwardPlan:
    """A :class:`ForwardPlan` from a plan, a path name or None (eager; the network's forward asks
    :func:`auto_plan` instead when neither a plan nor a legacy path flag is given).

    ``legacy`` takes the keyword flags ``forward`` had before plans (``fast``, ``sparse``,
    ``step_fn``, ``update_fn``, ``keep_spikes``) and turns them into the same plan.
    """
    unknown = set(legacy) - set(_LEGACY)
    if unknown:
        raise TypeError(f"unexpected forward argument(s) {sorted(unknown)}")
    if plan is not None and any(k != "keep_spikes" for k in legacy):
        raise TypeError("give either plan= or the legacy fast/sparse/step_fn/update_fn flags, not both")
    keep = bool(legacy.get("keep_spikes", True))
    if isinstance(plan, ForwardPlan):
        return plan if "keep_spikes" not in legacy else replace(plan, keep_spikes=keep)
    if plan is not None:
        return ForwardPlan(path=str(plan), keep_spikes=keep)
    if legacy.get("sparse"):
        return ForwardPlan("sparse", update_fn=legacy.get("update_fn"), keep_spikes=keep, compiled=True)
    if legacy.get("fast") or legacy.get("step_fn") is not None:
        return ForwardPlan("fast", step_fn=legacy.get("step_fn"), keep_spikes=keep)
    return ForwardPlan(keep_spikes=keep)


def plan_forward(
    model: Any,
    *,
    grad: bool,
    batch: int | None = None,
    device: torch.device | str | None = None,
    fast: bool = True,
    compile: bool | None = None,
    sparse: bool = True,
    keep_spikes: bool = True,
) -> ForwardPlan:
    """The path for ``model`` on ``batch`` sequences on ``device`` (default: where its weights are).

    ``sparse`` (default) allows the spike-sparse path, taken on a CPU, for a spiking neuron, when one
    step's state is at least :data:`SPARSE_MIN_STEP_BYTES`, with or without gradients; there
    ``compile`` (default: yes) compiles the neuron's step kernels
    (:mod:`gradscape.models.step_kernels`; their cold start is seconds, repaid within the first
    batches of an S-MNIST pass), ``compile=False`` runs them uncompiled. Otherwise the dense fast path
    runs, its hidden update compiled only when ``compile`` is True; ``fast=False`` asks for the eager
    loop.
    """
    first = next(model.parameters())
    dev = torch.device(device) if device is not None else first.device
    if sparse and _sparse_pays(model, batch, dev, first.element_size()):
        if compile is False:
            from gradscape.models.fastpath import eager_update

            return ForwardPlan("sparse", update_fn=eager_update, keep_spikes=keep_spikes)
        return ForwardPlan("sparse", keep_spikes=keep_spikes, compiled=True)
    if not fast:
        return ForwardPlan("eager", keep_spikes=keep_spikes)
    if compile:
        from gradscape.models.fastpath import make_step

        step_fn = make_step(model.neuron, compile=True)
        return ForwardPlan("fast", step_fn=step_fn, keep_spikes=keep_spikes, compiled=True)
    return ForwardPlan("fast", keep_spikes=keep_spikes)


def auto_plan(model: Any, inputs: torch.Tensor, *, grad: bool, keep_spikes: bool = True) -> ForwardPlan:
    """The path ``model(inputs)`` takes without a plan: the spike-sparse path with compiled step
    kernels (gradients included) where :func:`plan_forward` would take it, the dense fast path for
    other large steps, the eager loop for small ones (where the paths cost the same and the eager
    loop is the reference). Double backward, ``torch.func`` transforms and forward-mode AD work on
    every path (the sparse one recomputes or falls back, see :mod:`gradscape.models.sparse_sequence`)."""
    first = next(model.parameters())
    batch = inputs.shape[1]
    if _sparse_pays(model, batch, inputs.device, first.element_size()):
        return ForwardPlan("sparse", keep_spikes=keep_spikes, compiled=True)
    if batch * int(getattr(model, "hidden_size", 0)) * first.element_size() >= SPARSE_MIN_STEP_BYTES:
        return ForwardPlan("fast", keep_spikes=keep_spikes)
    return ForwardPlan("eager", keep_spikes=keep_spikes)


def _sparse_pays(model: Any, batch: int | None, dev: torch.device, element_size: int) -> bool:
    hidden = int(getattr(model, "hidden_size", 0))
    spiking = bool(getattr(getattr(model, "neuron", None), "spiking", False))  # an LSTM's outputs are dense
    large = batch is not None and batch * hidden * element_size >= SPARSE_MIN_STEP_BYTES
    return dev.type == "cpu" and spiking and large
