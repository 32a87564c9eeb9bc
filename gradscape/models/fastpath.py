"""The fast simulation path: the hidden-layer update compiled with :func:`torch.compile`.

:meth:`RecurrentNetwork.forward(fast=True) <gradscape.models.network.RecurrentNetwork.forward>`
already precomputes the input projection W_in i_t for all t in one matmul and applies the readout
after the loop, so per time step only

    x_t = W_in i_t + W_rec z_{t−1},     z_t, s_t = step(ops, x_t, s_{t−1}, params)

remains. :func:`make_step` returns that update, traced from the neuron's own ``step`` (the equations
are never written a second time) and compiled: Inductor fuses the twenty-odd element-wise ops of a
step (and of its backward) into a few loops, so per step the work is the recurrent matmul plus one
fused kernel forward and one backward. That is where the speed-up over the eager loop comes from
(measured in ``benchmarks/bench_sim.py``).

Compiled functions are cached per neuron (step function, state and parameter classes, constants),
so building many networks of one neuron compiles once per input shape (``dynamic=False``: a new
batch size or hidden width compiles again, as does running under ``torch.no_grad``). On CUDA,
``cuda_graphs=True`` compiles with ``mode="reduce-overhead"`` (CUDA graphs), which removes the
kernel-launch cost that dominates small networks; it is off by default because it has not been
validated on a GPU in this project yet.

On CPU, float32 denormals (e.g. the surrogate's Gaussian tails for membranes far from threshold)
can slow the compiled kernels by an order of magnitude on long sequences; this module does not
change the process-wide ``torch.set_flush_denormal`` setting, the caller may
(``benchmarks/bench_sim.py --flush-denormal``).
"""

from __future__ import annotations

import itertools
import types
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gradscape.models.neurons.base import Neuron

__all__ = ["make_step", "make_update", "eager_step", "eager_update", "clear_cache"]

#: a ``step_fn`` for ``RecurrentNetwork.forward(fast=True, step_fn=...)``:
#: (neuron, ops, drive_in_t, z_{t−1}, s_{t−1}, W_rec, params) -> (z_t, s_t)
StepFn = Callable[[Neuron, Any, Tensor, Tensor, Any, Tensor, Any], tuple[Tensor, Any]]

_CACHE: dict[tuple, StepFn] = {}
_COUNTER = itertools.count()


def _fresh_code(fn: Callable, name: str) -> Callable:
    # A fresh code object per cached step: Dynamo keeps compiled graphs (and its recompile limit)
    # per code object, so without this every neuron, shape and grad mode would share one limit.
    code = fn.__code__.replace(co_name=name)
    return types.FunctionType(code, fn.__globals__, name, None, fn.__closure__)


def _hidden_update(step: Callable, tag: str) -> Callable:
    def hidden(ops: Any, drive_in_t: Tensor, z: Tensor, ns: Any, w_rec: Tensor, params: Any):
        return step(ops, drive_in_t + z @ w_rec.T, ns, params)

    return _fresh_code(hidden, f"hidden_step_{tag}")


def _summed_update(step: Callable, tag: str) -> Callable:
    def update(ops: Any, drive_in_t: Tensor, rec_t: Tensor, ns: Any, params: Any):
        return step(ops, drive_in_t + rec_t, ns, params)

    return _fresh_code(update, f"summed_update_{tag}")


_BUILDERS: dict[str, Callable[[Callable, str], Callable]] = {
    "hidden": _hidden_update,
    "summed": _summed_update,
}


def eager_step(
    neuron: Neuron, ops: Any, drive_in_t: Tensor, z: Tensor, ns: Any, w_rec: Tensor, params: Any
) -> tuple[Tensor, Any]:
    """The uncompiled update x_t = drive_in_t + W_rec z_{t−1}; z_t, s_t = neuron.step(...)."""
    return neuron.step(ops, drive_in_t + z @ w_rec.T, ns, params)


def eager_update(
    neuron: Neuron, ops: Any, drive_in_t: Tensor, rec_t: Tensor, ns: Any, params: Any
) -> tuple[Tensor, Any]:
    """The uncompiled update of the spike-sparse path: z_t, s_t = neuron.step(ops, drive_in_t + rec_t,
    s_{t−1}, params), the recurrent product rec_t = W_rec z_{t−1} computed by the caller."""
    return neuron.step(ops, drive_in_t + rec_t, ns, params)


def _cache_key(neuron: Neuron, backend: str, cuda_graphs: bool, kind: str) -> tuple:
    # repr, not the values: constants may be tensors (unhashable); the step function's identity
    # separates two user neurons that share a name.
    constants = repr(sorted(neuron.constants.items()))
    return (neuron.name, neuron.step, neuron.state, neuron.params, constants, backend, cuda_graphs, kind)


