"""``run_landscape``: the job behind the command, the demo and Fig. 5 (curvature, cache, boundaries)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import functional_call

from gradscape.cli import main
from gradscape.errors import UserError
from gradscape.landscape.job import run_landscape
from gradscape.landscape.jobspec import CurvatureSpec, DataSpec, LandscapeJob, ModelEntry
from gradscape.landscape.surface import load_surface
from gradscape.models.checkpoints import save_checkpoint
from gradscape.models.datasets import batches, load_task
from gradscape.models.network import RecurrentNetwork
from gradscape.models.objectives import sequence_loss

STEPS, SAMPLES = 20, 4


@pytest.fixture
def alif_net(tiny_net) -> RecurrentNetwork:
    """A 4-3-6 ALIF network for the ECG task (21 recurrent-layer weights: a dense Hessian is cheap),
    weights scaled so that it spikes (about 18 % of steps) and its readout varies."""
    return tiny_net("alif", 4, 3, 6, seed=0, drive=10.0, readout=10.0)


@pytest.fixture
def tiny_ckpt(tmp_path: Path, alif_net: RecurrentNetwork) -> Path:
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, alif_net)
    return path


def _job(ckpt: Path, out: Path, entry: ModelEntry | None = None, **kw) -> LandscapeJob:
    data = DataSpec(task="ecg", split="test", samples=SAMPLES, steps=STEPS)
    kw.setdefault("grid", "-1:1:3")
    return LandscapeJob(models=(entry or ModelEntry(ckpt),), data=data, out=out, progress=False, **kw)


def test_centre_curvature_equals_the_dense_surrogate_hessian(tmp_path, tiny_ckpt, alif_net, ecg_task) -> None:
    ckpt = tiny_ckpt
    job = _job(ckpt, tmp_path / "o", dtype="float64", curvature=CurvatureSpec(centre=True, tol=1e-10))
    res = run_landscape(job)
    got = res.curvature["alif"]["centre"]
    # Independent: torch.func.hessian of the per-step NLL from step 10 (ALIF's ECG objective, batch
    # mean) over hidden.weight, on the same seeded test subset, through the network's fast forward.
    net = alif_net.to(torch.float64)
    split = ecg_task.test.subset(SAMPLES, 0)
    ((x, y),) = list(batches(split, 256))
    x, y = x[:STEPS].double(), y[:STEPS]
    w0 = net.hidden.weight.detach()

    def loss(w: torch.Tensor) -> torch.Tensor:
        out = functional_call(net, {"hidden.weight": w}, (x,), {"fast": True})
        return sequence_loss(out.outputs, y, mode="per_step", sub_seq_length=10, reduction="mean")

    H = torch.func.hessian(loss)(w0).reshape(w0.numel(), w0.numel()).detach()
    ev = torch.linalg.eigvalsh((H + H.T) / 2)
    # ARPACK at tol 1e-10 on a 21 × 21 operator: agreement to rounding of the float64 HVPs.
    assert got["lambda_max"] == pytest.approx(float(ev[-1]), rel=1e-7, abs=1e-10)
    assert got["lambda_min"] == pytest.approx(float(ev[0]), rel=1e-7, abs=1e-10)
    assert got["lambda_max"] > 0 > got["lambda_min"]  # a spiking network: not convex here
    surface = load_surface(tmp_path / "o" / "alif" / "landscape.npz")
    assert surface.meta["curvature_centre"]["lambda_max"] == got["lambda_max"]
    assert {p.name for p in res.files} >= {"landscape.npz", "measures.json", "landscape.png"}


def test_cache_reuses_complete_results_and_restarts_other_configurations(tmp_path, tiny_ckpt) -> None:
    ckpt = tiny_ckpt
    result = tmp_path / "cache" / "r.npz"

    def job(seed: int, resume: str) -> LandscapeJob:
        entry = ModelEntry(ckpt, label="tiny", result=result)
        return _job(ckpt, result.parent, entry, seed=seed, resume=resume, render=False, write_measures=False)

    first = run_landscape(job(0, "cache")).surfaces["tiny"]
    stamp = result.stat().st_mtime_ns
    again = run_landscape(job(0, "cache")).surfaces["tiny"]
    assert result.stat().st_mtime_ns == stamp, "a complete cached result is reused, not rewritten"
    assert np.array_equal(again.loss, first.loss)
    # A partial file from another configuration: refused with resume="yes", started over with "cache".
    part = load_surface(result)
    part.computed[0] = False
    part.save(result)
    with pytest.raises(UserError, match="different configuration"):
        run_landscape(job(1, "yes"))
    redone = run_landscape(job(1, "cache")).surfaces["tiny"]
    assert redone.complete and redone.meta["config"]["seed"] == 1
    assert not np.array_equal(redone.loss, first.loss)


def test_psmnist_is_read_in_the_pixel_order_the_network_was_trained_with(tmp_path) -> None:
    from gradscape.models.checkpoints import open_checkpoint

    ck = open_checkpoint("bundled:psmnist-brf")
    steps = 60
    data = DataSpec(task="psmnist", split="test", samples=3, subset_seed=0, steps=steps)
    entry = ModelEntry("bundled:psmnist-brf")
    job = LandscapeJob(
        models=(entry,), data=data, out=tmp_path, grid="-0.1:0.1:3", render=False, progress=False
    )
    got = run_landscape(job).surfaces["psmnist-brf"]
    assert got.meta["config"]["pixel_order"] == "the checkpoint's permutation"
    # Independent: the raw pixel sequences (S-MNIST order) permuted by the checkpoint's π, a plain
    # forward, the per-step NLL (PS-MNIST's objective, mean).
    raw = load_task("smnist").test.subset(3, 0)
    x, y = raw.inputs, raw.targets
    x = x[:, ck.permutation.long()].transpose(0, 1)[:steps]
    with torch.no_grad():
        out = ck.model(x)
        ref = sequence_loss(out.outputs, y, mode="per_step", sub_seq_length=0, reduction="mean")
    # float32 forward: the landscape's path (fast or sparse) sums in another order than the loop.
    assert got.centre["loss"] == pytest.approx(float(ref), rel=1e-5)


def test_grid_under_three_points_is_one_line_before_any_work(tmp_path, capsys, tiny_ckpt) -> None:
    ckpt = tiny_ckpt
    rc = main(
        ["landscape", "--checkpoint", str(ckpt), "--task", "ecg", "--grid", "-1:1:2", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "at least 3 points" in err
    assert not (tmp_path / "alif").exists()


def test_demo_and_fig5_call_the_job_not_the_cli() -> None:
    import gradscape.demo
    import gradscape.figures.fig5

    for module in (gradscape.demo, gradscape.figures.fig5):
        tree = ast.parse(inspect.getsource(module))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "gradscape.cli" not in imported and not any(
            m and m.startswith("gradscape.commands") for m in imported
        )
        assert "gradscape.landscape.job" in imported
