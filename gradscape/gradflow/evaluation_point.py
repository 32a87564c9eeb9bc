"""One neuron's J = ∂s_t/∂s_{t−1} at one evaluation point, checked with the neuron's own forward Θ.

The point is s_{t−1} with input x_t. Two matrices are formed there, from the neuron's own step on the
torch backend (float64):

* the *sub-threshold* J (σ = 0: the surrogate path cut, forward values unchanged), whose membrane
  block's spectral radius is ``spectral_radius_subthreshold`` (JSON alias ``spectral_radius``);
* J *at the state* (σ = SG(a) at the spike's argument a there), ``spectral_radius_at_state``.

The default point is "the zero state below threshold". Whether the zero state really is below
threshold is checked by running the step once there: when it spikes (an Izhikevich neuron at v = 0
has v' = 70 > 30), the zero state is not sub-threshold, so the point becomes the *resting state* the
neuron's own step relaxes to from zero (iterated with the same input until it stops changing without
spiking), and the result says so. When no such state is reached the user must give ``--state``.

A step that is not finite at the point (NaN/inf in its output or new state: ``log`` of a negative
number, an overflow) is a result, not an error: the neuron diverges there, ``diverged`` is True and the
spectra of a J that is not finite are NaN (undefined, not a LinAlgError; the sub-threshold J, σ = 0,
may still be finite when the NaN enters only through the spike). Firing is
judged on finite spikes only, so a NaN spike does not send the search to a resting state.

Parameters: only trainable fields become tensors (one neuron, float64); float constants and switches
stay Python values, so a step may use ``math.cos(p.omega * p.dt)`` or ``if p.leak > 0`` on them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gradscape.errors import UserError
from gradscape.gradflow.jacobians import block_spectra, neuron_jacobians
from gradscape.gradflow.neuron_facts import membrane_indices
from gradscape.models.neurons import Neuron
from gradscape.models.ops import TorchOps

__all__ = ["PointSpectrum", "point_spectrum", "resting_state", "complex_pairs"]

#: the resting-state search: at most this many steps, stationary when max |Δs| ≤ tol · (1 + max |s|).
REST_STEPS = 20_000
REST_TOL = 1e-13


def complex_pairs(values: Tensor | np.ndarray) -> list[list[float]]:
    """Complex numbers as JSON-able [re, im] pairs."""
    arr = np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values).astype(complex).ravel()
    return [[float(v.real), float(v.imag)] for v in arr]


@dataclass(frozen=True)
class PointSpectrum:
    """Spectra of one neuron's J at one point (module docstring). Eigenvalues are [re, im] pairs.

    ``spectral_radius`` / ``spectral_radius_full`` / ``eigenvalues`` / ``eigenvalues_full`` /
    ``singular_values`` / ``J`` are the sub-threshold values (documented aliases).
    """

    neuron: str
    point: str
    state: dict[str, float]
    x: float
    params: dict[str, Any]
    state_fields: list[str]
    membrane_fields: list[str]
    subthreshold: bool
    fires: bool
    zero_state_fires: bool
    spectral_radius_subthreshold: float
    spectral_radius_full_subthreshold: float
    eigenvalues_subthreshold: list[list[float]]
    eigenvalues_full_subthreshold: list[list[float]]
    singular_values_subthreshold: list[float]
    J_subthreshold: list[list[float]]
    spectral_radius_at_state: float
    spectral_radius_full_at_state: float
    eigenvalues_at_state: list[list[float]]
    eigenvalues_full_at_state: list[list[float]]
    J_at_state: list[list[float]]
    defaulted_to_init_mean: list[str] = field(default_factory=list)
    diverged: bool = False

    @property
    def spectral_radius(self) -> float:
        return self.spectral_radius_subthreshold

    @property
    def spectral_radius_full(self) -> float:
        return self.spectral_radius_full_subthreshold

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, with the aliases."""
        out = asdict(self)
        out.update(
            spectral_radius=self.spectral_radius_subthreshold,
            spectral_radius_full=self.spectral_radius_full_subthreshold,
            eigenvalues=self.eigenvalues_subthreshold,
            eigenvalues_full=self.eigenvalues_full_subthreshold,
            singular_values=self.singular_values_subthreshold,
            J=self.J_subthreshold,
        )
        return out


