"""The spike-sparse training path: forward products from z's nonzeros, the weight gradients from the
same nonzeros (per step with the native kernels, per chunk of steps on the numpy path; both are
run). Its gradients must equal the eager loop's (an independent
computation: dense products, autograd's own weight gradients) for every neuron family.

Tolerance 1e-10 in float64 (issue 10): the two paths differ only in the order of floating-point
sums (observed differences ≤ 3e-15); a missing or misplaced term would be of the size of a gradient
entry (≥ 1e-4 here)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch.func import functional_call, grad, vmap

from gradscape.models import RecurrentNetwork, native_sparse, sparse_sequence
from gradscape.models import sparse as sparse_module
from gradscape.models.fastpath import eager_update
from gradscape.models.plan import ForwardPlan
from gradscape.models.sparse import transposed_product

F64 = torch.float64
ATOL = 1e-10
CUSTOM = f"{Path(__file__).resolve().parents[1] / 'data' / 'custom_neuron.py'}:Leaky"
SPARSE = ForwardPlan("sparse", update_fn=eager_update)
NEURONS = ["brf", "rf", "rf+rp", "rf+sr", "rf+db", "rf+rp+sr+db", "rf-posb", "alif", "lif", CUSTOM]


def _net(kind: str, hidden: int = 13, mask: bool = False) -> RecurrentNetwork:
    init = {"omega": "U(5,20)", "b_offset": "U(0.1,1)"} if kind.startswith("brf") else {}
    net = RecurrentNetwork(kind, 2, hidden, 3, init=init, seed=2).double()
    with torch.no_grad():
        net.hidden.weight[:, :2].mul_(40.0)  # enough drive for spikes
    if mask:
        m = (torch.rand(net.hidden.weight.shape, generator=torch.Generator().manual_seed(9)) < 0.7).double()
        net.hidden.register_buffer("mask", m)
    return net


def _x(t: int = 37, b: int = 6, seed: int = 0) -> torch.Tensor:
    return torch.rand(t, b, 2, generator=torch.Generator().manual_seed(seed), dtype=F64) * 5


def _loss(out) -> torch.Tensor:
    # readout at every step, the last step's softmax, the spikes and the final state all count
    final = sum(f.square().sum() for f in out.final.neuron)
    return out.outputs[-1].logsumexp(-1).sum() + out.outputs.square().mean() + 0.1 * out.spikes.sum() + final


def _grads(net: RecurrentNetwork, x: torch.Tensor, plan, loss=_loss, **kw) -> list[torch.Tensor]:
    net.zero_grad(set_to_none=True)
    loss(net(x, plan=plan, **kw)).backward()
    return [p.grad.clone() for p in net.parameters()]


def _close(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, rtol=0, atol=ATOL)


@pytest.fixture(params=[True, False], ids=["native", "numpy"])
def native(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run the test with the native kernels and with the numpy path they fall back to."""
    if request.param:
        assert native_sparse.kernels(F64) is not None, "the native kernels must build where the suite runs"
    else:
        monkeypatch.setenv("GRADSCAPE_NATIVE_SPARSE", "0")
    return request.param


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the sparse forward products and weight-gradient products that ran (``weight``: per
    chunk on the numpy path; ``weight_step``: per step with the native kernels)."""
    calls = {"forward": 0, "weight": 0, "weight_step": 0}
    real_call, real_t = sparse_module.SparseProduct.__call__, sparse_module.transposed_product
    real_nz, real_add = sparse_module.nonzero_transposed_product, sparse_module.add_transposed_product

    def call(self, z, *keep):
        calls["forward"] += 1
        return real_call(self, z, *keep)

    def weight(z, g, max_density=0.3):  # from a dense z (a chunk above the density cap)
        calls["weight"] += 1
        return real_t(z, g, max_density)

    def weight_nz(*args):  # from the nonzeros the forward found
        calls["weight"] += 1
        return real_nz(*args)

    def weight_step(*args):  # one step's, from the native gather's nonzeros
        calls["weight_step"] += 1
        return real_add(*args)

    monkeypatch.setattr(sparse_module.SparseProduct, "__call__", call)
    monkeypatch.setattr(sparse_module, "transposed_product", weight)
    monkeypatch.setattr(sparse_module, "nonzero_transposed_product", weight_nz)
    monkeypatch.setattr(sparse_module, "add_transposed_product", weight_step)
    return calls


@pytest.mark.parametrize("force", [False, True], ids=["default-density", "all-sparse"])
@pytest.mark.parametrize("kind", NEURONS)
def test_gradients_equal_the_eager_loop(
    kind: str, force: bool, native: bool, counted: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    if force:  # sparse products even where the default density cap would take the dense ones
        monkeypatch.setattr(sparse_module, "TRAINING_MAX_DENSITY", 1.0)
        monkeypatch.setattr(sparse_module, "WEIGHT_GRAD_MAX_DENSITY", 1.0)
    net = _net(kind)
    x = _x()
    with torch.no_grad():
        ref = net(x, plan="eager")
    assert 0 < float(ref.spikes.mean()) < 1, "the check needs spikes, not all neurons firing"
    g_ref = _grads(net, x, "eager")
    counted.update(forward=0, weight=0, weight_step=0)
    out = net(x, plan=SPARSE)
    assert counted["forward"] == 38  # z_0 … z_T: the sparse path ran
    torch.testing.assert_close(out.outputs, ref.outputs, rtol=0, atol=ATOL)
    assert torch.equal(out.spikes, ref.spikes)
    _close(_grads(net, x, SPARSE), g_ref)
    if not native:
        assert counted["weight"] == 3  # T + 1 = 38 products: chunks [0, 16), [16, 32), [32, 38)
    elif force:
        assert counted["weight_step"] == 38 and counted["weight"] == 0  # every z_k once, from its nonzeros
    else:  # steps above the density cap take a GEMM instead
        assert counted["weight_step"] <= 38 and counted["weight"] == 0


def test_gradients_with_a_mask_and_graded_z(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sparse_module, "TRAINING_MAX_DENSITY", 1.0)
    monkeypatch.setattr(sparse_module, "WEIGHT_GRAD_MAX_DENSITY", 1.0)
    net = _net("alif", mask=True)
    x = _x()
    # a graded, nonzero initial output z_0 (and a state carrying gradients in): products must
    # multiply the values in, not count them as spikes
    s0 = net.initial_state(x.shape[1])
    z0 = (torch.rand(s0.z.shape, generator=torch.Generator().manual_seed(4), dtype=F64) < 0.3) * 0.7
    s0 = s0._replace(z=z0.double().requires_grad_(True))

    def grads(plan):
        net.zero_grad(set_to_none=True)
        s0.z.grad = None
        _loss(net(x, plan=plan, state=s0)).backward()
        return [p.grad.clone() for p in net.parameters()] + [s0.z.grad.clone()]

    _close(grads(SPARSE), grads("eager"))


def test_truncated_bptt_chunks_equal_the_eager_loop() -> None:
    net = _net("brf")
    x = _x(40)

    def run(plan):
        net.zero_grad(set_to_none=True)
        state = None
        for start in range(0, 40, 15):  # 15, 15, 10 steps; state detached between chunks
            out = net(x[start : start + 15], plan=plan, state=state)
            _loss(out).backward()
            state = out.final._replace(
                z=out.final.z.detach(),
                neuron=type(out.final.neuron)(*(f.detach() for f in out.final.neuron)),
                o=out.final.o.detach(),
            )
        return [p.grad.clone() for p in net.parameters()]

    _close(run(SPARSE), run("eager"))


def test_loss_on_early_steps_only() -> None:
    # products after step 9 are not reached by the backward: their slots of the deferred weight
    # gradient must count as zero, not as stale memory
    net = _net("brf")
    x = _x()

    def early(out):
        return out.outputs[:10].square().sum()

    for _ in range(2):  # the second pass reuses nothing from the first
        _close(_grads(net, x, SPARSE, loss=early), _grads(net, x, "eager", loss=early))


def test_retain_graph_twice_gives_twice_the_gradient() -> None:
    net = _net("lif")
    x = _x(20)
    net.zero_grad(set_to_none=True)
    loss = _loss(net(x, plan=SPARSE))
    loss.backward(retain_graph=True)
    loss.backward()
    twice = [p.grad.clone() for p in net.parameters()]
    _close(twice, [2 * g for g in _grads(net, x, "eager")])


def test_hessian_vector_product_equals_the_eager_loop() -> None:
    # create_graph=True: the sparse products' backward is the dense differentiable VJP
    net = _net("brf")
    x = _x(12)
    params = dict(net.named_parameters())
    v = {
        k: torch.randn(p.shape, generator=torch.Generator().manual_seed(1), dtype=F64)
        for k, p in params.items()
    }

    def hvp(plan):
        g = torch.autograd.grad(_loss(net(x, plan=plan)), list(params.values()), create_graph=True)
        gv = sum((gi * v[k]).sum() for gi, k in zip(g, params, strict=True))
        return list(torch.autograd.grad(gv, list(params.values())))

    _close(hvp(SPARSE), hvp("eager"))


def test_torch_func_transforms_fall_back_to_dense() -> None:
    net = _net("brf")
    x = _x(10)
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, plan):
        return _loss(functional_call(net, p, (x,), {"plan": plan}))

    g_sparse = grad(loss)(params, SPARSE)
    g_ref = grad(loss)(params, "eager")
    _close(list(g_sparse.values()), list(g_ref.values()))
    stacked = {k: torch.stack([v, v * 1.01]) for k, v in params.items()}
    batched = vmap(lambda p: functional_call(net, p, (x,), {"plan": SPARSE}).outputs)(stacked)
    one = functional_call(net, {k: v[1] for k, v in stacked.items()}, (x,), {"plan": "eager"}).outputs
    torch.testing.assert_close(batched[1], one, rtol=0, atol=ATOL)


def test_compiled_step_kernels_equal_the_eager_loop() -> None:
    # the default plan at a large step: forward and VJP kernels compiled by Inductor (float64 here)
    net = _net("brf", hidden=128)
    x = _x(t=9, b=256)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="neuron .*: step kernel")  # a fallback would warn
        g = _grads(net, x, ForwardPlan("sparse", compiled=True))
    _close(g, _grads(net, x, "eager"))


def test_compiled_inference_kernel_equals_the_eager_loop() -> None:
    net = _net("rf+rp+sr+db", hidden=128)
    x = _x(t=9, b=256)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("error", message="neuron .*: step kernel")
        out = net(x, plan=ForwardPlan("sparse", compiled=True))
        ref = net(x, plan="eager")
    torch.testing.assert_close(out.outputs, ref.outputs, rtol=0, atol=ATOL)
    assert torch.equal(out.spikes, ref.spikes)


def test_transposed_product_by_hand() -> None:
    z = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.5, 3.0]], dtype=F64)
    g = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], dtype=F64)
    by_hand = torch.tensor(
        [[2 * 4 + 0.5 * 7, 2 * 5 + 0.5 * 8, 2 * 6 + 0.5 * 9], [1 + 21, 2 + 24, 3 + 27]], dtype=F64
    )
    assert torch.equal(transposed_product(z, g, max_density=1.0), by_hand)
    assert torch.equal(transposed_product(z, g, max_density=0.0), by_hand)  # the dense branch
    empty = transposed_product(torch.zeros(4, 2, dtype=F64), torch.ones(4, 3, dtype=F64), max_density=1.0)
    assert torch.equal(empty, torch.zeros(2, 3, dtype=F64))


def test_no_reference_cycle_keeps_a_pass_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import weakref

    net = _net("lif")
    x = _x(8)
    seen = []
    real_init = sparse_sequence._Pass.__init__

    def init(self, *a, **k):
        real_init(self, *a, **k)
        seen.append(weakref.ref(self))

    monkeypatch.setattr(sparse_sequence._Pass, "__init__", init)
    gc.collect()
    gc.disable()  # freed by reference counting alone, or the stored spikes outlive the batch
    try:
        _loss(net(x, plan=SPARSE)).backward()
        assert seen and seen[0]() is None
    finally:
        gc.enable()


def test_plan_forward_and_auto_plan_policy() -> None:
    from gradscape.models.plan import SPARSE_MIN_STEP_BYTES, auto_plan, plan_forward

    net = RecurrentNetwork("brf", 1, 64, 10)  # float32: 4 bytes per value
    big = SPARSE_MIN_STEP_BYTES // (64 * 4)
    # issue 10's policy: the sparse path compiles its step kernels by default (compile=False: not)
    for grad_ in (False, True):
        plan = plan_forward(net, grad=grad_, batch=big)
        assert plan.path == "sparse" and plan.update_fn is None and plan.compiled
        assert plan_forward(net, grad=grad_, batch=big - 1).path == "fast"
        assert plan_forward(net, grad=grad_, batch=big, sparse=False).path == "fast"
        assert plan_forward(net, grad=grad_, batch=big, device="cuda").path == "fast"
        uncompiled = plan_forward(net, grad=grad_, batch=big, compile=False)
        assert uncompiled.update_fn is eager_update and not uncompiled.compiled
    assert plan_forward(RecurrentNetwork("lstm", 1, 64, 10), grad=True, batch=big).path == "fast"
    x = torch.zeros(3, big, 1)
    assert auto_plan(net, x, grad=True).path == "sparse"
    assert auto_plan(net, x[:, : big - 1], grad=True).path == "eager"  # small: the reference loop
    assert auto_plan(RecurrentNetwork("lstm", 1, 64, 10), x, grad=True).path == "fast"


def test_model_without_a_plan_takes_the_sparse_path_at_large_steps(counted: dict[str, int]) -> None:
    # B·H·8 bytes = 256 KiB: the default forward is the spike-sparse one, gradients equal the eager loop's
    net = _net("brf", hidden=128)
    x = _x(t=9, b=256)
    g_ref = _grads(net, x, "eager")
    counted.update(forward=0, weight=0, weight_step=0)
    _close(_grads(net, x, None), g_ref)
    assert counted["forward"] == 10
