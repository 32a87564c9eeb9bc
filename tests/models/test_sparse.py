"""The spike-sparse inference path: z Wᵀ from z's nonzeros equals the dense product, and
``forward(sparse=True)`` equals the dense forwards wherever it applies and falls back where it cannot."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch.func import functional_call, vmap

from gradscape.landscape.api import recurrent_forward
from gradscape.landscape.evaluate import CPU_STEP_BYTES, _forward_view
from gradscape.models import RecurrentNetwork
from gradscape.models.fastpath import eager_update, make_update
from gradscape.models.sparse import SparseProduct, nonzero_rows, sparse_matmul, sparse_possible

F64 = torch.float64


def _z(b: int, h: int, seed: int, density: float = 0.1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, h, generator=g, dtype=F64) < density).to(F64)


def test_nonzero_rows_by_hand() -> None:
    z = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [2.5, 0.0, -1.0]], dtype=F64)
    r = nonzero_rows(z)
    assert r.cols.tolist() == [1, 0, 2]
    assert r.offsets.tolist() == [0, 1, 1, 3]  # row 1 is empty
    assert r.values.tolist() == [1.0, 2.5, -1.0]


@pytest.mark.parametrize("density", [0.0, 0.08, 0.5, 1.0])
def test_sparse_product_equals_dense(density: float) -> None:
    z = _z(9, 13, 0, density)
    z[3, 4] = 0.25  # graded outputs are multiplied in, not treated as 1
    table = torch.randn(13, 7, generator=torch.Generator().manual_seed(1), dtype=F64)
    torch.testing.assert_close(SparseProduct(table, 9)(z), z @ table, rtol=0, atol=1e-13)
    # max_density=1: the sparse products even where the default switches to the dense one
    torch.testing.assert_close(SparseProduct(table, 9, max_density=1.0)(z), z @ table, rtol=0, atol=1e-13)
    torch.testing.assert_close(sparse_matmul(nonzero_rows(z), table), z @ table, rtol=0, atol=1e-13)


def test_sparse_product_propagates_nan_like_dense() -> None:
    z = _z(4, 6, 2, 0.3)
    z[1, 2] = math.nan
    table = torch.randn(6, 5, dtype=F64)
    out = SparseProduct(table, 4)(z)
    ref = z @ table
    assert torch.equal(out.isnan(), ref.isnan()) and out[1].isnan().all()
    torch.testing.assert_close(out[~ref.isnan()], ref[~ref.isnan()], rtol=0, atol=1e-13)


def test_sparse_possible_only_for_plain_cpu_tensors() -> None:
    x = torch.ones(3)
    w = torch.ones(3, requires_grad=True)
    with torch.no_grad():
        assert sparse_possible(x, w)
    assert not sparse_possible(x)  # no tensor needs a gradient, but grad mode is on: stay dense
    assert not sparse_possible(w)
    with torch.no_grad():
        assert vmap(lambda t: torch.tensor(sparse_possible(t)))(torch.ones(2, 3)).tolist() == [False, False]
        assert not sparse_possible(x.bfloat16())  # numpy has no bfloat16 view


def _net(kind: str, inputs: int = 2, hidden: int = 11) -> RecurrentNetwork:
    init = {"omega": "U(5,20)", "b_offset": "U(0.1,1)"} if kind == "brf" else {}
    net = RecurrentNetwork(kind, inputs, hidden, 3, init=init, seed=2).double().eval()
    with torch.no_grad():
        net.hidden.weight[:, :inputs].mul_(40.0)  # enough drive for spikes in both directions
    return net


@pytest.mark.parametrize("kind", ["brf", "alif", "lif", "rf"])
def test_sparse_forward_equals_default_forward(kind: str) -> None:
    net = _net(kind)
    x = torch.rand(40, 6, 2, generator=torch.Generator().manual_seed(0), dtype=F64) * 5
    with torch.no_grad():
        ref = net(x, record=True)
        out = net(x, record=True, sparse=True, update_fn=eager_update)
    assert 0 < float(ref.spikes.mean()) < 0.5, "the check needs sparse, but not empty, spikes"
    assert torch.equal(out.spikes, ref.spikes)
    torch.testing.assert_close(out.outputs, ref.outputs, rtol=0, atol=1e-12)
    for a, b in zip(out.states, ref.states, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    torch.testing.assert_close(out.final.o, ref.final.o, rtol=0, atol=1e-12)
    # continuing from a state (z_0 ≠ 0) as truncated BPTT does
    with torch.no_grad():
        a = net(x[20:], state=ref.final, sparse=True, update_fn=eager_update).outputs
        b = net(x[20:], state=ref.final).outputs
    torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_sparse_forward_with_the_compiled_update() -> None:
    net = _net("brf")
    x = torch.rand(30, 4, 2, generator=torch.Generator().manual_seed(3), dtype=F64) * 5
    with torch.no_grad(), warnings.catch_warnings():
        # a graph break or compile failure would warn and fall back: make that fail the test
        warnings.filterwarnings("error", message="neuron .*: step")
        ref = net(x)
        out = net(x, sparse=True, update_fn=make_update(net.neuron, backend="aot_eager"))
        default = net(x, sparse=True, keep_spikes=False)  # Inductor, the landscape's default
        forward_only = _forward_view(net)(x, sparse=True, keep_spikes=False)  # the landscape's ops
    assert 0 < float(ref.spikes.mean()) < 0.5
    assert torch.equal(out.spikes, ref.spikes)
    torch.testing.assert_close(out.outputs, ref.outputs, rtol=0, atol=1e-12)
    assert default.spikes is None
    torch.testing.assert_close(default.outputs, ref.outputs, rtol=0, atol=1e-12)
    torch.testing.assert_close(forward_only.outputs, ref.outputs, rtol=0, atol=1e-12)


def test_sparse_forward_falls_back_under_autograd_and_vmap() -> None:
    net = _net("brf")
    x = torch.rand(25, 5, 2, generator=torch.Generator().manual_seed(4), dtype=F64) * 5

    def grads(**kw):
        net.zero_grad(set_to_none=True)
        net(x, **kw).outputs.square().sum().backward()
        return [p.grad.clone() for p in net.parameters()]

    # Sparse products would give no gradient for the silent neurons; the dense path must run.
    for a, b in zip(grads(sparse=True), grads(fast=True), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    params = {k: v.detach() for k, v in net.named_parameters()}
    stacked = {k: torch.stack([v, v * 1.01]) for k, v in params.items()}
    with torch.no_grad():
        batched = vmap(lambda p: functional_call(net, p, (x,), {"sparse": True}).outputs)(stacked)
        one = functional_call(net, {k: v[1] for k, v in stacked.items()}, (x,), {"fast": True}).outputs
    torch.testing.assert_close(batched[1], one, rtol=0, atol=1e-12)


def test_diverging_network_gives_nan_in_sparse_path() -> None:
    # ForwardOps (the landscape's) turn a non-finite membrane into a NaN spike; the sparse products
    # must carry it to the readout exactly as the dense ones do.
    net = _forward_view(_net("rf"))
    x = torch.rand(60, 3, 2, generator=torch.Generator().manual_seed(5), dtype=F64)
    with torch.no_grad():
        net.hidden.weight[:, :2].fill_(1e306)  # u overflows to ±inf, then inf − inf = NaN
        ref = net(x).outputs
        out = net(x, sparse=True, update_fn=eager_update).outputs
    assert ref.isnan().any() and not ref[0].isnan().any()
    assert torch.equal(out.isnan(), ref.isnan())


def test_recurrent_forward_picks_sparse_only_for_large_cpu_steps() -> None:
    net = RecurrentNetwork("brf", 1, 64, 10)
    big = CPU_STEP_BYTES // (64 * 4)
    assert recurrent_forward(net, batch=big) == {"keep_spikes": False, "sparse": True}
    assert recurrent_forward(net, batch=big - 1) == {"keep_spikes": False, "fast": False}
    assert recurrent_forward(net) == {"keep_spikes": False, "fast": False}
    assert recurrent_forward(net, "cuda", batch=big) == {"keep_spikes": False, "fast": True}
    lstm = RecurrentNetwork("lstm", 1, 64, 10)  # dense outputs: nothing to skip
    assert recurrent_forward(lstm, batch=big) == {"keep_spikes": False, "fast": False}


def test_landscape_with_the_sparse_forward_equals_the_dense_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradscape import landscape
    from gradscape.models import sparse as sparse_module

    calls = []
    real_call = sparse_module.SparseProduct.__call__
    monkeypatch.setattr(
        sparse_module.SparseProduct, "__call__", lambda self, z: calls.append(1) or real_call(self, z)
    )

    net = _net("brf", inputs=1, hidden=256)
    g = torch.Generator().manual_seed(6)
    x = torch.rand(12, 128, 1, generator=g, dtype=F64) * 5
    y = torch.randint(0, 3, (128,), generator=g)
    kwargs = recurrent_forward(net, batch=128)
    assert kwargs.get("sparse"), "B·H float64 values are over CPU_STEP_BYTES: the sparse path is chosen"
    dirs = landscape.random_directions(net, seed=0)
    lf, af = landscape.recurrent_objective("last")
    common = dict(data=[(x, y, 128)], accuracy_fn=af, progress=False)
    sparse = landscape.evaluate_surface(net, lf, dirs, "-1:1:3", model_kwargs=kwargs, **common)
    assert len(calls) == 10 * 13  # centre + 9 points, each T + 1 products: the sparse path ran
    dense = landscape.evaluate_surface(net, lf, dirs, "-1:1:3", model_kwargs={"fast": False}, **common)
    assert sparse.meta["config"]["chunk_size"] == 1  # one point at a time: no vmap, so sparse applies
    with torch.no_grad():
        assert 0 < float(net(x).spikes.mean()) < 0.5
    np_ = torch.as_tensor
    torch.testing.assert_close(np_(sparse.loss), np_(dense.loss), rtol=0, atol=1e-12)
    torch.testing.assert_close(np_(sparse.accuracy), np_(dense.accuracy), rtol=0, atol=0)
