"""Per-neuron gradient transition matrices J_t = ∂s_t/∂s_{t−1} along real trajectories.

For a hidden neuron with per-neuron state s = (s^1, …, s^k) (e.g. BRF's (u, v, q)) and input current
x_t = W [i_t ; z_{t−1}], the step s_t = f(x_t, s_{t−1}; θ) gives the k × k block

    J_t = ∂s_t/∂s_{t−1}      (x_t held fixed: the recurrent path through W is the network's, see
                               :mod:`gradscape.gradflow.network_flow`)

evaluated with the neuron's own ``step`` on the torch backend. Forward-mode AD (``torch.func.jvp``,
vmapped over the k tangents e_j) runs the step on whole layers of neurons × time steps × samples; as
a step never couples neurons, only per-neuron k × k blocks are formed, never the dense N·k × N·k matrix.

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
from torch.func import jvp, vmap
from tqdm import tqdm

from gradscape.errors import UserError
from gradscape.gradflow.neuron_facts import membrane_indices
from gradscape.gradflow.small_spectra import eigenvalue_moduli, singular_values
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
    "checkpoint_spectra",
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


def neuron_jacobians(
    neuron: Neuron,
    x: Tensor,
    prev: Any,
    params: Any,
    *,
    ops: Any | None = None,
    zero_fields: Sequence[str] = (),
    subthreshold: bool = False,
    chunk_size: int = 1 << 17,
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
        chunk_size: neuron-steps per call (bounds memory).

    The step runs on whole layers, as in the network, and forward-mode AD pushes the k tangents
    e_j (field j of every neuron at once; ``torch.func.vmap`` over them) through it: since a step
    never couples neurons, column j of neuron h's block is the tangent output at neuron h. Float
    constants of ``params`` reach the step as they are (Python floats), never as tensors.
    """
    ops = ops or TorchOps()
    if subthreshold:
        ops = TorchOps(NoSpikePath())
    fields = neuron.state_fields
    unknown = [f for f in zero_fields if f not in fields]
    if unknown:
        raise UserError(f"cannot zero {unknown}: {neuron.name} has state fields {fields}")
    k = len(fields)
    size = prev[0].shape[-1]
    lead = prev[0].shape[:-1]
    s = torch.stack(
        [torch.zeros_like(prev[j]) if f in zero_fields else prev[j] for j, f in enumerate(fields)], -1
    ).reshape(-1, size, k)
    xs = x.expand(*lead, x.shape[-1]).reshape(-1, x.shape[-1])
    rows = s.shape[0]
    basis = torch.eye(k, dtype=s.dtype, device=s.device)

    def layer(s1: Tensor, x1: Tensor) -> Tensor:
        _, new = neuron.step(ops, x1, neuron.state(*s1.unbind(-1)), params)
        shape = s1.shape[:-1]
        return torch.stack([torch.as_tensor(f, dtype=s1.dtype).expand(shape) for f in new], -1)

    out = torch.empty(rows, size, k, k, dtype=s.dtype, device=s.device)
    step = max(1, chunk_size // max(1, size))
    for a in range(0, rows, step):
        s1, x1 = s[a : a + step], xs[a : a + step]
        tangents = basis.reshape(k, 1, 1, k).expand(k, *s1.shape)
        cols = vmap(lambda t, s1=s1, x1=x1: jvp(lambda v: layer(v, x1), (s1,), (t,))[1])(tangents)
        out[a : a + step] = cols.permute(1, 2, 3, 0)  # (k, n, H, k_row) → (n, H, k_row, k_col)
    return out.reshape(*lead, size, k, k)


def block_spectra(J: Tensor, membrane: Sequence[int]) -> dict[str, Tensor]:
    """Spectra of per-neuron blocks J (..., k, k): membrane |λ| (..., m) and ρ, full ρ, singular values
    (descending), in J's dtype. Computed in float64 (accurate near |λ| = 1), in closed form for
    k ≤ 3 (:mod:`gradscape.gradflow.small_spectra`: LAPACK per 3 × 3 matrix dominated long runs)."""
    dtype = J.dtype
    J = J.double()
    idx = torch.as_tensor(list(membrane), device=J.device)
    m = J.index_select(-2, idx).index_select(-1, idx)
    mem_abs = eigenvalue_moduli(m)
    full_abs = eigenvalue_moduli(J)
    sv = singular_values(J)
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
    quiet = None if progress is None else not progress
    with torch.no_grad():
        for a in tqdm(range(0, T, step), desc="per-neuron J_t", disable=quiet, leave=False):
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


def _sample(v: Tensor, n: int, seed: int) -> np.ndarray:
    a = v.detach().reshape(-1).cpu().numpy()
    if a.size <= n:
        return a
    return np.random.default_rng(seed).choice(a, n, replace=False)


def checkpoint_spectra(
    model: Any, inputs: Tensor, *, keep: int = 200_000, seed: int = 0, progress: bool | None = False
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Per-neuron J_t along the trajectories of ``inputs`` (T, B, I): statistics and arrays.

    Statistics (JSON-able): ``trajectory`` (J_t at the real s_{t−1}, spike path included) with
    ``membrane_rho`` (ρ of the membrane block = max |λ_t|), ``full_rho`` (ρ(J_t)) and ``sigma_max``
    (‖J_t‖₂), each with median/min/max/quantiles and the fraction and count of neuron-steps > 1;
    ``q0`` the same with q set to 0 (neurons with a ``q`` field; BRF's published numbers); and
    ``per_neuron_q0`` the membrane ρ of each neuron at q = 0 (constant in time for RF-family neurons).
    Arrays: up to ``keep`` seeded samples of each per-neuron-step quantity, for histograms.
    """
    traj = record_trajectory(model, inputs)
    spec = trajectory_spectra(model, trajectory=traj, progress=progress)
    stats: dict[str, Any] = {
        "trajectory": summarize(spec),
        "spikes_per_neuron_step": float(traj.spikes.float().mean()),
        "neuron_steps": int(spec.membrane_rho.numel()),
        "state_fields": list(spec.fields),
        "membrane_fields": list(spec.membrane),
    }
    arrays = {
        "membrane_rho": _sample(spec.membrane_rho, keep, seed),
        "full_rho": _sample(spec.full_rho, keep, seed),
        "sigma_max": _sample(spec.singular_values[..., 0], keep, seed),
    }
    del spec
    if "q" in model.neuron.state_fields:
        s0 = trajectory_spectra(model, trajectory=traj, zero_fields=("q",), progress=progress)
        stats["q0"] = summarize(s0)
        # per neuron: the median over steps (equal to every step's value when only q mattered)
        per = s0.membrane_rho.reshape(-1, s0.membrane_rho.shape[-1]).double().median(0).values
        stats["per_neuron_q0"] = per.tolist()
        arrays["membrane_rho_q0"] = _sample(s0.membrane_rho, keep, seed)
    return stats, arrays
