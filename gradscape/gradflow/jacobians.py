"""Per-neuron gradient transition matrices J_t = ∂s_t/∂s_{t−1} along real trajectories.

For a hidden neuron with per-neuron state s = (s^1, …, s^k) (e.g. BRF's (u, v, q)) and input current
x_t = W [i_t ; z_{t−1}], the step s_t = f(x_t, s_{t−1}; θ) gives the k × k block

    J_t = ∂s_t/∂s_{t−1}      (x_t held fixed: the recurrent path through W is the network's, see
                               :mod:`gradscape.gradflow.network_flow`)

evaluated with the neuron's own ``step`` on the torch backend. ``torch.func.jacfwd`` differentiates the
step applied to *one* neuron (a layer of size 1) and ``torch.func.vmap`` batches it over neurons, time
steps and samples, so only per-neuron k × k blocks are ever formed, never the dense N·k × N·k matrix.

From each block: the membrane block M_t (rows and columns of ``neuron.membrane``, BRF's (u, v)) with
its eigenvalue moduli |λ_t| and ρ(M_t) = max |λ_t|; the full-state ρ(J_t); and the singular values of
J_t (the largest, ‖J_t‖₂, bounds one step's gradient gain).

Evaluation variants: ``zero_fields=("q",)`` sets those state fields to 0 before evaluating (BRF "at
q = 0": then b = p(ω) − b′ and M_t depends only on ω and b′); ``subthreshold=True`` drops the spike path
(σ = 0) by differentiating with a surrogate whose slope is identically zero (forward values unchanged).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.func import jacfwd, vmap
from tqdm import tqdm

from gradscape.errors import UserError
from gradscape.models.neurons import Neuron
from gradscape.models.ops import TorchOps
from gradscape.models.surrogates import Surrogate

__all__ = [
    "NoSpikePath",
    "Trajectory",
    "NeuronSpectra",
    "record_trajectory",
    "neuron_jacobians",
    "block_spectra",
    "trajectory_spectra",
    "summarize",
    "membrane_indices",
]


@dataclass(frozen=True)
class NoSpikePath(Surrogate):
    """A surrogate with SG ≡ 0: the spike's forward value is Θ(x), its derivative 0 (σ = 0)."""

    def primitive(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)

    def grad(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)

    def grad2(self, x: Tensor) -> Tensor:
        return torch.zeros_like(x)

    @property
    def name(self) -> str:
        return "none (sub-threshold, σ = 0)"


@dataclass
class Trajectory:
    """What a recorded run gives the per-neuron analysis (time-major, T steps, B samples, H neurons).

    ``x[t]`` is the input current of step t, ``prev[t]`` the neuron state s_{t−1} it acted on
    (``prev[0]`` = the initial zero state), ``spikes[t]`` = z_t, ``outputs[t]`` = o_t.
    """

    x: Tensor
    prev: Any
    spikes: Tensor
    outputs: Tensor


def membrane_indices(neuron: Neuron) -> list[int]:
    """Positions of ``neuron.membrane`` within the state fields (all fields if none declared)."""
    fields = neuron.state_fields
    if not neuron.membrane:
        return list(range(len(fields)))
    missing = [m for m in neuron.membrane if m not in fields]
    if missing:
        raise UserError(f"neuron {neuron.name!r}: membrane fields {missing} are not state fields {fields}")
    return [fields.index(m) for m in neuron.membrane]


@torch.no_grad()
def record_trajectory(model: Any, inputs: Tensor) -> Trajectory:
    """Run ``model`` on ``inputs`` (T, B, I) and rebuild x_t = W [i_t ; z_{t−1}] and s_{t−1}.

    Uses only the analysis protocol: ``model(inputs, record=True)`` and ``model.net_params()``.
    """
    run = model(inputs, record=True)
    if run.states is None:
        raise UserError("the model did not return recorded states (model(inputs, record=True))")
    p = model.net_params()
    z_prev = torch.cat([torch.zeros_like(run.spikes[:1]), run.spikes[:-1]])
    x = torch.cat([inputs.to(z_prev.dtype), z_prev], dim=-1) @ p.weight.T
    prev = type(run.states)(*(torch.cat([torch.zeros_like(f[:1]), f[:-1]]) for f in run.states))
    return Trajectory(x=x, prev=prev, spikes=run.spikes, outputs=run.outputs)


