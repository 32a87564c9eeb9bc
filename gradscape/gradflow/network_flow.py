"""Whole-network gradient flow: ∂L/∂s_t by backpropagation and by products of network Jacobians.

The network state per sample is s_t = (z_t, neuron fields…, o_t) flattened to a vector of size
D = H (1 + k) + C (field-major: all z, then each neuron field over the H neurons, then o). One network
step s_t = F(i_t, s_{t−1}) is ``model.step(ops, i_t, state, params)``; its Jacobian

    𝒥_t = ∂s_t/∂s_{t−1}  (D × D, recurrent path through W and the surrogate slope included)

comes from ``torch.func.jacrev`` of that step, vmapped over samples. With ℓ_t = ∂L/∂o_t the loss's
direct dependence on the readout at step t, the adjoint recursion

    g_T = ℓ_T,     g_{t−1} = g_t 𝒥_t + ℓ_{t−1}

gives g_t = ∂L/∂s_t; for a label-last loss (ℓ_t = 0 for t < T) this is g_{T−k} = ℓ_T 𝒥_T ⋯ 𝒥_{T−k+1}.
:func:`backprop_gradients` computes the same quantity by ordinary backpropagation through the loop.

The same products without forming 𝒥_t: g_t 𝒥_t is one vector-Jacobian product of the step
(``jacobian_gradients(..., matrix_free=True)``). The Lyapunov spectrum of the backward product lives
in :mod:`gradscape.gradflow.lyapunov`; :func:`checkpoint_gradient_flow` reports both for a trained
network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import jacrev, vjp, vmap

from gradscape.errors import UserError

__all__ = [
    "StateLayout",
    "state_layout",
    "flatten_state",
    "unflatten_state",
    "last_step_loss",
    "run_flat_states",
    "network_jacobian",
    "backprop_gradients",
    "jacobian_gradients",
    "jacobian_product",
    "lyapunov_exponents",
    "flat_step",
    "checkpoint_gradient_flow",
]

LossFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class StateLayout:
    """Where each part of the flat state vector lives: ``slices[name]`` for z, each field, o."""

    hidden: int
    outputs: int
    names: tuple[str, ...]
    neuron_fields: tuple[str, ...]

    @property
    def size(self) -> int:
        return self.hidden * (1 + len(self.neuron_fields)) + self.outputs

    def slice(self, name: str) -> slice:
        if name == "o":
            return slice(self.size - self.outputs, self.size)
        i = self.names.index(name)
        return slice(i * self.hidden, (i + 1) * self.hidden)

    def index(self, name: str, neuron: int) -> int:
        """Flat index of neuron ``neuron``'s entry of field ``name`` (``z`` or a neuron field)."""
        return self.slice(name).start + neuron


def state_layout(model: Any) -> StateLayout:
    fields = model.neuron.state_fields
    return StateLayout(model.hidden_size, model.output_size, ("z", *fields), tuple(fields))


def flatten_state(state: Any) -> Tensor:
    """NetState (z, neuron NamedTuple, o) → (..., D)."""
    return torch.cat([state.z, *state.neuron, state.o], dim=-1)


def unflatten_state(flat: Tensor, model: Any, state_cls: type | None = None) -> Any:
    """(..., D) → the network's state NamedTuple (``state_cls`` = ``type(model.initial_state(1))``)."""
    lay = state_layout(model)
    parts = flat.split([lay.hidden] * (1 + len(lay.neuron_fields)) + [lay.outputs], dim=-1)
    cls = state_cls or type(model.initial_state(1))
    return cls(parts[0], model.neuron.state(*parts[1:-1]), parts[-1])


def last_step_loss(targets: Tensor) -> LossFn:
    """L = mean over samples of −log softmax(o_T)[y] (per-step targets (T, B): the last step's;
    label −1 = excluded)."""
    y = targets[-1] if targets.dim() == 2 else targets

    def loss(outputs: Tensor) -> Tensor:
        return F.cross_entropy(outputs[-1], y.to(outputs.device), ignore_index=-1)

    return loss