def _torch_params(neuron: Neuron, params: Mapping[str, Any]) -> Any:
    """The params dataclass for one neuron: trainable numbers → float64 tensors of shape (1,)."""
    f64 = torch.float64
    values = {
        k: torch.tensor([float(v)], dtype=f64)
        if k in neuron.trainable and isinstance(v, int | float) and not isinstance(v, bool)
        else v
        for k, v in params.items()
    }
    p = neuron.params(**values)
    if neuron.validate is not None:
        neuron.validate(p)
    return p


def _in_torch(neuron: Neuron, fn: Callable[[], Any]) -> Any:
    """``fn()``; a failure of the user's step becomes one line naming the neuron."""
    try:
        return fn()
    except UserError:
        raise
    except Exception as exc:
        raise UserError(
            f"cannot evaluate {neuron.name}'s step in torch: {type(exc).__name__}: {exc}"
        ) from None


def _run_step(neuron: Neuron, x: Tensor, state: Any, p: Any) -> tuple[Tensor, Any]:
    with torch.no_grad():
        z, new = _in_torch(neuron, lambda: neuron.step(TorchOps(), x, state, p))
    like = state[0]
    return torch.as_tensor(z, dtype=like.dtype), neuron.state(
        *(torch.as_tensor(f, dtype=like.dtype).expand_as(like) for f in new)
    )


def _fires(z: Tensor) -> bool:
    return bool(((z != 0) & torch.isfinite(z)).any())


def _finite_step(z: Tensor, new: Any) -> bool:
    """The step's spike and every new state field are finite."""
    return bool(torch.isfinite(z).all()) and all(bool(torch.isfinite(f).all()) for f in new)


def _spectra(J: Tensor, mem: list[int], sub: bool) -> dict[str, Any]:
    """ρ, eigenvalues, J (and, for ``sub``, singular values) of one J; NaN throughout when J is not
    finite (the neuron diverged there)."""
    idx = torch.as_tensor(mem)
    k = J.shape[-1]
    if not bool(torch.isfinite(J).all()):
        nan = float("nan")
        out: dict[str, Any] = {
            "membrane_rho": nan,
            "full_rho": nan,
            "eigenvalues": [[nan, nan]] * len(mem),
            "eigenvalues_full": [[nan, nan]] * k,
        }
        if sub:
            out["singular_values"] = [nan] * k
        return out
    spec = block_spectra(J, mem)
    out = {
        "membrane_rho": float(spec["membrane_rho"]),
        "full_rho": float(spec["full_rho"]),
        "eigenvalues": complex_pairs(torch.linalg.eigvals(J[idx][:, idx])),
        "eigenvalues_full": complex_pairs(torch.linalg.eigvals(J)),
    }
    if sub:
        out["singular_values"] = spec["singular_values"].tolist()
    return out


def resting_state(neuron: Neuron, p: Any, x: float = 0.0) -> dict[str, float] | None:
    """The state the neuron's step relaxes to from zero with constant input ``x``, reached without a
    spike in its last step and stationary to ``REST_TOL``; None if there is none within ``REST_STEPS``."""
    f64 = torch.float64
    xs = torch.full((neuron.gates,), float(x), dtype=f64)
    s = neuron.state(*(torch.zeros(1, dtype=f64) for _ in neuron.state_fields))
    for _ in range(REST_STEPS):
        z, new = _run_step(neuron, xs, s, p)
        a, b = torch.cat(list(s)), torch.cat(list(new))
        if not torch.isfinite(b).all():
            return None
        if not _fires(z) and float((b - a).abs().max()) <= REST_TOL * (1 + float(b.abs().max())):
            return {f: float(v) for f, v in zip(neuron.state_fields, b.tolist(), strict=True)}
        s = new
    return None