def _split_params(params: Any, size: int) -> tuple[dict[str, Tensor], Any]:
    """Per-neuron tensor fields (last dim = ``size``) and the rest (constants) of a params dataclass."""
    per_neuron = {}
    for f in dataclasses.fields(params):
        v = getattr(params, f.name)
        if isinstance(v, Tensor) and v.dim() >= 1 and v.shape[-1] == size:
            per_neuron[f.name] = v
    return per_neuron, params


def neuron_jacobians(
    neuron: Neuron,
    x: Tensor,
    prev: Any,
    params: Any,
    *,
    ops: Any | None = None,
    zero_fields: Sequence[str] = (),
    subthreshold: bool = False,
    chunk_size: int = 1 << 16,
) -> Tensor:
    """Per-neuron blocks J = ∂s_t/∂s_{t−1}, shape (..., H, k, k) (row = new field, column = old).

    Args:
        neuron: the neuron whose ``step`` is differentiated.
        x: input currents (..., gates·H), gate-major as the network delivers them.
        prev: the state s_{t−1} (a ``neuron.state`` NamedTuple of (..., H) tensors).
        params: the neuron's params dataclass (per-neuron tensors of shape (H,), constants otherwise).
        ops: the torch ops (surrogate) to differentiate with; default ``TorchOps()``.
        zero_fields: state fields set to 0 before evaluating (e.g. ``("q",)``).
        subthreshold: drop the spike path (σ = 0).
        chunk_size: neuron-steps per vmapped call (bounds memory).
    """
    ops = ops or TorchOps()
    if subthreshold:
        ops = TorchOps(NoSpikePath())
    fields = neuron.state_fields
    unknown = [f for f in zero_fields if f not in fields]
    if unknown:
        raise UserError(f"cannot zero {unknown}: {neuron.name} has state fields {fields}")
    k, gates = len(fields), neuron.gates
    size = prev[0].shape[-1]
    lead = prev[0].shape[:-1]
    s = torch.stack(
        [torch.zeros_like(prev[j]) if f in zero_fields else prev[j] for j, f in enumerate(fields)], -1
    )
    xs = x.unflatten(-1, (gates, size)).movedim(-2, -1)  # (..., H, gates)
    per_neuron, base = _split_params(params, size)
    pv = {n: v.expand(*lead, size) for n, v in per_neuron.items()}
    n_total = int(np.prod((*lead, size)))
    s, xs = s.reshape(n_total, k), xs.reshape(n_total, gates)
    pv = {n: v.reshape(n_total) for n, v in pv.items()}

    def one(s1: Tensor, x1: Tensor, p1: dict[str, Tensor]) -> Tensor:
        state = neuron.state(*(s1[j : j + 1] for j in range(k)))
        p = dataclasses.replace(base, **{n: v.reshape(1) for n, v in p1.items()})
        _, new = neuron.step(ops, x1, state, p)
        return torch.stack([torch.as_tensor(f).reshape(()) for f in new])

    jac = vmap(jacfwd(one, argnums=0))
    out = torch.empty(n_total, k, k, dtype=s.dtype, device=s.device)
    for a in range(0, n_total, chunk_size):
        b = min(a + chunk_size, n_total)
        out[a:b] = jac(s[a:b], xs[a:b], {n: v[a:b] for n, v in pv.items()})
    return out.reshape(*lead, size, k, k)


def block_spectra(J: Tensor, membrane: Sequence[int]) -> dict[str, Tensor]:
    """Spectra of per-neuron blocks J (..., k, k): membrane |λ| (..., m) and ρ, full ρ, singular values."""
    dtype = J.dtype
    # LAPACK in float64: more accurate near |λ| = 1, and on CPU no slower than float32 for 3×3 blocks
    J = J.double()
    idx = torch.as_tensor(list(membrane), device=J.device)
    m = J.index_select(-2, idx).index_select(-1, idx)
    mem_abs = torch.linalg.eigvals(m).abs()
    full_abs = torch.linalg.eigvals(J).abs()
    sv = torch.linalg.svdvals(J)
    return {
        "membrane_abs": mem_abs.to(dtype),
        "membrane_rho": mem_abs.amax(-1).to(dtype),
        "full_rho": full_abs.amax(-1).to(dtype),
        "singular_values": sv.to(dtype),
    }


