"""Training on real ECG data: the loss falls, the run folder is complete, divergence and early stop
are recorded, several seeds get their own folders."""

import json

import pytest
import torch

import gradscape.models.training as training
from gradscape.cli import main
from gradscape.models.checkpoints import load_model
from gradscape.models.datasets import load_task
from gradscape.models.evaluation import evaluate
from gradscape.models.run_folder import read_csv

SMALL = ["--task", "ecg", "--hidden", "8", "--batch-size", "8", "--train-samples", "8",
         "--eval-samples", "2", "--threads", "1", "--no-progress"]  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_training_lowers_loss_on_real_ecg(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--model", "alif", "--epochs", "2", "--lr", "0.2", "--out", str(out), *SMALL]) == 0
    for name in (
        "config.json",
        "metrics.csv",
        "iterations.csv",
        "status.json",
        "init.pt",
        "best.pt",
        "last.pt",
    ):
        assert (out / name).is_file(), name
    rows = read_csv(out / "metrics.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert [float(r["lr"]) for r in rows] == pytest.approx([0.2, 0.2, 0.1])  # linear decay to 0
    assert len(read_csv(out / "iterations.csv")) == 2
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["train_samples"] == 8 and len(cfg["indices"]["train"]) == 8
    assert "gradscape_version" in cfg["provenance"]
    # the loss on the 8 training sequences, before (epoch 0 evaluation) and after 2 Adam steps
    data = load_task("ecg")
    net, _ = load_model(out / "last.pt")
    after = evaluate(net, data.train.subset(8, 0), mode="per_step", sub_seq_length=10)["loss"]
    before = float(rows[0]["train_loss"])
    assert after < before - 0.02, (before, after)
    assert json.loads((out / "status.json").read_text())["status"] == "finished"


def test_nan_loss_ends_run_as_diverged(tmp_path, monkeypatch):
    real = training.train_batch
    calls = []

    def poisoned(*args, **kwargs):
        res = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # second mini-batch of epoch 1
            res.outputs[:] = float("nan")
        return res

    monkeypatch.setattr(training, "train_batch", poisoned)
    out = tmp_path / "div"
    args = ["train", "--model", "brf", "--epochs", "2", "--out", str(out), *SMALL, "--batch-size", "4"]
    assert main(args) == 0
    status = json.loads((out / "status.json").read_text())
    assert status["status"] == "diverged" and status["epoch"] == 1
    assert [r["epoch"] for r in read_csv(out / "metrics.csv")] == ["0"]
    its = read_csv(out / "iterations.csv")
    assert len(its) == 2 and its[1]["loss"] == "nan"
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()


def test_seeds_and_stop_at_val_accuracy(tmp_path):
    out = tmp_path / "seeds"
    args = [
        "train",
        "--model",
        "brf",
        "--epochs",
        "2",
        "--seeds",
        "0-1",
        "--stop-at-val-acc",
        "0",
        "--out",
        str(out),
    ]
    assert main([*args, *SMALL]) == 0
    inits = []
    for s in (0, 1):
        run = out / f"seed-{s}"
        assert json.loads((run / "status.json").read_text())["status"] == "stopped"
        assert json.loads((run / "config.json").read_text())["config"]["seed"] == s
        assert len(read_csv(run / "metrics.csv")) == 1  # stopped after the epoch-0 evaluation
        inits.append(torch.load(run / "init.pt", weights_only=True)["state_dict"]["hidden.weight"])
    assert not torch.equal(*inits)
    # a finished run is not overwritten without --resume
    assert main([*args, *SMALL, "--seeds", "0"]) == 2


def test_optimizer_steps_keep_brf_inside_divergence_boundary():
    from gradscape.models.network import RecurrentNetwork
    from gradscape.models.training import default_config, train_batch

    torch.manual_seed(0)
    net = RecurrentNetwork("brf", 3, 16, 4, init={"omega": "U(99,99.5)"}, seed=0)
    opt = torch.optim.Adam(net.parameters(), lr=5.0)  # pushes about half of the ω past 1/δ = 100
    x, y = torch.rand(20, 4, 3) * 50, torch.randint(0, 4, (4,))
    res = train_batch(net, x, y, default_config("brf", "ecg"), opt)
    assert 0 < int(res.clamped) <= 16
    assert bool((net.hidden.omega.abs() * 0.01 < 1).all())


def test_dense_step_is_compiled_only_for_runs_long_enough_to_repay_it():
    """compile_pays counts epochs × ceil(train_size / batch) (capped by max_batches) against
    DENSE_COMPILE_MIN_BATCHES = 64; hand-counted cases on both sides of it."""
    from gradscape.models.training import DENSE_COMPILE_MIN_BATCHES, compile_pays
    from gradscape.models.training_config import default_config

    assert DENSE_COMPILE_MIN_BATCHES == 64
    cfg = default_config("brf", "ecg", epochs=2)  # batch 16
    assert compile_pays(cfg, 618)  # 2 × 39 = 78 batches
    assert not compile_pays(cfg.replace(epochs=1), 618)  # 39
    assert not compile_pays(cfg, 16 * 31)  # 2 × 31 = 62
    assert compile_pays(cfg, 16 * 31 + 1)  # 2 × 32 = 64: a partial batch counts
    assert not compile_pays(cfg.replace(epochs=10, max_batches=6), 618)  # 60
    assert not compile_pays(cfg.replace(fast=False), 618)  # the eager loop is asked for: never compiled


def test_a_run_long_enough_compiles_its_step_and_evaluates_with_its_own_plan(tmp_path, monkeypatch):
    """With compile_pays true the training plan's dense step is compiled, and evaluation (no grad,
    other batch sizes) takes an uncompiled plan of its own: through the training step every other
    batch size and the no-grad calls recompiled it, on ECG past Dynamo's limit of 8, which ended in
    the 'could not be compiled' fallback. (make_step is replaced by the eager step: what is tested
    is which plan each pass gets, not Inductor, whose compile would cost this test ~15 s.)"""
    import gradscape.models.fastpath as fastpath

    plans = []

    def recording_evaluate(*args, **kwargs):
        plans.append(kwargs["plan"])
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(training, "DENSE_COMPILE_MIN_BATCHES", 1)
    monkeypatch.setattr(training, "evaluate", recording_evaluate)
    monkeypatch.setattr(fastpath, "make_step", lambda neuron, compile=True: fastpath.eager_step)
    out = tmp_path / "run"
    args = ["train", "--model", "alif", "--epochs", "1", "--out", str(out), "--eval-batch-size", "5", *SMALL]
    assert main(args) == 0
    assert json.loads((out / "config.json").read_text())["forward"]["compiled"] is True
    assert len(plans) == 5 and all(p.path == "fast" and not p.compiled for p in plans)  # epochs 0, 1
