"""Session-wide test settings.

Intra-op threads: ``GRADSCAPE_TEST_THREADS`` (default 1). The networks under test are small and run
step by step, where a second OpenMP thread buys nothing and, on a loaded 2-core CI machine, costs up
to 100x in spin-waiting (measured: an ECG forward took 0.15 s with one thread and 17 s with two while
another process was busy). ``.ci/run`` runs the suite once with 1 and once with 2 threads, so no
assertion may depend on the thread count. Subprocesses the tests start inherit OMP_NUM_THREADS.
"""

import os

THREADS = int(os.environ.get("GRADSCAPE_TEST_THREADS", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("MKL_NUM_THREADS", str(THREADS))

import torch  # noqa: E402  (after the environment: OpenMP reads it when torch loads)

torch.set_num_threads(THREADS)

# ----------------------------------------------------------------------------- shared fixtures
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root (examples/, README.md)."""
    return REPO


@pytest.fixture(scope="session")
def test_data() -> Path:
    """tests/data: the custom and deliberately broken neuron files."""
    return REPO / "tests" / "data"


@pytest.fixture(scope="session")
def ecg_task() -> Any:
    """The bundled QTDB ECG task (557/61/141 sequences), loaded once per session; read-only."""
    from gradscape.models.datasets import load_task

    return load_task("ecg")


@pytest.fixture(scope="session")
def tiny_net() -> Callable[..., Any]:
    """A factory of tiny seeded networks: ``tiny_net(kind, inputs, hidden, outputs, seed=…,
    dtype=…, drive=…, readout=…, **RecurrentNetwork kwargs)``. ``drive``/``readout`` scale the
    recurrent-layer and readout weights (enough drive that the neurons spike, so the surrogate path
    is exercised); ``dtype`` float64 for exactness tests."""
    import torch

    from gradscape.models import RecurrentNetwork

    def make(
        kind: Any,
        inputs: int,
        hidden: int,
        outputs: int,
        *,
        seed: int = 0,
        dtype: torch.dtype | None = None,
        drive: float = 1.0,
        readout: float = 1.0,
        **kw: Any,
    ) -> RecurrentNetwork:
        net = RecurrentNetwork(kind, inputs, hidden, outputs, seed=seed, **kw)
        if dtype is not None:
            net = net.to(dtype)
        with torch.no_grad():
            if drive != 1.0:
                net.hidden.weight.mul_(drive)
            if readout != 1.0:
                net.out.weight.mul_(readout)
        return net

    return make