@torch.no_grad()
def run_flat_states(model: Any, inputs: Tensor, ops: Any | None = None, initial: Any | None = None) -> Tensor:
    """s_0 … s_T flattened: (T+1, B, D), s_0 the initial state (zero unless ``initial`` is given)."""
    ops = ops or _model_ops(model)
    p = model.net_params()
    s = model.initial_state(inputs.shape[1]) if initial is None else initial
    out = [flatten_state(s)]
    for t in range(inputs.shape[0]):
        _, s = model.step(ops, inputs[t], s, p)
        out.append(flatten_state(s))
    return torch.stack(out)


def _model_ops(model: Any) -> Any:
    """The model's torch ops (its surrogate); the plain ``TorchOps()`` if it does not say."""
    ops = getattr(model, "ops", None)
    if ops is None:
        from gradscape.models.ops import TorchOps

        ops = TorchOps()
    return ops


def _detached_params(model: Any) -> Any:
    import dataclasses

    def det(v: Any) -> Any:
        if isinstance(v, Tensor):
            return v.detach()
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return dataclasses.replace(v, **{f.name: det(getattr(v, f.name)) for f in dataclasses.fields(v)})
        return v

    return det(model.net_params())


def flat_step(
    model: Any, *, ops: Any | None = None, params: Any | None = None
) -> Callable[[Tensor, Tensor], Tensor]:
    """The whole-network step on flat states, ``(s_{t−1} (B, D), i_t (B, I)) -> s_t (B, D)``, with
    detached parameters (or ``params``) and the model's surrogate ops: what 𝒥_t differentiates."""
    ops = ops or _model_ops(model)
    p = params if params is not None else _detached_params(model)
    cls = type(model.initial_state(1))

    def step(s: Tensor, i: Tensor) -> Tensor:
        _, new = model.step(ops, i, unflatten_state(s, model, cls), p)
        return flatten_state(new)

    return step


def network_jacobian(
    model: Any, i_t: Tensor, s_prev: Tensor, *, ops: Any | None = None, params: Any | None = None
) -> Tensor:
    """𝒥_t = ∂s_t/∂s_{t−1} per sample: i_t (B, I), s_prev (B, D) → (B, D, D)."""
    return vmap(jacrev(flat_step(model, ops=ops, params=params), argnums=0))(s_prev, i_t)


def backprop_gradients(model: Any, inputs: Tensor, loss_fn: LossFn, *, ops: Any | None = None) -> Tensor:
    """g_t = ∂L/∂s_t for t = 0 … T by backpropagation through the network loop: (T+1, B, D).

    ∂L/∂s_t is the derivative with respect to the state *as carried forward*: a zero perturbation
    ε_t (requiring grad) is added to s_t after the step that made it, the next step and the loss read
    s_t + ε_t, and g_t = ∂L/∂ε_t by ``torch.autograd.grad`` (so the model's ``.grad`` are untouched).
    Without ε, autograd's gradient at the node z_t would also count the same-step path z_t → o_t,
    which the state-space recursion attributes to s_{t−1}.
    """
    ops = ops or _model_ops(model)
    p = _detached_params(model)
    lay = state_layout(model)
    B = inputs.shape[1]
    s = model.initial_state(B)
    cls = type(s)
    eps = [
        torch.zeros(B, lay.size, dtype=s.z.dtype, device=s.z.device, requires_grad=True)
        for _ in range(inputs.shape[0] + 1)
    ]
    outs = []
    with torch.enable_grad():
        s = unflatten_state(flatten_state(s) + eps[0], model, cls)
        for t in range(inputs.shape[0]):
            _, s = model.step(ops, inputs[t], s, p)
            s = unflatten_state(flatten_state(s) + eps[t + 1], model, cls)
            outs.append(s.o)
        grads = torch.autograd.grad(loss_fn(torch.stack(outs)), eps, allow_unused=True)
    return torch.stack([torch.zeros_like(e) if g is None else g for g, e in zip(grads, eps, strict=True)])


