"""The spike-sparse training pass: the whole time loop as one autograd node with its own backward.

For a recurrent layer x_t = W_in i_t + W_rec z_{t−1}, (z_t, s_t) = step(x_t, s_{t−1}, θ) and the
readout drive y_t = W_out z_t, write A = [W_recᵀ | W_outᵀ] (H × N) so that z_t A = [W_rec z_t | y_t]
is one product per step. Backpropagation through time is then, for t = T−1 … 0,

    G_{t+1} = [x̄_{t+1} | ȳ_t]                                       (B × N; x̄_T = 0)
    z̄_t     = G_{t+1} Aᵀ + ∂L/∂z_t (outside)                       one dense GEMM per step
    (x̄_t, s̄_{t−1}, θ̄_t) = vjp of step at (x_t, s_{t−1}, θ) applied to (z̄_t, s̄_t)
    Ā = Σ_k z_kᵀ G_k,   W̄_in = Σ_t x̄_tᵀ i_t,   θ̄ = Σ_t θ̄_t

(z_0 ≡ the initial output, whose row of G is [x̄_0 | 0]). The forward computes z_t A from z_t's
nonzeros only (:class:`~gradscape.models.sparse.SparseProduct`), and Ā, the weight gradient, from
them too: per step from the nonzeros the native gather kept
(:func:`~gradscape.models.sparse.add_transposed_product`), or one product per chunk of steps on the
numpy path (:func:`~gradscape.models.sparse.nonzero_transposed_product`); only z̄_t stays dense
(the surrogate gives every neuron a gradient). The step and its VJP are the neuron's own ``step``,
as two kernels (:mod:`gradscape.models.step_kernels`), so per step the backward is one GEMM and one
fused kernel, with no autograd node per operation.

Both loops run with subnormal floats flushed to zero on their thread
(:func:`~gradscape.models.denormals.denormals_flushed`): trained networks carry subnormal states and
cotangents, and each costs the step kernels a microcode assist.

Exact: values and gradients equal the eager loop's up to floating-point summation order (and values
below 2⁻¹²⁶ read as 0: an absolute change under 1.2 × 10⁻³⁸ in float32). Under
``create_graph=True`` (Hessian-vector products) the backward recomputes the pass with the plain
differentiable loop and differentiates that, so second derivatives are exact too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from gradscape.models import sparse
from gradscape.models.denormals import denormals_flushed
from gradscape.models.heap import keep_freed_memory
from gradscape.models.neurons.base import Neuron
from gradscape.models.ops import TorchOps
from gradscape.models.step_kernels import step_kernels, tensor_fields

__all__ = ["SequenceResult", "sparse_sequence", "CHUNK"]

#: steps per deferred weight-gradient product (Ā over a chunk of z_k and G_k)
CHUNK = 16


class SequenceResult(NamedTuple):
    """``drives`` y_t = W_out z_t (T, B, C); ``spikes`` z (T, B, H) or None; ``z``, ``state``: the
    final output and neuron state; ``states``: every step's state (each field (T, B, H)) or None."""

    drives: Tensor
    spikes: Tensor | None
    z: Tensor
    state: Any
    states: Any


@dataclass(frozen=True)
class _Config:
    neuron: Neuron
    ops: TorchOps
    params: Any  # the parameter dataclass; its tensor fields are replaced by the θ inputs
    names: tuple[str, ...]
    state_type: type
    split: int
    keep_spikes: bool
    record: bool
    compile: bool


def sparse_sequence(
    neuron: Neuron,
    ops: TorchOps,
    inputs: Tensor,
    w_in: Tensor,
    table: Tensor,
    params: Any,
    z0: Tensor,
    state0: Any,
    *,
    keep_spikes: bool = True,
    record: bool = False,
    compile: bool = True,
) -> SequenceResult:
    """Run the layer over ``inputs`` (T, B, I) with input weights ``w_in`` (H × I), the product
    table ``table`` = A = [W_recᵀ | W_outᵀ] (H × N), neuron parameters ``params``, initial output
    ``z0`` and state ``state0``; differentiable in all of them (module docstring)."""
    names = tensor_fields(params)
    cfg = _Config(neuron, ops, params, names, type(state0), w_in.shape[0], keep_spikes, record, compile)
    theta = [getattr(params, n) for n in names]
    out = _Sequence.apply(cfg, inputs, w_in, table, z0, *state0, *theta)
    k = len(state0)
    drives, rest = out[0], list(out[1:])
    spikes = rest.pop(0) if keep_spikes else None
    z, state = rest[0], cfg.state_type(*rest[1 : 1 + k])
    states = cfg.state_type(*rest[1 + k :]) if record else None
    return SequenceResult(drives, spikes, z, state, states)


