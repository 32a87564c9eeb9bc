"""One recurrent hidden layer of any :class:`~gradscape.models.neurons.Neuron` plus a leaky readout.

Time-major tensors: input ``i`` has shape (T, B, I). With W = [W_in | W_rec] (one bias-free map over
input columns first, then the previous hidden outputs, optionally multiplied by a fixed mask M):

    x_t = (W ⊙ M) [i_t ; z_{t−1}]
    z_t, s_t = step(ops, x_t, s_{t−1}, params)
    o_t = α_o o_{t−1} + (1 − α_o) W_out z_t,     α_o = exp(−1/|τ_out|) per class

The functional core is :func:`network_step`; :class:`RecurrentNetwork` is a thin ``nn.Module`` that
holds the parameters and loops it over time. Parameter names (used by checkpoints and by the
landscape's parameter globs): ``hidden.weight`` (W), ``hidden.<field>`` for each trainable neuron
parameter (e.g. ``hidden.omega``), ``out.weight`` (W_out), ``out.tau_mem`` (τ_out); buffer
``hidden.mask`` when a mask is set.

The analysis protocol (what :mod:`gradscape.gradflow` and :mod:`gradscape.landscape` rely on) is:
``model.neuron``, ``model.net_params()``, ``model.initial_state(batch)``, ``model.step(ops, i_t,
state, params)`` and ``model(i, record=...) -> RunOutput``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from gradscape.errors import UserError
from gradscape.models.denormals import denormals_flushed
from gradscape.models.neurons import Distribution, Neuron, Normal, get_neuron, parse_distribution
from gradscape.models.ops import TorchOps
from gradscape.models.plan import ForwardPlan, as_plan, auto_plan
from gradscape.models.sparse import SparseProduct, input_drives, sparse_possible, sparse_training_possible
from gradscape.models.sparse_sequence import sparse_sequence
from gradscape.models.step_kernels import step_kernels
from gradscape.models.surrogates import Surrogate, derivative_possible

__all__ = ["NetState", "NetParams", "RunOutput", "network_step", "RecurrentNetwork"]


class NetState(NamedTuple):
    """Whole-network state s_t = (z_t, neuron state, o_t)."""

    z: Tensor
    neuron: Any
    o: Tensor


@dataclass(frozen=True)
class NetParams:
    """Everything :func:`network_step` reads: effective W (mask applied), neuron params, readout."""

    weight: Tensor
    neuron: Any
    out_weight: Tensor
    out_alpha: Tensor


class RunOutput(NamedTuple):
    """Result of a forward pass: readout o (T, B, C), hidden outputs z (T, B, H) (None when the
    forward was told ``keep_spikes=False``) and, when recorded, the neuron state at every step (each
    field (T, B, H)); ``final`` is s_T; ``spike_total`` Σ_{t,b,j} z (float64), from the paths that
    count it on the way (the spike-sparse inference path), else None (sum ``spikes``)."""

    outputs: Tensor
    spikes: Tensor | None
    states: Any = None
    final: NetState | None = None
    spike_total: Tensor | None = None


def network_step(
    neuron: Neuron, ops: Any, i_t: Tensor, state: NetState, p: NetParams
) -> tuple[Tensor, NetState]:
    """One step of the whole network (module docstring): returns (o_t, s_t)."""
    x = torch.cat([i_t, state.z], dim=-1) @ p.weight.T
    z, ns = neuron.step(ops, x, state.neuron, p.neuron)
    o = p.out_alpha * state.o + (1 - p.out_alpha) * (z @ p.out_weight.T)
    return o, NetState(z, ns, o)


class _Hidden(nn.Module):
    def __init__(self, neuron: Neuron, in_features: int, size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(neuron.gates * size, in_features))
        for name in neuron.trainable:
            self.register_parameter(name, nn.Parameter(torch.empty(size)))


class _Readout(nn.Module):
    def __init__(self, hidden: int, classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(classes, hidden))
        self.tau_mem = nn.Parameter(torch.empty(classes))


class RecurrentNetwork(nn.Module):
    """``input_size``-``hidden_size``-``output_size`` recurrent network of ``neuron`` units.

    Args:
        neuron: a :class:`Neuron` or its name (``"brf"``, ``"alif"``, ``"file.py:Name"`` …).
        init: distributions overriding the neuron's default initialisation, per parameter.
        tau_out: distribution of the readout time constants τ_out.
        mask: optional fixed 0/1 mask of W's shape (absent synapses).
        constants: overrides of the neuron's constant parameters (e.g. ``{"dt": 0.01}``).
        surrogate: the surrogate gradient (name or instance).
        seed: seeds W (Xavier-uniform), W_out (Xavier-uniform) and the neuron parameters.
    """

    def __init__(
        self,
        neuron: Neuron | str,
        input_size: int,
        hidden_size: int,
        output_size: int,
        *,
        init: Mapping[str, Distribution | str | float] | None = None,
        tau_out: Distribution | str = Normal(20.0, 5.0),
        mask: Tensor | None = None,
        constants: Mapping[str, Any] | None = None,
        surrogate: str | Surrogate = "double-gaussian",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.neuron = get_neuron(neuron)
        if constants:
            self.neuron = self.neuron.replace(constants={**self.neuron.constants, **constants})
        self.input_size, self.hidden_size, self.output_size = input_size, hidden_size, output_size
        self.ops = TorchOps(surrogate)
        self.hidden = _Hidden(self.neuron, input_size + hidden_size, hidden_size)
        self.out = _Readout(hidden_size, output_size)
        if mask is not None:
            if tuple(mask.shape) != tuple(self.hidden.weight.shape):
                raise UserError(
                    f"mask shape {tuple(mask.shape)} does not match W {tuple(self.hidden.weight.shape)}"
                )
            self.hidden.register_buffer("mask", mask.to(self.hidden.weight.dtype))
        unknown = set(init or {}) - set(self.neuron.trainable)
        if unknown:
            raise UserError(
                f"{sorted(unknown)} are not trainable parameters of {self.neuron.name} "
                f"(it has {', '.join(self.neuron.trainable) or 'none'})"
            )
        self.init_spec = {
            **{k: str(v) for k, v in self.neuron.init.items()},
            **{k: str(parse_distribution(v)) for k, v in (init or {}).items()},
            "tau_out": str(parse_distribution(tau_out)),
        }
        self.reset_parameters(seed, init, tau_out)
        self.validate()

    # ----------------------------------------------------------------- construction
    def reset_parameters(
        self,
        seed: int,
        init: Mapping[str, Any] | None = None,
        tau_out: Distribution | str = Normal(20.0, 5.0),
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for w in (self.hidden.weight, self.out.weight):
                fan_out, fan_in = w.shape
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                w.copy_(torch.empty_like(w).uniform_(-bound, bound, generator=g))
            overrides = {k: parse_distribution(v) for k, v in (init or {}).items()}
            for name, value in self.neuron.sample_init(self.hidden_size, g, overrides).items():
                getattr(self.hidden, name).copy_(value)
            self.out.tau_mem.copy_(parse_distribution(tau_out).sample((self.output_size,), g))

    def validate(self) -> None:
        """Raise :class:`UserError` if the neuron parameters are invalid (e.g. δω ≥ 1 with DB)."""
        if self.neuron.validate is not None:
            self.neuron.validate(self.neuron_params())

    @torch.no_grad()
    def project_(self) -> Tensor:
        """Put trainable parameters back into their valid set; returns the number clamped."""
        if self.neuron.project is None:
            return torch.zeros((), dtype=torch.long)
        return self.neuron.project(self.neuron_params())

    # ----------------------------------------------------------------- functional view
    @property
    def effective_weight(self) -> Tensor:
        mask = getattr(self.hidden, "mask", None)
        return self.hidden.weight if mask is None else self.hidden.weight * mask

    def neuron_params(self) -> Any:
        return self.neuron.make_params({k: getattr(self.hidden, k) for k in self.neuron.trainable})

    def net_params(self) -> NetParams:
        return NetParams(
            weight=self.effective_weight,
            neuron=self.neuron_params(),
            out_weight=self.out.weight,
            out_alpha=torch.exp(-1.0 / self.out.tau_mem.abs()),
        )

    def initial_state(self, batch: int) -> NetState:
        w = self.hidden.weight
        z = w.new_zeros(batch, self.hidden_size)
        return NetState(z, self.neuron.initial_state(z), w.new_zeros(batch, self.output_size))

    def step(self, ops: Any, i_t: Tensor, state: NetState, params: NetParams) -> tuple[Tensor, NetState]:
        return network_step(self.neuron, ops, i_t, state, params)

    # ----------------------------------------------------------------- simulation
    def _forward_sparse(
        self,
        inputs: Tensor,
        s: NetState,
        p: NetParams,
        record: bool,
        update_fn: Callable | None,
        keep_spikes: bool,
    ) -> RunOutput:
        w_in, w_rec = p.weight.split([self.input_size, self.hidden_size], dim=1)
        # Row j of A = [W_recᵀ | W_outᵀ] is what neuron j's output adds to every product.
        product = SparseProduct(torch.cat([w_rec.T, p.out_weight.T], dim=1).contiguous(), inputs.shape[1])
        h = self.hidden_size
        prod = product(s.z)
        initial = product.total  # Σ z_0: not an output of this pass
        rec, ns = prod[:, :h], s.neuron
        zs, states = [], []
        # Preallocated: a list of slices prod[:, h:] would keep every step's whole product alive.
        drives = prod.new_empty(inputs.shape[0], inputs.shape[1], self.output_size)
        update = update_fn or self._inference_kernel(prod.new_zeros(inputs.shape[1], h), rec, ns, p)
        with denormals_flushed():  # subnormal states cost the step kernel microcode assists
            for t, d_t in enumerate(input_drives(inputs, w_in)):
                z, ns = update(self.neuron, self.ops, d_t, rec, ns, p.neuron)
                prod = product(z)
                rec = prod[:, :h]
                drives[t] = prod[:, h:]
                if keep_spikes:
                    zs.append(z)
                if record:
                    states.append(ns)
        outputs = _readout_continue(drives, p.out_alpha, s.o)
        spikes = torch.stack(zs) if keep_spikes else None
        total = torch.tensor(product.total - initial, dtype=torch.float64)
        return _run_output(outputs, spikes, states, NetState(z, ns, outputs[-1]))._replace(spike_total=total)

    def _inference_kernel(self, d: Tensor, r: Tensor, state: Any, p: NetParams) -> Callable:
        """The neuron step as one compiled kernel with Θ for the spike (no surrogate primitive), as
        an ``update_fn`` (compiled for large steps, :func:`~gradscape.models.step_kernels.step_kernels`)."""
        kernels = step_kernels(self.neuron, self.ops, p.neuron, d, r, state, training=False)
        theta = [getattr(p.neuron, n) for n in kernels.names]
        consts, _ = kernels.prepare(theta)
        forward, state_type = kernels.forward, type(state)

        def update(
            neuron: Any, ops: Any, d_t: Tensor, r_t: Tensor, ns: Any, params: Any
        ) -> tuple[Tensor, Any]:
            z, *s = forward(d_t, r_t, *ns, *theta, *consts)
            return z, state_type(*s)

        return update

    def _forward_sparse_training(
        self, inputs: Tensor, s: NetState, p: NetParams, record: bool, compile: bool, keep_spikes: bool
    ) -> RunOutput:
        # The inference path's products from z_t's nonzeros, the time loop and its backward in one
        # autograd node (gradscape.models.sparse_sequence): per step one GEMM and the step's VJP kernel.
        w_in, w_rec = p.weight.split([self.input_size, self.hidden_size], dim=1)
        table = torch.cat([w_rec.T, p.out_weight.T], dim=1)
        run = sparse_sequence(
            self.neuron, self.ops, inputs, w_in, table, p.neuron, s.z, s.neuron,
            keep_spikes=keep_spikes, record=record, compile=compile,
        )  # fmt: skip
        outputs = _readout_continue(run.drives, p.out_alpha, s.o)
        return RunOutput(outputs, run.spikes, run.states, NetState(run.z, run.state, outputs[-1]))

    def forward(
        self,
        inputs: Tensor,
        *,
        plan: ForwardPlan | str | None = None,
        record: bool = False,
        state: NetState | None = None,
        **legacy: Any,
    ) -> RunOutput:
        """Run the network over ``inputs`` (T, B, I) along ``plan`` (:mod:`gradscape.models.plan`;
        choose one with :func:`~gradscape.models.plan.plan_forward`). Without a plan (and without the
        legacy flags) :func:`~gradscape.models.plan.auto_plan` chooses: the eager loop for small
        steps, the spike-sparse path (gradients included, step kernels compiled) for large CPU steps
        of a spiking neuron, the dense fast path for other large steps.

        ``fast`` precomputes W_in i_t for all t in one matmul and applies the readout after the
        loop (mathematically the same; floating-point sums differ in order); the plan's ``step_fn``
        replaces its hidden-layer update (the compiled step). ``sparse`` (on a CPU) takes the fast
        path's structure but computes W_rec z_{t−1} and W_out z_t from the nonzero entries of z only
        (:mod:`gradscape.models.sparse`); without gradients the neuron update is the plan's
        ``update_fn`` (default: the step as one kernel with Θ for the spike,
        :mod:`gradscape.models.step_kernels`, compiled for large steps); under autograd the loop is
        one node with its own backward (:mod:`gradscape.models.sparse_sequence`; kernels compiled if
        the plan says ``compiled``). Where it cannot apply (``torch.func`` transforms, forward-mode
        AD, other devices) the dense fast path runs
        instead. ``state`` continues from a previous state (truncated BPTT); ``record`` keeps
        every step's neuron state.

        A plan with ``keep_spikes=False`` returns ``spikes=None`` instead of the (T, B, H) outputs:
        when only the readout matters (a loss on ``outputs``) this saves writing T·B·H values.
        ``legacy``: the flags ``fast``, ``sparse``, ``step_fn``, ``update_fn``, ``keep_spikes`` that
        :func:`~gradscape.models.plan.as_plan` turns into a plan.
        """
        if inputs.dim() != 3 or inputs.shape[-1] != self.input_size:
            raise UserError(f"inputs must be (T, B, {self.input_size}); got {tuple(inputs.shape)}")
        if plan is None and not set(legacy) - {"keep_spikes"}:
            grad = torch.is_grad_enabled() and any(p.requires_grad for p in self.parameters())
            chosen = auto_plan(self, inputs, grad=grad, keep_spikes=bool(legacy.get("keep_spikes", True)))
        else:
            chosen = as_plan(plan, **legacy)
        keep_spikes = chosen.keep_spikes
        p = self.net_params()
        s = self.initial_state(inputs.shape[1]) if state is None else state
        zs, states = [], []
        if chosen.path == "sparse" and sparse_possible(p.weight, inputs):
            return self._forward_sparse(inputs, s, p, record, chosen.update_fn, keep_spikes)
        if (
            chosen.path == "sparse"
            and self.neuron.spiking
            and sparse_training_possible(p.weight, inputs, s.z)
        ):
            return self._forward_sparse_training(inputs, s, p, record, chosen.compiled, keep_spikes)
        if chosen.path == "eager":  # a sparse plan that cannot apply takes the fast path
            outs = []
            for i_t in inputs.unbind(0):  # unbind: see the fast branch
                o, s = network_step(self.neuron, self.ops, i_t, s, p)
                outs.append(o)
                if keep_spikes:
                    zs.append(s.z)
                if record:
                    states.append(s.neuron)
            outputs = torch.stack(outs)
            spikes = torch.stack(zs) if keep_spikes else None
        else:
            w_in, w_rec = p.weight.split([self.input_size, self.hidden_size], dim=1)
            # unbind, not drive_in[t]: each select's backward would allocate a zero (T, B, H)
            # gradient, O(T²·B·H) in total; unbind's backward is one stack.
            drive_in = (inputs @ w_in.T).unbind(0)
            hidden_step = chosen.step_fn or _hidden_step
            z, ns = s.z, s.neuron
            for d_t in drive_in:
                z, ns = hidden_step(self.neuron, self.ops, d_t, z, ns, w_rec, p.neuron)
                zs.append(z)
                if record:
                    states.append(ns)
            spikes = torch.stack(zs)
            outputs = _readout_continue(spikes @ p.out_weight.T, p.out_alpha, s.o)
            s = NetState(z, ns, outputs[-1])
        return _run_output(outputs, spikes if keep_spikes else None, states, s)


def _run_output(outputs: Tensor, spikes: Tensor | None, states: list[Any], final: NetState) -> RunOutput:
    stacked = None
    if states:  # recorded
        stacked = type(states[0])(*(torch.stack(f) for f in zip(*states, strict=True)))
    return RunOutput(outputs, spikes, stacked, final)


def _hidden_step(
    neuron: Neuron, ops: Any, drive_in_t: Tensor, z: Tensor, ns: Any, w_rec: Tensor, params: Any
) -> tuple[Tensor, Any]:
    return neuron.step(ops, drive_in_t + z @ w_rec.T, ns, params)


def _readout_continue(drive: Tensor, alpha: Tensor, o0: Tensor) -> Tensor:
    """o_t = α o_{t−1} + (1 − α) y_t for t = 0 … T−1 from o_{−1} = ``o0``: the (T, B, C) readouts of
    the drives y (``drive``) with each channel's decay α (C)."""
    if not any(derivative_possible(t) for t in (drive, alpha, o0)):
        # Nothing differentiates it (inference): (1 − α) y for all t in one op, then per step two
        # ops into the output, with the same roundings as the loop below (so the same values) but
        # without its four fresh tensors per step and the stack at the end.
        scaled = (1 - alpha) * drive
        out = torch.empty_like(scaled)
        o = o0
        for o_t, y_t in zip(out.unbind(0), scaled.unbind(0), strict=True):
            torch.mul(o, alpha, out=o_t)
            o = o_t.add_(y_t)
        return out
    o = o0
    outs = []
    for d_t in drive.unbind(0):  # unbind: see RecurrentNetwork.forward
        o = alpha * o + (1 - alpha) * d_t
        outs.append(o)
    return torch.stack(outs)