def _local_output_grads(states: Tensor, loss_fn: LossFn, lay: StateLayout) -> Tensor:
    """ℓ_t = ∂L/∂o_t (direct dependence only) for t = 1 … T, as (T, B, C)."""
    outs = states[1:, :, lay.slice("o")].detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(loss_fn(outs), outs)
    return g


def jacobian_gradients(
    model: Any,
    inputs: Tensor,
    loss_fn: LossFn,
    *,
    ops: Any | None = None,
    lyapunov: int = 0,
    matrix_free: bool = False,
    progress: bool | None = False,
) -> dict[str, Tensor]:
    """g_t = ∂L/∂s_t (T+1, B, D) by the adjoint recursion over network Jacobians (module doc).

    ``matrix_free=False`` forms each dense 𝒥_t (``jacrev``, D backward passes per step) and
    multiplies; ``matrix_free=True`` computes the same row vector g_t 𝒥_t as one vector-Jacobian
    product of the step (``torch.func.vjp``), D times less work and what long runs use.

    With ``lyapunov = m > 0`` (dense route only) also the m finite-time exponents of the backward
    product from the coordinate start Q_0 = [e_1 … e_m], QR every step, no transient (``exponents``
    (B, m), per step) and their running sums ``log_growth`` (T, B, m): row k−1 holds Σ log|R_ii| over
    the last k steps. That start can hide the leading directions: the Lyapunov spectrum proper
    (seeded random start, transient) is :func:`gradscape.gradflow.lyapunov.lyapunov_spectrum`.
    """
    from tqdm import tqdm

    if matrix_free and lyapunov:
        raise UserError("the coordinate-start exponents need the dense route; use gradflow.lyapunov")
    ops = ops or _model_ops(model)
    lay = state_layout(model)
    params = _detached_params(model)
    states = run_flat_states(model, inputs, ops)
    T, B, D = states.shape[0] - 1, states.shape[1], states.shape[2]
    local = _local_output_grads(states, loss_fn, lay)
    g = torch.zeros(B, D, dtype=states.dtype, device=states.device)
    g[:, lay.slice("o")] = local[-1]
    grads = [g]
    step = flat_step(model, ops=ops, params=params)
    m = min(lyapunov, D)
    if m:
        Q = torch.eye(D, m, dtype=states.dtype, device=states.device).expand(B, D, m).contiguous()
        logs = []
        acc = torch.zeros(B, m, dtype=states.dtype, device=states.device)
    quiet = None if progress is None else not progress
    with torch.no_grad():
        for t in tqdm(range(T, 0, -1), disable=quiet, desc="network Jacobians", leave=False):
            if matrix_free:
                _, pullback = vjp(lambda s, t=t: step(s, inputs[t - 1]), states[t - 1])
                (g,) = pullback(g)
            else:
                J = network_jacobian(model, inputs[t - 1], states[t - 1], ops=ops, params=params)
                g = torch.einsum("bd,bde->be", g, J)
            if t - 1 >= 1:
                g = g.clone()
                g[:, lay.slice("o")] += local[t - 2]
            grads.append(g)
            if m:
                Q, R = torch.linalg.qr(J.transpose(-1, -2) @ Q)
                acc = acc + torch.diagonal(R, dim1=-2, dim2=-1).abs().log()
                logs.append(acc)
    out = {"gradients": torch.stack(grads[::-1])}
    if m:
        growth = torch.stack(logs)
        out["log_growth"] = growth
        out["exponents"] = growth[-1] / T
    return out