class _Pass:
    """What the forward keeps for the backward: the kernels, x_t, s_{t−1}, the nonzeros of every z_k
    (:class:`~gradscape.models.sparse.NativeRows` with ``native``, else flat indices and values; None
    where the product was dense) and the dense z_k where needed (a dense product's, for Zᵀ G; all of
    them when the spikes are returned)."""

    def __init__(
        self, kernels: Any, xs: list, states: list, nonzeros: list, zs: dict[int, Tensor], native: bool
    ) -> None:
        self.kernels, self.xs, self.states, self.nonzeros, self.zs = kernels, xs, states, nonzeros, zs
        self.native = native


class _Sequence(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, cfg: _Config, inputs: Tensor, w_in: Tensor, table: Tensor, z0: Tensor, *rest: Tensor
    ):
        ctx.set_materialize_grads(False)
        keep_freed_memory()  # the per-step tensors of the last pass are reused, not page-faulted in
        with denormals_flushed():
            return _forward(ctx, cfg, inputs, w_in, table, z0, *rest)

    @staticmethod
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        cfg: _Config = ctx.cfg
        if torch.is_grad_enabled():  # create_graph: differentiate the plain loop, itself differentiable
            return (None, *_recompute(cfg, ctx.saved_tensors, ctx.needs_input_grad[1:], grads))
        with denormals_flushed():
            return (None, *_backward(cfg, ctx.run, ctx.saved_tensors, ctx.needs_input_grad[1:], grads))


def _forward(
    ctx: Any, cfg: _Config, inputs: Tensor, w_in: Tensor, table: Tensor, z0: Tensor, *rest: Tensor
) -> tuple[Tensor, ...]:
    """:meth:`_Sequence.forward`'s loop: x_t, z_t, s_t and z_t A per step, kept for the backward."""
    k = len(cfg.state_type._fields)
    s0, theta = tuple(rest[:k]), tuple(rest[k:])
    steps, batch, _ = inputs.shape
    h = cfg.split
    product = sparse.SparseProduct(table, batch, sparse.TRAINING_MAX_DENSITY)
    drives = inputs.new_empty(steps, batch, table.shape[1] - h)
    nonzeros: list = []
    prod = product(z0, nonzeros)
    kernels = step_kernels(
        cfg.neuron,
        cfg.ops,
        cfg.params,
        inputs.new_zeros(batch, h),
        prod[:, :h],
        cfg.state_type(*s0),
        compile=cfg.compile,
    )
    forward, (consts, _) = kernels.forward, kernels.prepare(theta)
    zs, xs, states, s, z = {0: z0}, [], [s0], s0, z0
    for t, d_t in enumerate(sparse.input_drives(inputs, w_in)):  # x_t = d_t + r_t: the kernel's
        x, z, *s = forward(d_t, prod[:, :h], *s, *theta, *consts)
        prod = product(z, nonzeros)
        drives[t] = prod[:, h:]
        if cfg.keep_spikes or nonzeros[-1] is None:
            zs[t + 1] = z
        xs.append(x)
        states.append(s)
    ctx.cfg = cfg
    ctx.run = _Pass(kernels, xs, states, nonzeros, zs, product.native)
    ctx.save_for_backward(inputs, w_in, table, z0, *s0, *theta)
    out = [drives]
    if cfg.keep_spikes:
        out.append(torch.stack([zs[t] for t in range(1, steps + 1)]))
    # copies: returning a tensor the pass keeps would tie it, its grad_fn and the pass in a cycle
    out += [z.clone(), *(f.clone() for f in states[-1])]
    if cfg.record:
        out += [torch.stack(f) for f in zip(*states[1:], strict=True)]
    return tuple(out)


def _unpack_grads(cfg: _Config, grads: tuple[Tensor | None, ...]) -> tuple[Any, ...]:
    k = len(cfg.state_type._fields)
    g = list(grads)
    g_drives = g.pop(0)
    g_spikes = g.pop(0) if cfg.keep_spikes else None
    g_z, g_state = g[0], g[1 : 1 + k]
    g_states = g[1 + k :] if cfg.record else [None] * k
    return g_drives, g_spikes, g_z, g_state, g_states


