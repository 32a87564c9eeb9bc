"""A neuron's step as two kernels on flat tensors: the forward value and its vector-Jacobian product.

The spike-sparse training pass (:mod:`gradscape.models.sparse_sequence`) runs the time loop itself
and needs, per step t, only

    forward:  (x_t, s_{t−1}, θ) ↦ (z_t, s_t)                          (no derivative: Θ for the spike)
    vjp:      (x_t, s_{t−1}, θ, z̄_t, s̄_t) ↦ (x̄_t, s̄_{t−1}, θ̄)        (x̄ = z̄ ∂z/∂x + s̄ ∂s/∂x, …)

where θ are the neuron's trainable parameter tensors and a bar is a cotangent ∂L/∂·. Both come from
the neuron's one ``step`` definition: the forward with :class:`~gradscape.models.ops.ForwardOps`
(Θ(x), no surrogate primitive to compute and cancel), the VJP traced from ``torch.func.vjp`` of the
step with :class:`~gradscape.models.ops.TorchOps` (so the spike's derivative is the surrogate SG(x),
exactly what autograd uses on every other path). Traced once per neuron, parameter layout and shape
into an FX graph (``make_fx``) and compiled by Inductor into one fused loop each, so a step costs two
kernel calls instead of the forward and backward of twenty-odd element-wise ops with autograd's
bookkeeping between them.

``compile=False`` (or a machine where Inductor cannot compile: a warning says so) runs the traced
graphs eagerly; values are the same.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.fx.experimental.proxy_tensor import make_fx

from gradscape.models.neurons.base import Neuron
from gradscape.models.ops import ForwardOps, TorchOps
from gradscape.models.plan import SPARSE_MIN_STEP_BYTES

__all__ = ["StepKernels", "step_kernels", "tensor_fields", "clear_kernels"]


def tensor_fields(params: Any) -> tuple[str, ...]:
    """Names of the parameter dataclass fields that hold tensors (the kernels' θ inputs)."""
    return tuple(f.name for f in dataclasses.fields(params) if isinstance(getattr(params, f.name), Tensor))


class StepKernels:
    """The kernels of one neuron, parameter layout, shape and dtype (module docstring):

    - ``forward(d, r, *s, *θ, *c) -> (z, *s')``, x = d + r (the input drive and the recurrent
      product, added inside the kernel); with ``training`` it returns ``(x, z, *s')``, x for the VJP;
    - ``vjp(x, *s, *θ, z̄, *s̄', *c) -> (x̄, *s̄, *θ̄)`` (``training`` only), θ̄ with θ's shapes (summed
      over the batch);

    where ``c`` (:meth:`prepare`) are the kernel's values that depend on θ alone (e.g. BRF's
    p(ω) = (−1 + √(1 − (δω)²))/δ), computed once per pass instead of once per element and step."""

    def __init__(
        self, neuron: Neuron, ops: TorchOps, params: Any, n_state: int, compile: bool, training: bool
    ) -> None:
        self.neuron, self.n_state = neuron, n_state
        self.names = tensor_fields(params)
        self._params = params
        self._fwd_ops, self._ops = ForwardOps(ops.surrogate), ops
        self.compile, self.training = compile, training
        self.forward: Callable[..., tuple[Tensor, ...]] = _unbuilt
        self.vjp: Callable[..., tuple[Tensor, ...]] = _unbuilt
        self._prep_fwd: Callable[..., tuple[Tensor, ...]] = _unbuilt
        self._prep_vjp: Callable[..., tuple[Tensor, ...]] = _no_values

    def _flat(self, ops: TorchOps, state_type: type) -> Callable:
        neuron, names, params, k = self.neuron, self.names, self._params, self.n_state

        def step(x: Tensor, *flat: Tensor) -> tuple[Tensor, ...]:
            p = dataclasses.replace(params, **dict(zip(names, flat[k:], strict=True)))
            z, ns = neuron.step(ops, x, state_type(*flat[:k]), p)
            return (z, *ns)

        return step

    def build(
        self, d: Tensor, r: Tensor, state: Sequence[Tensor], theta: Sequence[Tensor], state_type: type
    ) -> None:
        """Trace, split and compile the kernels for tensors like these."""
        value = self._flat(self._fwd_ops, state_type)
        training = self.training

        def fwd(d_: Tensor, r_: Tensor, *args: Tensor) -> tuple[Tensor, ...]:
            x = d_ + r_
            out = value(x, *args)
            return (x, *out) if training else out

        like = (d, r, *state, *theta)
        with torch.no_grad():
            fwd_gm = make_fx(fwd)(*like)
            out = fwd_gm(*like)
        self._prep_fwd, fwd_main = hoist(fwd_gm, range(2 + len(state), len(like)))
        cf, _ = self.prepare(theta)
        self.forward = _compiled(fwd_main, (*like, *cf), self.neuron) if self.compile else fwd_main
        if not training:
            return
        flat = self._flat(self._ops, state_type)
        n_in = 1 + len(state) + len(theta)

        def vjp(*args: Tensor) -> tuple[Tensor, ...]:
            _, pull = torch.func.vjp(flat, *args[:n_in])
            return pull(tuple(args[n_in:]))

        primals = (out[0], *state, *theta)
        with torch.no_grad():
            vjp_gm = make_fx(vjp)(*primals, *(torch.ones_like(o) for o in out[1:]))
        self._prep_vjp, vjp_main = hoist(vjp_gm, range(1 + len(state), n_in))
        _, cv = self.prepare(theta)
        self.vjp = _compiled(vjp_main, (*primals, *out[1:], *cv), self.neuron) if self.compile else vjp_main

    def prepare(self, theta: Sequence[Tensor]) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """The θ-only values of the forward and of the VJP kernel (pass them after the other inputs)."""
        with torch.no_grad():
            return tuple(self._prep_fwd(*theta)), tuple(self._prep_vjp(*theta))


def _no_values(*_: Any) -> tuple[Tensor, ...]:
    return ()


def _unbuilt(*_: Any) -> tuple[Tensor, ...]:
    raise RuntimeError("StepKernels.build was not called")


def hoist(gm: torch.fx.GraphModule, positions: Sequence[int]) -> tuple[Callable, torch.fx.GraphModule]:
    """Split ``gm`` into ``prep(*θ) -> c`` and ``main(*args, *c)``: the nodes that depend only on the
    placeholders at ``positions`` (θ) and on constants are computed by ``prep``; ``main`` gets those
    of them it uses as extra inputs. ``main(*args, *prep(*θ))`` equals ``gm(*args)``."""
    graph = gm.graph
    holders = [n for n in graph.nodes if n.op == "placeholder"]
    theta = {holders[i] for i in positions}
    pure: set[torch.fx.Node] = set()  # depends on θ, and on nothing but θ and constants
    const = set(theta)
    for node in graph.nodes:
        if node.op == "get_attr":
            const.add(node)
        elif node.op == "call_function" and all(a in const for a in node.all_input_nodes):
            const.add(node)
            if any(a in theta or a in pure for a in node.all_input_nodes):
                pure.add(node)
    frontier = [n for n in graph.nodes if n in pure and any(u not in const for u in n.users)]
    prep_graph = torch.fx.Graph()
    env: dict[torch.fx.Node, torch.fx.Node] = {}
    for i in positions:
        env[holders[i]] = prep_graph.placeholder(holders[i].name)
    for node in graph.nodes:
        if node in const and node not in theta:
            env[node] = prep_graph.node_copy(node, lambda a: env[a])
    prep_graph.output(tuple(env[n] for n in frontier))
    prep_graph.eliminate_dead_code()
    prep = torch.fx.GraphModule(gm, prep_graph)
    main = torch.fx.GraphModule(gm, copy.deepcopy(graph))
    nodes = {n.name: n for n in main.graph.nodes}
    last = [n for n in main.graph.nodes if n.op == "placeholder"][-1]
    for node in reversed(frontier):
        with main.graph.inserting_after(last):
            hold = main.graph.placeholder(f"hoisted_{node.name}")
        nodes[node.name].replace_all_uses_with(hold)
    main.graph.eliminate_dead_code()
    main.recompile()
    return prep, main


def _compiled(gm: torch.fx.GraphModule, example: Sequence[Tensor], neuron: Neuron) -> Callable:
    try:
        with torch.no_grad():
            fn = _inductor_kernel(gm, example)
            fn(*example)
    except Exception as exc:  # no C++ compiler, an op Inductor lacks: the traced graph still runs
        warnings.warn(
            f"neuron {neuron.name!r}: step kernel could not be compiled; running it eagerly "
            f"({type(exc).__name__}: {str(exc)[:200]})",
            stacklevel=4,
        )
        return gm
    return fn


def _inductor_kernel(gm: torch.fx.GraphModule, example: Sequence[Tensor]) -> Callable:
    """``gm`` compiled by Inductor, called as Inductor's own compiled graph.

    The graph is already traced, pure and run without gradients, so neither Dynamo (its guards cost
    ~30 µs per call) nor AOTAutograd's runtime wrappers (aliasing, mutation and grad-mode handling
    this graph has none of) are needed: the graph is decomposed as AOTAutograd would and handed to
    Inductor's inner compiler, whose callable takes the inputs as one list. Measured on the 2-core
    Xeon (BRF, B = H = 256, 1 thread): 127 → 99 µs per forward-kernel call and 286 → 255 µs per VJP
    call against ``torch._inductor.compile``, which stays the fallback where that route fails."""
    inductor = importlib.import_module("torch._inductor")
    try:
        compile_fx = importlib.import_module("torch._inductor.compile_fx")
        decompositions = importlib.import_module("torch._inductor.decomposition").select_decomp_table()
        graph = compile_fx.compile_fx_inner(
            make_fx(gm, decomposition_table=decompositions)(*example), list(example)
        )
        run = graph.current_callable
    except Exception:  # internals of another torch version: the route this module used before
        return inductor.compile(gm, list(example))

    def call(*args: Tensor) -> tuple[Tensor, ...]:
        return run(list(args))  # a fresh list: the compiled graph empties the one it gets

    return call


_KERNELS: dict[tuple, StepKernels] = {}


def step_kernels(
    neuron: Neuron,
    ops: TorchOps,
    params: Any,
    d: Tensor,
    r: Tensor,
    state: Any,
    *,
    compile: bool = True,
    training: bool = True,
) -> StepKernels:
    """The (cached) kernels of ``neuron`` for drives like ``d`` and ``r`` (B, H; a compiled kernel
    takes tensors of exactly these shapes and strides), state ``state`` (a named tuple of tensors)
    and parameters ``params`` (its dataclass; the tensor fields are θ, every other field is a
    constant of the kernels and part of the cache key). ``training=False``: the forward alone.
    ``compile`` compiles them only for steps of at least
    :data:`~gradscape.models.plan.SPARSE_MIN_STEP_BYTES` (smaller ones do not repay the cold start:
    the traced graph runs eagerly)."""
    compile = compile and d.numel() * d.element_size() >= SPARSE_MIN_STEP_BYTES
    names = tensor_fields(params)
    theta = tuple(getattr(params, n) for n in names)
    constants = repr(
        [(f.name, getattr(params, f.name)) for f in dataclasses.fields(params) if f.name not in names]
    )
    key = (
        neuron.name,
        neuron.step,
        neuron.params,
        repr(sorted(neuron.constants.items())),
        constants,
        repr(ops.surrogate),
        names,
        tuple((tuple(t.shape), t.stride()) for t in (d, r, *state, *theta)),
        d.dtype,
        d.device,
        compile,
        training,
        torch.get_num_threads(),  # Inductor's CPU kernels fix their OpenMP thread count
    )
    kernels = _KERNELS.get(key)
    if kernels is None:
        kernels = StepKernels(neuron, ops, params, len(state), compile, training)
        detached = [t.detach() for t in theta]
        kernels.build(d.detach(), r.detach(), [s.detach() for s in state], detached, type(state))
        _KERNELS[key] = kernels
    return kernels


def clear_kernels() -> None:
    """Forget every traced and compiled kernel."""
    _KERNELS.clear()