@dataclass
class NeuronSpectra:
    """Per neuron-step spectra over (T, B, H): see :func:`block_spectra`; ``jacobians`` if kept."""

    membrane_abs: Tensor
    membrane_rho: Tensor
    full_rho: Tensor
    singular_values: Tensor
    fields: tuple[str, ...]
    membrane: tuple[str, ...]
    jacobians: Tensor | None = None


def trajectory_spectra(
    model: Any,
    inputs: Tensor | None = None,
    *,
    trajectory: Trajectory | None = None,
    zero_fields: Sequence[str] = (),
    subthreshold: bool = False,
    keep_jacobians: bool = False,
    chunk_steps: int | None = None,
    progress: bool | None = False,
) -> NeuronSpectra:
    """Every hidden neuron's J_t at every step of ``model`` run on ``inputs`` (T, B, I), with spectra.

    The Jacobians are formed and reduced ``chunk_steps`` time steps at a time (default: about 2^17
    neuron-steps per chunk) so memory stays bounded for long sequences. ``progress=None`` shows a
    tqdm bar on a terminal.
    """
    traj = trajectory if trajectory is not None else record_trajectory(model, inputs)
    neuron = model.neuron
    params = model.net_params().neuron
    params = dataclasses.replace(
        params,
        **{
            f.name: getattr(params, f.name).detach()
            for f in dataclasses.fields(params)
            if isinstance(getattr(params, f.name), Tensor)
        },
    )
    mem = membrane_indices(neuron)
    T, B, H = traj.prev[0].shape
    step = chunk_steps or max(1, (1 << 17) // max(1, B * H))
    parts: dict[str, list[Tensor]] = {}
    jacs = []
    with torch.no_grad():
        for a in tqdm(range(0, T, step), desc="per-neuron J_t", disable=progress is False, leave=False):
            prev = type(traj.prev)(*(f[a : a + step] for f in traj.prev))
            J = neuron_jacobians(
                neuron,
                traj.x[a : a + step],
                prev,
                params,
                ops=getattr(model, "ops", None),
                zero_fields=zero_fields,
                subthreshold=subthreshold,
            )
            for key, v in block_spectra(J, mem).items():
                parts.setdefault(key, []).append(v)
            if keep_jacobians:
                jacs.append(J)
    cat = {key: torch.cat(v) for key, v in parts.items()}
    return NeuronSpectra(
        **cat,
        fields=neuron.state_fields,
        membrane=tuple(neuron.state_fields[i] for i in mem),
        jacobians=torch.cat(jacs) if keep_jacobians else None,
    )


def _stats(v: Tensor) -> dict[str, float]:
    a = v.detach().double().cpu().numpy().ravel()
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return {
            "median": float("nan"),
            "min": float("nan"),
            "max": float("nan"),
            "frac_gt_1": float("nan"),
            "count_gt_1": 0,
            "n": int(a.size),
            "nonfinite": int(a.size),
        }
    return {
        "median": float(np.median(finite)),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "mean": float(finite.mean()),
        "q05": float(np.quantile(finite, 0.05)),
        "q95": float(np.quantile(finite, 0.95)),
        "frac_gt_1": float((finite > 1).mean()),
        "count_gt_1": int((finite > 1).sum()),
        "n": int(a.size),
        "nonfinite": int(a.size - finite.size),
    }


def summarize(spectra: NeuronSpectra) -> dict[str, dict[str, float]]:
    """Median/min/max/quantiles and the fraction (and count) of neuron-steps above 1, per quantity.

    ``membrane_rho`` = max |λ| of the membrane block; ``full_rho`` = ρ(J_t); ``sigma_max`` = ‖J_t‖₂.
    """
    return {
        "membrane_rho": _stats(spectra.membrane_rho),
        "full_rho": _stats(spectra.full_rho),
        "sigma_max": _stats(spectra.singular_values[..., 0]),
    }