def _backward(
    cfg: _Config,
    run: _Pass,
    saved: tuple[Tensor, ...],
    needs: tuple[bool, ...],
    grads: tuple[Tensor | None, ...],
) -> list[Tensor | None]:
    """The loop of the module docstring, chunk by chunk of steps [t0, t0 + m).

    One buffer G ((m + 1)·B × N) holds the chunk's rows G_k = [x̄_k | ȳ_{k−1}], k = t0 … t0 + m: step t
    computes z̄_t from row block k = t + 1 (one GEMM with Aᵀ) and writes x̄_t into block t; after the
    chunk, Ā += z_kᵀ G_k from the nonzeros. With the native kernels that is per step, each z_k once
    with its whole row: k = t0 + 1 … t0 + m (block m holds x̄_{t0+m} from the chunk above and
    ȳ_{t0+m−1}), and k = 0 in the last chunk. On the numpy path it is one product for
    z_{t0} … z_{t0+m} with block 0's ȳ and block m's x̄ zeroed (they belong to the neighbouring
    chunks, which count them). Then W̄_inᵀ += I_cᵀ X̄_c."""
    k = len(cfg.state_type._fields)
    inputs, w_in, table = saved[:3]
    theta = saved[4 + k :]
    g_drives, g_spikes, g_z, g_state, g_states = _unpack_grads(cfg, grads)
    steps, batch, n_in = inputs.shape
    h = cfg.split
    table_t = table.T  # a view: the GEMM reads A transposed
    vjp, (_, consts) = run.kernels.vjp, run.kernels.prepare(theta)
    d_table = torch.zeros_like(table)
    d_w_in = w_in.new_zeros(n_in, h) if needs[1] else None  # W̄_inᵀ: its GEMM reads X̄ row by row
    d_inputs = torch.zeros_like(inputs) if needs[0] else None
    d_theta = [torch.zeros_like(p) for p in theta]
    cs = tuple(
        g if g is not None else torch.zeros_like(s) for g, s in zip(g_state, run.states[-1], strict=True)
    )
    g_buf = table.new_zeros((CHUNK + 1) * batch, table.shape[1])  # reused: fresh MBs would page-fault
    recorded = any(r is not None for r in g_states)
    gx: Tensor | None = None
    for t0 in range(CHUNK * ((steps - 1) // CHUNK), -1, -CHUNK):
        m = min(CHUNK, steps - t0)
        g = g_buf[: (m + 1) * batch].view(m + 1, batch, -1)
        _put(g[m, :, :h], gx)  # x̄_{t0+m}, from the chunk above (0 at the top)
        _put(g[1:, :, h:], None if g_drives is None else g_drives[t0 : t0 + m])
        g[0, :, h:].zero_()
        for i in range(m - 1, -1, -1):
            t = t0 + i
            cz = g[i + 1] @ table_t
            if g_spikes is not None:
                cz.add_(g_spikes[t])
            if t == steps - 1 and g_z is not None:
                cz.add_(g_z)
            if recorded:
                cs = tuple(c if r is None else c + r[t] for c, r in zip(cs, g_states, strict=True))
            out = vjp(run.xs[t], *run.states[t], *theta, cz, *cs, *consts)
            gx, cs = out[0], out[1 : 1 + k]
            torch._foreach_add_(d_theta, out[1 + k :])
            g[i, :, :h].copy_(gx)
        if run.native:  # per step: z_k once, with its whole row G_k (block m's x̄ is this chunk's)
            first = 0 if t0 == 0 else 1  # z_{t0} (t0 > 0) with G_{t0} after the chunk below fills it
            _add_step_products(d_table, run, t0, first, m + 1, g)
        else:  # one product for the chunk: block m's x̄ was counted with block 0 of the chunk above
            g[m, :, :h].zero_()
            _add_chunk_product(d_table, run, t0, m + 1, h, g)
        x_bar = g[:m, :, :h].reshape(-1, h)
        if d_w_in is not None:
            d_w_in.addmm_(inputs[t0 : t0 + m].reshape(-1, n_in).T, x_bar)
        if d_inputs is not None:
            d_inputs[t0 : t0 + m] = (x_bar @ w_in).reshape(m, batch, n_in)
    d_z0 = gx @ table[:, :h].T if needs[3] and gx is not None else None
    d_s0 = [c if need else None for c, need in zip(cs, needs[4 : 4 + k], strict=True)]
    return [d_inputs, None if d_w_in is None else d_w_in.T, d_table, d_z0, *d_s0, *d_theta]


def _put(dst: Tensor, src: Tensor | None) -> None:
    if src is None:
        dst.zero_()
    else:
        dst.copy_(src)


def _dense(run: _Pass, k: int, h: int) -> Tensor:
    """z_k, dense (rebuilt from its nonzeros where the forward did not keep it)."""
    z = run.zs.get(k)
    if z is None:
        flat, values = run.nonzeros[k]
        batch = run.xs[0].shape[0]
        z = values.new_zeros(batch * h)
        z[torch.from_numpy(flat)] = values
        z = z.view(batch, h)
    return z


def _add_step_products(d_table: Tensor, run: _Pass, k0: int, first: int, n: int, g: Tensor) -> None:
    """Ā += z_kᵀ G_k for k = k0 + first … k0 + n − 1 (G_k = ``g[k − k0]``), each from the nonzeros
    the native gather kept (a dense z_k by a GEMM)."""
    for i in range(first, n):
        nz = run.nonzeros[k0 + i]
        if nz is None:
            d_table.addmm_(run.zs[k0 + i].T, g[i])
        else:
            sparse.add_transposed_product(d_table, nz, g[i])


def _add_chunk_product(d_table: Tensor, run: _Pass, k0: int, n: int, h: int, g: Tensor) -> None:
    """Ā += Σ_{k = k0}^{k0+n−1} z_kᵀ G_k (G_k = ``g[k − k0]``) from the nonzeros numpy found, one
    product for the chunk (a dense one where a step or the chunk is above the density caps)."""
    nonzeros = run.nonzeros[k0 : k0 + n]
    flat_g = g.view(-1, g.shape[-1])
    block = g.shape[1] * h  # entries of one z_k
    count = sum(0 if nz is None else len(nz[0]) for nz in nonzeros)
    if any(nz is None for nz in nonzeros) or count > sparse.WEIGHT_GRAD_MAX_DENSITY * n * block:
        z = torch.stack([_dense(run, k, h) for k in range(k0, k0 + n)]).reshape(-1, h)
        d_table.add_(sparse.transposed_product(z, flat_g, sparse.WEIGHT_GRAD_MAX_DENSITY))
        return
    flat = np.concatenate([nz[0] + i * block for i, nz in enumerate(nonzeros)])
    values = torch.cat([nz[1] for nz in nonzeros])
    d_table.add_(sparse.nonzero_transposed_product(flat, values, h, flat_g))


def _recompute(
    cfg: _Config, saved: tuple[Tensor, ...], needs: tuple[bool, ...], grads: tuple[Tensor | None, ...]
) -> list[Tensor | None]:
    """Gradients of the plain loop (:func:`_reference`) at the saved inputs, with their graph."""
    with torch.enable_grad():
        outs = _reference(cfg, *saved)
    pairs = [(o, g) for o, g in zip(outs, grads, strict=True) if g is not None]
    wrt = [(i, x) for i, (x, need) in enumerate(zip(saved, needs, strict=True)) if need]
    res: list[Tensor | None] = [None] * len(saved)
    if pairs and wrt:
        got = torch.autograd.grad(
            [o for o, _ in pairs],
            [x for _, x in wrt],
            [g for _, g in pairs],
            create_graph=True,
            allow_unused=True,
        )
        for (i, _), g in zip(wrt, got, strict=True):
            res[i] = g
    return res


def _reference(
    cfg: _Config, inputs: Tensor, w_in: Tensor, table: Tensor, z0: Tensor, *rest: Tensor
) -> list[Tensor]:
    """The same outputs as :meth:`_Sequence.forward`, by the plain differentiable loop."""
    k = len(cfg.state_type._fields)
    s = cfg.state_type(*rest[:k])
    params = dataclasses.replace(cfg.params, **dict(zip(cfg.names, rest[k:], strict=True)))
    h = cfg.split
    z, ys, zs, states = z0, [], [], []
    for d_t in (inputs @ w_in.T).unbind(0):
        z, s = cfg.neuron.step(cfg.ops, d_t + z @ table[:, :h], s, params)
        ys.append(z @ table[:, h:])
        zs.append(z)
        states.append(s)
    out = [torch.stack(ys)]
    if cfg.keep_spikes:
        out.append(torch.stack(zs))
    out += [z, *s]
    if cfg.record:
        out += [torch.stack(f) for f in zip(*states, strict=True)]
    return out
