"""What ``gradscape spectrum`` computes, as plain functions (the command only parses and writes).

* :func:`point_spectrum`: one neuron's J at an evaluation point (default: zero state below threshold,
  σ = 0, q = 0), its membrane-block and full-state eigenvalues, ρ and singular values, from the
  neuron's own step on the torch backend (float64).
* :func:`checkpoint_spectra`: per-neuron J_t of a trained network along real trajectories
  (:mod:`gradscape.gradflow.jacobians`) and its statistics, along the trajectory and at q = 0.
* :func:`checkpoint_gradient_flow`: ‖∂L/∂s_{T−k}‖ by backprop and by network-Jacobian products, and
  the leading Lyapunov-style exponents (:mod:`gradscape.gradflow.network_flow`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradscape.errors import UserError
from gradscape.gradflow.jacobians import (
    NoSpikePath,
    block_spectra,
    membrane_indices,
    neuron_jacobians,
    record_trajectory,
    summarize,
    trajectory_spectra,
)
from gradscape.gradflow.network_flow import (
    backprop_gradients,
    gradient_norms,
    jacobian_gradients,
    last_step_loss,
)
from gradscape.models.neurons import Neuron
from gradscape.models.neurons.base import Constant, Normal, Uniform
from gradscape.models.ops import TorchOps

__all__ = [
    "parse_assignments",
    "resolve_params",
    "point_spectrum",
    "checkpoint_spectra",
    "checkpoint_gradient_flow",
    "complex_pairs",
]


def _value(text: str) -> float | bool:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    return float(text)


def parse_assignments(items: Sequence[str] | None, what: str) -> dict[str, float | bool]:
    """``["omega=10", "b_offset=0.1"]`` (or comma-joined) → ``{"omega": 10.0, "b_offset": 0.1}``."""
    out: dict[str, float | bool] = {}
    for item in items or ():
        for part in str(item).split(","):
            if not part.strip():
                continue
            name, sep, val = part.partition("=")
            if not sep or not name.strip():
                raise UserError(f"--{what} {part!r}: write NAME=VALUE, e.g. --{what} omega=10")
            try:
                out[name.strip()] = _value(val)
            except ValueError:
                raise UserError(f"--{what} {part!r}: {val!r} is not a number (or true/false)") from None
    return out


def _mean(dist: Any) -> float:
    if isinstance(dist, Uniform):
        return 0.5 * (dist.low + dist.high)
    if isinstance(dist, Normal):
        return dist.mean
    if isinstance(dist, Constant):
        return dist.value
    return float(dist)


def resolve_params(neuron: Neuron, given: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Every parameter field of ``neuron`` as a number: ``given``, else the neuron's constant or the
    dataclass default, else (trainable fields) the mean of the initial distribution. Returns the
    values and the names that fell back to the initialisation mean."""
    fields = {f.name: f for f in dataclasses.fields(neuron.params)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise UserError(f"{neuron.name} has no parameter(s) {unknown}; its parameters are {list(fields)}")
    out: dict[str, Any] = {}
    defaulted = []
    for name, f in fields.items():
        if name in given:
            out[name] = given[name]
        elif name in neuron.constants:
            out[name] = neuron.constants[name]
        elif f.default is not dataclasses.MISSING:
            out[name] = f.default
        elif name in neuron.init:
            out[name] = _mean(neuron.init[name])
            defaulted.append(name)
        else:
            raise UserError(
                f"{neuron.name}: parameter {name!r} has no default; give it with --param {name}=VALUE"
            )
    return out, defaulted


def complex_pairs(values: Tensor | np.ndarray) -> list[list[float]]:
    """Complex numbers as JSON-able [re, im] pairs."""
    arr = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values).astype(complex).ravel()
    return [[float(v.real), float(v.imag)] for v in arr]


def point_spectrum(
    neuron: Neuron,
    params: Mapping[str, Any],
    state: Mapping[str, float] | None = None,
    *,
    x: float = 0.0,
    surrogate: str = "double-gaussian",
) -> dict[str, Any]:
    """J of one neuron at one point (float64, the neuron's own step), with its spectra.

    Without ``state`` the point is the zero state below threshold: all fields 0 and σ = 0 (spike path
    cut). With ``state`` the given fields are set (others 0) and σ is the surrogate slope there.
    """
    state = dict(state or {})
    fields = neuron.state_fields
    unknown = sorted(set(state) - set(fields))
    if unknown:
        raise UserError(f"{neuron.name} has no state field(s) {unknown}; its state is {list(fields)}")
    f64 = torch.float64
    tensors = {
        k: (
            torch.tensor([float(v)], dtype=f64)
            if isinstance(v, int | float) and not isinstance(v, bool)
            else v
        )
        for k, v in params.items()
    }
    p = neuron.params(**tensors)
    if neuron.validate is not None:
        neuron.validate(p)
    prev = neuron.state(*(torch.tensor([float(state.get(f, 0.0))], dtype=f64) for f in fields))
    xs = torch.full((neuron.gates,), float(x), dtype=f64)
    below = not state
    try:
        J = neuron_jacobians(neuron, xs, prev, p, ops=TorchOps(surrogate), subthreshold=below)[0]
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"cannot evaluate {neuron.name}'s step in torch: {type(exc).__name__}: {exc}"
        ) from None
    mem = membrane_indices(neuron)
    spec = block_spectra(J, mem)
    idx = torch.as_tensor(mem)
    mem_eig = torch.linalg.eigvals(J[idx][:, idx])
    full_eig = torch.linalg.eigvals(J)
    return {
        "point": "zero state below threshold (sigma = 0)"
        if below
        else "given state (sigma = SG at that state)",
        "state": {f: float(state.get(f, 0.0)) for f in fields},
        "x": float(x),
        "params": {k: (v if isinstance(v, bool) else float(v)) for k, v in params.items()},
        "J": J.tolist(),
        "state_fields": list(fields),
        "membrane_fields": [fields[i] for i in mem],
        "spectral_radius": float(spec["membrane_rho"]),
        "spectral_radius_full": float(spec["full_rho"]),
        "eigenvalues": complex_pairs(mem_eig),
        "eigenvalues_full": complex_pairs(full_eig),
        "singular_values": spec["singular_values"].tolist(),
        "subthreshold": below,
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


def checkpoint_gradient_flow(
    model: Any,
    inputs: Tensor,
    targets: Tensor,
    *,
    lyapunov: int = 5,
    progress: bool | None = False,
) -> tuple[dict[str, Any], np.ndarray]:
    """‖∂L/∂s_{T−k}‖ (label-last loss: NLL of the last step's readout) by backpropagation and by
    network-Jacobian products; their largest relative disagreement; Lyapunov-style exponents.

    Returns JSON-able statistics and the backprop norms (T+1, B) indexed by k.
    """
    loss = last_step_loss(targets)
    bp = backprop_gradients(model, inputs, loss)
    jr = jacobian_gradients(model, inputs, loss, lyapunov=lyapunov, progress=progress)
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
        "lyapunov_exponents_per_step": {
            "median": np.median(jr["exponents"].cpu().numpy(), axis=0).tolist() if lyapunov else [],
            "per_sample": jr["exponents"].tolist() if lyapunov else [],
        },
    }
    finite = torch.isfinite(nb)
    if not bool(finite.all()):
        stats["nonfinite"] = int((~finite).sum())
    return stats, nb.detach().cpu().numpy()


__all__ += ["NoSpikePath"]
