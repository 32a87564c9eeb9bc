"""Surrogate gradients for the spike non-linearity.

A spike is ``z = Θ(x)`` (Heaviside, ``Θ(0) = 0``). Its derivative is replaced by a surrogate
``SG(x)``. Every surrogate here is defined through its *primitive* ``F`` (``F' = SG``) and the spike is
computed as

    z = Θ(x) + (x − x) + (F(x) − stopgrad(F(x)))

whose value is exactly ``Θ(x)`` for finite x (NaN for a non-finite x: a diverged membrane is never
a silent 0 or 1; :func:`inference_spike` is the same without F, for inference) and whose derivative
is ``SG(x)``. Because this uses only ordinary differentiable torch operations (no
``autograd.Function``), it works unchanged under ``torch.func`` (``jacrev``, ``jacfwd``, ``vmap``),
``torch.compile`` and double backward; the second derivative that Hessian-vector products see is
the analytic ``SG'(x)``, also exposed as :meth:`Surrogate.grad2`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

from gradscape.errors import UserError

__all__ = [
    "Surrogate",
    "DoubleGaussian",
    "Gaussian",
    "FastSigmoid",
    "Triangle",
    "SURROGATES",
    "get_surrogate",
    "heaviside",
    "inference_spike",
    "derivative_possible",
]


def heaviside(x: Tensor) -> Tensor:
    """Θ(x) = 1 if x > 0 else 0, in x's dtype."""
    return (x > 0).to(x.dtype)


def inference_spike(x: Tensor) -> Tensor:
    """The spike when no derivative is needed: Θ(x), and NaN where x is NaN or infinite.

    ``Θ(x) + (x − x)``: (x − x) is 0 for finite x, so the value is exactly Θ(x), and NaN for a
    non-finite membrane, as :meth:`Surrogate.spike` gives on its differentiable path. The one
    inference spike of the package (evaluation, landscapes): a diverged network yields NaN there
    too, never silent zeros (a bare Θ(NaN) is 0, Θ(inf) is 1).
    """
    return heaviside(x) + (x - x)


def derivative_possible(x: Tensor) -> bool:
    """False only when no autograd, forward-AD or torch.func transform can see ``x``."""
    if torch.is_grad_enabled() or torch.compiler.is_compiling():
        # Dynamo cannot trace the functorch query below; the full Θ + (F − stopgrad F) it then
        # keeps has the same value, so a compiled step only loses this shortcut.
        return True
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    if wrapped is None or wrapped(x):
        return True
    return fwAD.unpack_dual(x).tangent is not None


# Multiplications by 1/σ, not divisions by σ: a vector division costs several multiplications, and
# a compiled step (and its derivative, where d(x/σ)/dx adds one more) otherwise divides per element.
def _normal_pdf(x: Tensor, sigma: float) -> Tensor:
    y = x * (1.0 / sigma)
    return torch.exp(-0.5 * (y * y)) * (1.0 / (sigma * math.sqrt(2.0 * math.pi)))


def _normal_cdf(x: Tensor, sigma: float) -> Tensor:
    return 0.5 * (1.0 + torch.erf(x * (1.0 / (sigma * math.sqrt(2.0)))))


@dataclass(frozen=True)
class Surrogate:
    """Base class: subclasses define ``primitive`` (F), ``grad`` (SG = F') and ``grad2`` (SG')."""

    def primitive(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad2(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def spike(self, x: Tensor) -> Tensor:
        """Θ(x) forward, SG(x) backward, SG'(x) as second derivative."""
        if not derivative_possible(x):
            # Plain inference (evaluation, landscapes without vmap): the primitive's erf would be
            # computed only to cancel out, and it costs about half of an evaluation's time.
            return inference_spike(x)
        f = self.primitive(x)
        return inference_spike(x) + (f - f.detach())

    @property
    def name(self) -> str:
        return _NAMES[type(self)]


@dataclass(frozen=True)
class DoubleGaussian(Surrogate):
    """The BRF paper's surrogate.

    SG(x) = γ_s [(1+h) N(x; 0, σ_s) − 2h N(x; 0, s σ_s)], N the normalised Gaussian density;
    defaults h = 0.15, s = 6, σ_s = 0.5, γ_s = 0.5 give SG(0) = 0.43884.
    """

    h: float = 0.15
    s: float = 6.0
    sigma: float = 0.5
    gamma: float = 0.5

    def primitive(self, x: Tensor) -> Tensor:
        s1, s2 = self.sigma, self.s * self.sigma
        return self.gamma * ((1 + self.h) * _normal_cdf(x, s1) - 2 * self.h * _normal_cdf(x, s2))

    def grad(self, x: Tensor) -> Tensor:
        s1, s2 = self.sigma, self.s * self.sigma
        return self.gamma * ((1 + self.h) * _normal_pdf(x, s1) - 2 * self.h * _normal_pdf(x, s2))

    def grad2(self, x: Tensor) -> Tensor:
        s1, s2 = self.sigma, self.s * self.sigma
        return self.gamma * (
            -(1 + self.h) * x / s1**2 * _normal_pdf(x, s1) + 2 * self.h * x / s2**2 * _normal_pdf(x, s2)
        )


@dataclass(frozen=True)
class Gaussian(Surrogate):
    """SG(x) = γ N(x; 0, σ)."""

    sigma: float = 0.5
    gamma: float = 1.0

    def primitive(self, x: Tensor) -> Tensor:
        return self.gamma * _normal_cdf(x, self.sigma)

    def grad(self, x: Tensor) -> Tensor:
        return self.gamma * _normal_pdf(x, self.sigma)

    def grad2(self, x: Tensor) -> Tensor:
        return -self.gamma * x / self.sigma**2 * _normal_pdf(x, self.sigma)


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """SuperSpike: SG(x) = 1 / (1 + k|x|)², primitive F(x) = x / (1 + k|x|)."""

    k: float = 10.0

    def primitive(self, x: Tensor) -> Tensor:
        return x / (1 + self.k * x.abs())

    def grad(self, x: Tensor) -> Tensor:
        return 1.0 / (1 + self.k * x.abs()) ** 2

    def grad2(self, x: Tensor) -> Tensor:
        return -2.0 * self.k * torch.sign(x) / (1 + self.k * x.abs()) ** 3


@dataclass(frozen=True)
class Triangle(Surrogate):
    """SG(x) = γ max(0, 1 − |x|/w) / w (a triangle of width 2w and area γ)."""

    width: float = 1.0
    gamma: float = 1.0

    def primitive(self, x: Tensor) -> Tensor:
        c = torch.clamp(x / self.width, -1.0, 1.0)
        return self.gamma * (c - c * c.abs() / 2)

    def grad(self, x: Tensor) -> Tensor:
        return self.gamma * torch.relu(1 - x.abs() / self.width) / self.width

    def grad2(self, x: Tensor) -> Tensor:
        inside = (x.abs() < self.width).to(x.dtype)
        return -self.gamma * torch.sign(x) * inside / self.width**2


SURROGATES: dict[str, type[Surrogate]] = {
    "double-gaussian": DoubleGaussian,
    "gaussian": Gaussian,
    "fast-sigmoid": FastSigmoid,
    "triangle": Triangle,
}
_NAMES = {cls: name for name, cls in SURROGATES.items()}


def get_surrogate(name: str | Surrogate) -> Surrogate:
    """The surrogate called ``name`` with its default settings (an instance passes through)."""
    if isinstance(name, Surrogate):
        return name
    try:
        return SURROGATES[name]()
    except KeyError:
        raise UserError(f"unknown surrogate {name!r}; choose one of: {', '.join(SURROGATES)}") from None