def jacobian_product(
    model: Any, inputs: Tensor, *, ops: Any | None = None, initial: Any | None = None
) -> Tensor:
    """P = 𝒥_T 𝒥_{T−1} ⋯ 𝒥_1 = ∂s_T/∂s_0 per sample (B, D, D), from network Jacobians.

    ``initial`` is the network state s_0 to start from (default: zero).
    """
    ops = ops or _model_ops(model)
    params = _detached_params(model)
    states = run_flat_states(model, inputs, ops, initial)
    P = None
    with torch.no_grad():
        for t in range(1, states.shape[0]):
            J = network_jacobian(model, inputs[t - 1], states[t - 1], ops=ops, params=params)
            P = J if P is None else J @ P
    if P is None:
        raise UserError("jacobian_product needs at least one time step")
    return P


def lyapunov_exponents(
    model: Any, inputs: Tensor, m: int = 5, *, ops: Any | None = None, seed: int = 0
) -> Tensor:
    """The m leading Lyapunov exponents per step of the backward product (B, m): the exponents of
    :func:`gradscape.gradflow.lyapunov.lyapunov_spectrum` (seeded random start, transient, VJPs)."""
    from gradscape.gradflow.lyapunov import lyapunov_spectrum

    return lyapunov_spectrum(model, inputs, m, seed=seed, ops=ops, neuron_bound=False).exponents


def gradient_norms(grads: Tensor) -> Tensor:
    """‖∂L/∂s_{T−k}‖₂ per sample, indexed by k = 0 … T: (T+1, B)."""
    return grads.flip(0).norm(dim=-1)


__all__ += ["gradient_norms"]


def checkpoint_gradient_flow(
    model: Any,
    inputs: Tensor,
    targets: Tensor,
    *,
    lyapunov: int = 5,
    seed: int = 0,
    progress: bool | None = False,
) -> tuple[dict[str, Any], np.ndarray]:
    """‖∂L/∂s_{T−k}‖ (label-last loss: NLL of the last step's readout) by backpropagation and by the
    adjoint recursion over network-Jacobian products (matrix-free); their largest relative
    disagreement; with ``lyapunov = m > 0`` the m leading Lyapunov exponents of the backward product
    (:func:`gradscape.gradflow.lyapunov.lyapunov_spectrum`, start seeded by ``seed``).

    Returns JSON-able statistics and the backprop norms (T+1, B) indexed by k.
    """
    loss = last_step_loss(targets)
    bp = backprop_gradients(model, inputs, loss)
    jr = jacobian_gradients(model, inputs, loss, matrix_free=True, progress=progress)
    nb, nj = gradient_norms(bp), gradient_norms(jr["gradients"])
    scale = nb.abs().amax(0, keepdim=True).clamp_min(torch.finfo(nb.dtype).tiny)
    rel = float(((nb - nj).abs() / scale).max())
    T = inputs.shape[0]
    med = np.median(nb.detach().cpu().numpy(), axis=1)
    ks = [k for k in (0, 1, 10, 100, 500, 1000, T) if k <= T]
    stats: dict[str, Any] = {
        "loss": "last-step NLL (targets of the last step)",
        "samples": int(inputs.shape[1]),
        "steps": int(T),
        "median_norm_at_k": {str(k): float(med[k]) for k in ks},
        "backprop_vs_jacobian_max_rel_diff": rel,
        "jacobian_route": "adjoint recursion g_(t-1) = g_t J_t by one vector-Jacobian product per step",
        "lyapunov_exponents_per_step": {"median": [], "per_sample": []},
    }
    m = min(lyapunov, state_layout(model).size)
    if m > 0 and T > 1:
        from gradscape.gradflow.lyapunov import lyapunov_spectrum

        res = lyapunov_spectrum(model, inputs, m, seed=seed, progress=progress)
        exps = res.exponents.detach().cpu().numpy()
        stats["lyapunov_exponents_per_step"] = {
            "median": np.median(exps, axis=0).tolist(),
            "per_sample": exps.tolist(),
        }
        stats["lyapunov"] = res.summary()
    finite = torch.isfinite(nb)
    if not bool(finite.all()):
        stats["nonfinite"] = int((~finite).sum())
    return stats, nb.detach().cpu().numpy()