def point_spectrum(
    neuron: Neuron,
    params: Mapping[str, Any],
    state: Mapping[str, float] | None = None,
    *,
    x: float = 0.0,
    surrogate: str = "double-gaussian",
    defaulted: list[str] | None = None,
) -> PointSpectrum:
    """J of one neuron at one point with its spectra (module docstring).

    Without ``state`` the point is the zero state below threshold, checked with the neuron's forward
    Θ (and replaced by the resting state when the zero state fires). With ``state`` the given fields
    are set (others 0).
    """
    state = dict(state or {})
    fields = neuron.state_fields
    unknown = sorted(set(state) - set(fields))
    if unknown:
        raise UserError(f"{neuron.name} has no state field(s) {unknown}; its state is {list(fields)}")
    f64 = torch.float64
    p = _torch_params(neuron, params)
    xs = torch.full((neuron.gates,), float(x), dtype=f64)

    def at(values: Mapping[str, float]) -> Any:
        return neuron.state(*(torch.tensor([float(values.get(f, 0.0))], dtype=f64) for f in fields))

    given = bool(state)
    zero_fires = False
    if given:
        point = "given state (sigma = SG at that state)"
    else:
        z0, new0 = _run_step(neuron, xs, at({}), p)
        zero_fires = neuron.spiking and _fires(z0) and _finite_step(z0, new0)
        point = "zero state below threshold (sigma = 0)"
        if zero_fires:
            rest = resting_state(neuron, p, x)
            if rest is None:
                raise UserError(
                    f"{neuron.name} spikes at the zero state (so it is not below threshold) and its step "
                    "reaches no resting state from there; give a sub-threshold state with --state FIELD=VALUE"
                )
            state = rest
            point = (
                "resting state below threshold (sigma = 0); the zero state fires, so the point is the "
                "state the neuron's own step relaxes to from zero"
            )
    prev = at(state)
    z, new = _run_step(neuron, xs, prev, p)
    diverged = not _finite_step(z, new)
    fires = neuron.spiking and _fires(z)
    if given and fires:
        point += "; the step fires there (Theta = 1)"
    if diverged:
        point += "; the step is not finite there (NaN/inf): the neuron diverges (NaN where J is not finite)"
    mem = membrane_indices(neuron)
    out: dict[str, Any] = {}
    for key, sub in (("subthreshold", True), ("at_state", False)):
        ops = TorchOps(surrogate)
        J = _in_torch(
            neuron,
            lambda ops=ops, sub=sub: neuron_jacobians(neuron, xs, prev, p, ops=ops, subthreshold=sub)[0],
        )
        spec = _spectra(J, mem, sub)
        out[f"spectral_radius_{key}"] = spec["membrane_rho"]
        out[f"spectral_radius_full_{key}"] = spec["full_rho"]
        out[f"eigenvalues_{key}"] = spec["eigenvalues"]
        out[f"eigenvalues_full_{key}"] = spec["eigenvalues_full"]
        out[f"J_{key}"] = J.tolist()
        if sub:
            out["singular_values_subthreshold"] = spec["singular_values"]
    return PointSpectrum(
        neuron=neuron.name,
        point=point,
        state={f: float(state.get(f, 0.0)) for f in fields},
        x=float(x),
        params={k: (v if isinstance(v, bool) else float(v)) for k, v in params.items()},
        state_fields=list(fields),
        membrane_fields=[fields[i] for i in mem],
        subthreshold=not given,
        fires=fires,
        zero_state_fires=zero_fires,
        defaulted_to_init_mean=list(defaulted or []),
        diverged=diverged,
        **out,
    )