class _CompiledStep:
    """Calls the compiled update.

    If the step does not trace into one graph it is compiled with graph breaks; if compilation
    itself fails (e.g. no C++ compiler on the machine) it runs eagerly, with a warning either way.
    """

    def __init__(self, neuron: Neuron, cuda_graphs: bool, backend: str, kind: str = "hidden") -> None:
        self._build = _BUILDERS[kind]
        self._step = neuron.step
        self._tag = f"{''.join(c if c.isalnum() else '_' for c in neuron.name)}_{next(_COUNTER)}"
        self._cuda_graphs = cuda_graphs
        self._backend = backend
        self._fn: Callable = torch.compile(
            self._build(self._step, self._tag), fullgraph=True, dynamic=False, backend=backend
        )
        self._checked: set[tuple] = set()
        self._cuda: Callable | None = None

    def _fallback(self, neuron: Neuron, exc: Exception) -> None:
        if isinstance(exc, torch._dynamo.exc.Unsupported):
            # A user's step may use something Dynamo cannot trace in one graph: compile the parts.
            what = "does not compile to one graph; compiling it with graph breaks"
            self._fn = torch.compile(
                self._build(self._step, self._tag + "_partial"), dynamic=False, backend=self._backend
            )
        else:
            what = "could not be compiled; running it eagerly"
            self._fn = self._build(self._step, self._tag + "_eager")
        warnings.warn(f"neuron {neuron.name!r}: step {what} ({type(exc).__name__}: {exc})", stacklevel=3)

    def __call__(self, neuron: Neuron, ops: Any, drive_in_t: Tensor, *rest: Any) -> Any:
        args = (ops, drive_in_t, *rest)
        if self._cuda_graphs and drive_in_t.is_cuda:
            if self._cuda is None:
                self._cuda = torch.compile(
                    self._build(self._step, self._tag + "_cuda"), dynamic=False, mode="reduce-overhead"
                )
            return self._cuda(*args)
        # Only the first call per shape/grad mode compiles, so only there can compilation fail.
        sig = (tuple(drive_in_t.shape), drive_in_t.dtype, drive_in_t.device, torch.is_grad_enabled())
        if sig in self._checked:
            return self._fn(*args)
        try:
            out = self._fn(*args)
        except Exception as exc:
            self._fallback(neuron, exc)
            out = self._fn(*args)
        self._checked.add(sig)
        return out


def make_step(
    neuron: Neuron, *, compile: bool = True, cuda_graphs: bool = False, backend: str = "inductor"
) -> StepFn:
    """A ``step_fn`` for ``RecurrentNetwork.forward(fast=True, step_fn=...)`` running ``neuron``.

    Args:
        neuron: the neuron whose ``step`` is compiled (constants are part of the cache key).
        compile: False returns the eager update (for comparisons and debugging).
        cuda_graphs: on CUDA tensors, compile with ``mode="reduce-overhead"`` (CUDA graphs).
        backend: the ``torch.compile`` backend (``"aot_eager"`` traces and differentiates the same
            graph without generating code: quick, used by the tests).

    The returned function computes x_t = drive_in_t + W_rec z_{t−1} and returns
    ``neuron.step(ops, x_t, s_{t−1}, params)``; it is cached, so calling ``make_step`` again for the
    same neuron returns the same (already compiled) function.
    """
    if not compile:
        return eager_step
    return _cached(neuron, backend, cuda_graphs, "hidden")


def make_update(neuron: Neuron, *, compile: bool = True, backend: str = "inductor") -> Callable:
    """The per-step update of the spike-sparse path (:mod:`gradscape.models.sparse`), compiled.

    ``update(neuron, ops, drive_in_t, rec_t, s_{t−1}, params) -> (z_t, s_t)``: the recurrent product
    ``rec_t`` comes in already computed (from the nonzero entries of z_{t−1}), so what is compiled is
    the neuron's own ``step`` on x_t = drive_in_t + rec_t. (Emitting the mask z_t ≠ 0 from the same
    kernel was tried: Inductor's CPU code for a bool or uint8 output made the kernel 4–6x slower.)
    ``compile=False`` returns :func:`eager_update`.
    """
    if not compile:
        return eager_update
    return _cached(neuron, backend, False, "summed")


def _cached(neuron: Neuron, backend: str, cuda_graphs: bool, kind: str) -> Any:
    key = _cache_key(neuron, backend, cuda_graphs, kind)
    fn = _CACHE.get(key)
    if fn is None:
        fn = _CACHE[key] = _CompiledStep(neuron, cuda_graphs, backend, kind)
    return fn


def clear_cache() -> None:
    """Forget every compiled step (and Dynamo's compiled graphs)."""
    _CACHE.clear()
    torch._dynamo.reset()
