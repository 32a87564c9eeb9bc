"""The released S-MNIST / PS-MNIST / SHD models: ``bundled:NAME`` needs no other flag, and its accuracy
equals an independent plain loop written here from the reference implementation's conventions.

The full-test-set numbers (99.15 / 98.68 / 92.45 / 95.21 %) take about a minute each on the 2-core CPU
and are a README command; here a seeded 200-image subset is scored both ways.
"""

from __future__ import annotations

import gzip
import math
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from gradscape.cli import main
from gradscape.models.bundled import BUNDLED_MODELS
from gradscape.models.checkpoints import open_checkpoint
from gradscape.models.evaluation import evaluate_checkpoint

BUNDLED = Path(str(resources.files("gradscape.bundled")))


def _mnist(indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 784) in [0, 1] and labels, parsed from the IDX files without gradscape's loader."""
    raw = gzip.decompress((BUNDLED / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    images = np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(10000, 784)
    labels = np.frombuffer(
        gzip.decompress((BUNDLED / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()), np.uint8, offset=8
    )
    idx = np.asarray(indices)
    return torch.tensor(images[idx], dtype=torch.float32) / 255.0, torch.tensor(labels[idx], dtype=torch.long)


def _plain_loop(state: dict, kind: str, pixels: torch.Tensor) -> torch.Tensor:
    """Readout o_t (T, N, 10) of the reference network: W acts on [x_t ; z_{t−1}] (times the mask),
    BRF/RF with δ = 0.01, θ = 1, γ = 0.9; ALIF with δ = 1, ϑ = 0.01 + 1.8 a; leaky readout."""
    w = state["hidden.linear.weight"] * state.get("hidden.linear.mask", 1.0)
    w_out = state["out.linear.weight"]
    alpha_o = torch.exp(-1 / state["out.tau_mem"].abs())
    n, hidden = pixels.shape[0], w.shape[0]
    z = torch.zeros(n, hidden)
    u, v, q, a = (torch.zeros(n, hidden) for _ in range(4))
    o = torch.zeros(n, w_out.shape[0])
    outs = []
    for t in range(pixels.shape[1]):
        x = torch.cat([pixels[:, t : t + 1], z], dim=1) @ w.T
        if kind == "alif":
            alpha = torch.exp(-1 / state["hidden.tau_mem"].abs())
            rho = torch.exp(-1 / state["hidden.tau_adp"].abs())
            a = rho * a + (1 - rho) * z
            threshold = 0.01 + 1.8 * a
            u = alpha * u + (1 - alpha) * x
            z = (u - threshold > 0).float()
            u = u - z * threshold
        else:
            dt, omega, b_off = 0.01, state["hidden.omega"].abs(), state["hidden.b_offset"].abs()
            if kind == "brf":
                b = (-1 + torch.sqrt(1 - (dt * omega) ** 2)) / dt - b_off - q
            else:
                b = -b_off
            u, v = u + dt * (b * u - omega * v + x), v + dt * (omega * u + b * v)
            z = (u - 1.0 - (q if kind == "brf" else 0.0) > 0).float()
            if kind == "brf":
                q = 0.9 * q + z
        o = alpha_o * o + (1 - alpha_o) * (z @ w_out.T)
        outs.append(o)
    return torch.stack(outs)


CASES = [("smnist-brf", "smnist", "brf"), ("smnist-rf", "smnist", "rf"),
         ("smnist-alif", "smnist", "alif"), ("psmnist-brf", "psmnist", "brf")]  # fmt: skip


@pytest.mark.parametrize(("name", "task", "kind"), CASES)
def test_bundled_accuracy_equals_an_independent_plain_loop(name: str, task: str, kind: str) -> None:
    res = evaluate_checkpoint(f"bundled:{name}", task, device="cpu", samples=200, seed=3)
    assert res["bundled"] == f"bundled:{name}" and res["samples"] == 200
    indices = res["subset"]["indices"]
    pixels, labels = _mnist(indices)
    entry = BUNDLED_MODELS[name]
    if entry.permutation is not None:
        perm = torch.load(BUNDLED / "checkpoints" / entry.permutation, map_location="cpu", weights_only=True)
        pixels = pixels[:, perm.long()]
    state = torch.load(entry.path, map_location="cpu", weights_only=True)["model_state_dict"]
    with torch.no_grad():
        outs = _plain_loop(state, kind, pixels)
    # S-MNIST is scored on the last step, PS-MNIST (per-step loss) on the time-mean of the readout.
    pred = outs[-1].argmax(-1) if task == "smnist" else outs.mean(0).argmax(-1)
    correct = int((pred == labels).sum())
    # ±1 image: float32 summation order (matmul blocking) may flip one borderline spike train.
    assert abs(res["accuracy"] / 100 * 200 - correct) <= 1
    # and the released models are the trained ones: at least 90 % on any 200 images (ALIF 92 % overall)
    assert correct >= 170


def test_bundled_names_carry_task_neuron_and_permutation() -> None:
    ck = open_checkpoint("bundled:psmnist-brf")
    assert ck.neuron == "brf" and ck.task == "psmnist" and ck.reference
    assert ck.permutation is not None and sorted(ck.permutation.tolist()) == list(range(784))
    assert open_checkpoint("bundled:smnist-alif").model.hidden_size == 256
    rf = open_checkpoint("bundled:psmnist-rf")
    assert rf.neuron == "rf-posb" and rf.model.neuron.constants["positive_b"] is True
    shd = open_checkpoint("bundled:shd-brf")
    assert (shd.model.input_size, shd.model.hidden_size, shd.model.output_size) == (700, 128, 20)
    assert len(ck.sha256) == 64 and math.isfinite(float(ck.raw["loss"]))


def test_psmnist_rf_grows_where_vanilla_rf_decays() -> None:
    """rf-posb uses b = +|b'|: its membrane eigenvalues 1 + δ(|b'| ± iω) lie outside the unit circle."""
    from gradscape.models.neurons import get_neuron
    from gradscape.models.ops import TorchOps

    def one_step_growth(name: str) -> float:
        neuron = get_neuron(name)
        p = neuron.params(omega=torch.tensor([20.0]), b_offset=torch.tensor([0.5]), **neuron.constants)
        s = neuron.state(torch.tensor([0.3]), torch.tensor([0.4]), torch.tensor([0.0]))
        _, s2 = neuron.step(TorchOps(), torch.tensor([0.0]), s, p)
        return float(torch.hypot(s2.u, s2.v) / torch.hypot(s.u, s.v))

    # |1 + δ(±0.5 + 20i)| with δ = 0.01
    assert one_step_growth("rf-posb") == pytest.approx(abs(1 + 0.01 * (0.5 + 20j)), rel=1e-6)
    assert one_step_growth("rf") == pytest.approx(abs(1 + 0.01 * (-0.5 + 20j)), rel=1e-6)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["evaluate", "--checkpoint", "bundled:nope", "--task", "smnist"], "bundled:smnist-brf"),
        (
            ["evaluate", "--checkpoint", "bundled:shd-brf", "--task", "shd", "--data-dir", "/nonexistent"],
            "SHD",
        ),
        (["evaluate", "--checkpoint", "bundled:smnist-brf", "--task", "smnist", "--model", "alif"], "brf"),
    ],
)
def test_bundled_bad_input_is_one_line_exit_2(argv: list[str], fragment: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err and "Traceback" not in err
