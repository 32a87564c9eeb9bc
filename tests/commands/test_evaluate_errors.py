"""Bad input to train/evaluate: one line on stderr and exit code 2."""

import importlib.resources

import pytest
import torch

from gradscape.cli import main

BRF = str(importlib.resources.files("gradscape.bundled") / "checkpoints" / "ecg_brf.pt")


def _one_line_error(capsys, args):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err and "Traceback" not in err
    return err


def test_unknown_model_and_task(capsys, tmp_path):
    assert "unknown model" in _one_line_error(
        capsys, ["train", "--model", "xyz", "--task", "ecg", "--out", str(tmp_path)]
    )
    assert "unknown task" in _one_line_error(
        capsys, ["train", "--model", "brf", "--task", "cifar", "--out", str(tmp_path)]
    )
    assert "unknown task" in _one_line_error(
        capsys, ["evaluate", "--checkpoint", BRF, "--task", "cifar", "--model", "brf"]
    )
    assert "unknown model" in _one_line_error(
        capsys, ["evaluate", "--checkpoint", BRF, "--task", "ecg", "--model", "xyz"]
    )


def test_missing_data(capsys, tmp_path):
    _one_line_error(
        capsys,
        ["evaluate", "--checkpoint", BRF, "--task", "shd", "--model", "brf", "--data-dir", str(tmp_path)],
    )
    _one_line_error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--task", "ecg"])


def test_malformed_and_mismatched_checkpoints(capsys, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    assert "cannot read" in _one_line_error(capsys, ["evaluate", "--checkpoint", str(bad), "--task", "ecg"])
    ref = torch.load(BRF, map_location="cpu", weights_only=True)
    missing = dict(
        ref, model_state_dict={k: v for k, v in ref["model_state_dict"].items() if k != "out.tau_mem"}
    )
    torch.save(missing, tmp_path / "missing.pt")
    err = _one_line_error(
        capsys, ["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--task", "ecg", "--model", "brf"]
    )
    assert "out.tau_mem" in err
    sd = dict(ref["model_state_dict"])
    sd["out.tau_mem"] = torch.ones(7)
    torch.save(dict(ref, model_state_dict=sd), tmp_path / "shape.pt")
    err = _one_line_error(
        capsys, ["evaluate", "--checkpoint", str(tmp_path / "shape.pt"), "--task", "ecg", "--model", "brf"]
    )
    assert "shape" in err
    # a 4-input ECG network cannot be scored on 1-channel S-MNIST
    assert "input channels" in _one_line_error(
        capsys, ["evaluate", "--checkpoint", BRF, "--task", "smnist", "--model", "brf"]
    )
    # BRF and RF share key names: the model must be named
    assert "--model" in _one_line_error(capsys, ["evaluate", "--checkpoint", BRF, "--task", "ecg"])


def test_bad_flags(capsys, tmp_path):
    base = ["train", "--model", "brf", "--task", "ecg", "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:  # argparse's own check, one line via cli._Parser
        main([*base, "--tbptt-mode", "sideways"])
    assert exc.value.code == 2
    capsys.readouterr()
    assert "--lr" in _one_line_error(capsys, [*base, "--lr", "-1"])
    assert "seeds" in _one_line_error(capsys, [*base, "--seeds", "3-1"])
    assert "init" in _one_line_error(capsys, [*base, "--init", "omega"])
