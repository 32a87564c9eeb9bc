"""The native spike-sparse kernels: the gather z ↦ z A and the scatter Ā += zᵀ G against the dense
products (an independent computation), at shapes that reach every code path of the kernels: the
8-wide (float32) and 4-wide (float64) nonzero search and its scalar tail, the 64-float register
blocks of a row and their vector and scalar tails, and the multithreaded loops of large steps.

Tolerances: the kernels sum the same terms as the dense product in another order; float64 sums of
≤ 300 terms of size ≤ 5 differ by < 1e-12, float32 ones by < 1e-4 (observed ≤ 2e-5)."""

from __future__ import annotations

import math

import pytest
import torch

from gradscape.models import native_sparse
from gradscape.models import sparse as sparse_module
from gradscape.models.sparse import NativeRows, SparseProduct, add_transposed_product

ATOL = {torch.float64: 1e-12, torch.float32: 1e-4}


def _z(b: int, h: int, density: float, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(b, h, generator=g) < density).to(dtype)


def _table(h: int, n: int, dtype: torch.dtype, seed: int = 1) -> torch.Tensor:
    return torch.randn(h, n, generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.fixture(autouse=True)
def _built() -> None:
    for dtype in ATOL:
        assert native_sparse.kernels(dtype) is not None, "the native kernels must build where the suite runs"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(
    ("b", "h", "n", "density"),
    [
        (5, 3, 2, 0.5),  # scalar search and sums only
        (9, 37, 150, 0.1),  # vector search + tail; two 64-blocks, a vector and a scalar tail
        (512, 300, 266, 0.1),  # large enough for the threaded loops
        (4, 64, 128, 1.0),  # every entry nonzero
        (4, 64, 128, 0.0),  # none
    ],
)
def test_gather_equals_the_dense_product(b: int, h: int, n: int, density: float, dtype: torch.dtype) -> None:
    z = _z(b, h, density, dtype, seed=h)
    z[0, : min(h, 3)] = torch.tensor([0.25, -2.0, 1.0], dtype=dtype)[: min(h, 3)]  # graded values multiply
    table = _table(h, n, dtype)
    product = SparseProduct(table, b, max_density=1.0)
    assert product.native
    torch.testing.assert_close(product(z), z @ table, rtol=0, atol=ATOL[dtype])
    assert product.total == pytest.approx(float(z.double().sum()), abs=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_gather_nan_reaches_the_product_like_dense(dtype: torch.dtype) -> None:
    z = _z(6, 40, 0.2, dtype, seed=3)
    z[2, 17] = math.nan  # in the vector search's range
    z[4, 39] = math.nan  # in its scalar tail
    table = _table(40, 70, dtype)
    out, ref = SparseProduct(table, 6, max_density=1.0)(z), z @ table
    assert torch.equal(out.isnan(), ref.isnan()) and out[2].isnan().all() and out[4].isnan().all()
    torch.testing.assert_close(out[~ref.isnan()], ref[~ref.isnan()], rtol=0, atol=ATOL[dtype])


def test_gather_above_the_density_cap_takes_the_dense_product() -> None:
    z = _z(8, 16, 0.6, torch.float64, seed=5)
    table = _table(16, 9, torch.float64)
    kept: list = []
    out = SparseProduct(table, 8, max_density=0.3)(z, kept)
    assert kept == [None]  # the dense branch ran, nothing kept for the backward
    assert torch.equal(out, z @ table)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize(("b", "h", "n"), [(7, 37, 150), (512, 300, 266)])
def test_scatter_of_kept_steps_equals_the_dense_weight_gradient(
    b: int, h: int, n: int, dtype: torch.dtype
) -> None:
    # more steps than one buffer holds: the kept nonzeros of early steps must survive new buffers
    steps = sparse_module._ARENA_STEPS * 2 + 3
    table = _table(h, n, dtype)
    product = SparseProduct(table, b, max_density=0.2)
    zs = [_z(b, h, 0.1, dtype, seed=k) for k in range(steps)]
    zs[1][0, 0] = 0.5
    kept: list = []
    for z in zs:
        product(z, kept)
        product(z)  # a product that keeps nothing must not overwrite what the others kept
    assert all(isinstance(k, NativeRows) for k in kept)
    assert len({id(k.cols) for k in kept}) > 1, "the steps need more than one buffer"
    gen = torch.Generator().manual_seed(7)
    total = torch.zeros(h, n, dtype=dtype)
    ref = torch.zeros(h, n, dtype=torch.float64)
    for z, rows in zip(zs, kept, strict=True):
        g = torch.randn(b, n, generator=gen).to(dtype)
        add_transposed_product(total, rows, g)
        ref += z.double().T @ g.double()
    torch.testing.assert_close(total.double(), ref, rtol=0, atol=ATOL[dtype] * 10)  # 35 steps summed


def test_scatter_propagates_nan_like_dense() -> None:
    z = _z(5, 20, 0.3, torch.float64, seed=8)
    z[3, 11] = math.nan
    kept: list = []
    SparseProduct(_table(20, 9, torch.float64), 5, max_density=1.0)(z, kept)
    g = torch.randn(5, 9, dtype=torch.float64)
    out = torch.zeros(20, 9, dtype=torch.float64)
    add_transposed_product(out, kept[0], g)
    ref = z.T @ g
    assert torch.equal(out.isnan(), ref.isnan()) and out[11].isnan().all()
    torch.testing.assert_close(out[~ref.isnan()], ref[~ref.isnan()], rtol=0, atol=1e-12)


def test_turned_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADSCAPE_NATIVE_SPARSE", "0")
    assert native_sparse.kernels(torch.float32) is None
    assert not SparseProduct(_table(4, 3, torch.float32), 2).native


def test_other_dtypes_take_the_numpy_path() -> None:
    table = _table(6, 5, torch.float16)
    product = SparseProduct(table, 3, max_density=1.0)
    assert native_sparse.kernels(torch.float16) is None and not product.native
    z = _z(3, 6, 0.5, torch.float16, seed=2)
    torch.testing.assert_close(product(z).double(), z.double() @ table.double(), rtol=0, atol=1e-2)


def test_scatter_refuses_what_does_not_fit_the_nonzeros() -> None:
    kept: list = []
    SparseProduct(_table(6, 4, torch.float64), 3, max_density=1.0)(_z(3, 6, 0.5, torch.float64, seed=1), kept)
    ok = torch.zeros(6, 4, dtype=torch.float64)
    for g, out in [
        (torch.ones(2, 4, dtype=torch.float64), ok),  # B rows of g, not 2
        (torch.ones(3, 4), torch.zeros(6, 4)),  # float32 against float64 nonzeros
        (torch.ones(4, 3, dtype=torch.float64).T, ok),  # not contiguous
    ]:
        with pytest.raises(ValueError, match="do not fit"):
            add_transposed_product(out, kept[0], g)


def test_a_failed_build_warns_once_and_the_numpy_path_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # e.g. no C++ compiler: one warning saying so, then the products take the numpy path
    real_import = native_sparse.importlib.import_module

    def no_codecache(name: str, *args: object) -> object:
        if name == "torch._inductor.codecache":
            raise ImportError("no compiler here")
        return real_import(name, *args)

    native_sparse.build.cache_clear()
    monkeypatch.setattr(native_sparse.importlib, "import_module", no_codecache)
    try:
        with pytest.warns(RuntimeWarning, match="numpy path runs instead"):
            assert native_sparse.kernels(torch.float64) is None
        table = _table(6, 5, torch.float64)
        product = SparseProduct(table, 3, max_density=1.0)  # cached: no second warning
        assert not product.native
        z = _z(3, 6, 0.5, torch.float64, seed=4)
        torch.testing.assert_close(product(z), z @ table, rtol=0, atol=1e-12)
    finally:
        native_sparse.build.cache_clear()  # later tests build the real kernels again
