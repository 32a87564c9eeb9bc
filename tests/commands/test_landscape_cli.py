"""``gradscape landscape``: bad input, end to end on the bundled ECG models, SIGKILL + resume, torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch

from gradscape.cli import main
from gradscape.landscape.evaluate import load_surface

CKPT = files("gradscape.bundled") / "checkpoints"
BRF = str(CKPT / "ecg_brf.pt")
ALIF = str(CKPT / "ecg_alif.pt")
TINY = ["--task", "ecg", "--samples", "4", "--batch-size", "4", "--steps", "30", "--no-progress"]


def _arrays(path: Path) -> dict[str, bytes]:
    s = load_surface(path)
    return {
        "loss": s.loss.tobytes(),
        "accuracy": s.accuracy.tobytes(),
        "computed": s.computed.tobytes(),
        "center": np.array([s.center["loss"], s.center["accuracy"]]).tobytes(),
    }


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--checkpoint", BRF, "--model", "brf", "--params", "hidden.nope*"], "matches no parameter"),
        (["--checkpoint", BRF, "--model", "brf", "--params", "hidden.mask"], "buffer"),
        (["--checkpoint", BRF, "--model", "brf", "--grid", "1:-1:5"], "bad grid spec"),
        (["--checkpoint", BRF, "--model", "brf", "--grid", "-1:1"], "bad grid spec"),
        (["--checkpoint", "/nonexistent/model.pt"], "does not exist"),
        (["--checkpoint", BRF], "say which with --model"),
        (["--checkpoint", __file__], "cannot read checkpoint"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, extra, message) -> None:
    rc = main(["landscape", *extra, *TINY, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and message in err, err


def test_model_before_checkpoint_and_unknown_action_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["landscape", "--model", "brf", "--checkpoint", BRF])
    assert exc.value.code == 2
    assert main(["landscape", "draw", "x.npz"]) == 2
    assert main(["landscape", "plot", "/nonexistent.npz"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3


def test_end_to_end_two_models_and_replot(tmp_path) -> None:
    out = tmp_path / "o"
    rc = main(
        [
            "landscape",
            "--checkpoint",
            BRF,
            "--model",
            "brf",
            "--checkpoint",
            ALIF,
            "--grid",
            "-1:1:3",
            "--chunk-size",
            "5",
            *TINY,
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    for label in ("brf", "alif"):
        s = load_surface(out / label / "landscape.npz")
        assert s.complete and s.loss.shape == (3, 3)
        cfg = s.meta["config"]
        assert cfg["model_kind"] == label and len(cfg["checkpoint_sha256"]) == 64
        assert cfg["samples"] == 4 and len(cfg["data_indices"]) == 4 and cfg["chunk_size"] == 5
        assert cfg["normalization"] == "filter" and s.meta["provenance"]["gradscape_version"]
        assert s.directions is not None and set(s.directions.names) == {"hidden.weight"}
        assert s.directions.info["masked"] == ["hidden.weight"]  # the reference mask buffer was found
        rep = json.loads((out / label / "measures.json").read_text())
        assert rep["measures"]["points"] == 9 and rep["center"]["computed"]
        assert rep["settings"]["seed"] == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["alif", "brf", "landscape.html", "landscape.pdf", "landscape.png"]
    html = (out / "landscape.html").read_text()
    assert "<script" in html and "cdn.plot.ly" not in html[:2000]
    (out / "landscape.png").unlink()
    assert main(["landscape", "plot", str(out)]) == 0
    assert (out / "landscape.png").stat().st_size > 10_000
    # 1-D curve with accuracy on a twin axis.
    rc = main(
        [
            "landscape",
            "--checkpoint",
            BRF,
            "--model",
            "brf",
            "--dims",
            "1",
            "--grid",
            "-1:1:4",
            *TINY,
            "--out",
            str(tmp_path / "one"),
        ]
    )
    assert rc == 0 and load_surface(tmp_path / "one" / "brf" / "landscape.npz").loss.shape == (4,)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path) -> None:
    args = [
        "landscape",
        "--checkpoint",
        BRF,
        "--model",
        "brf",
        "--grid",
        "-1:1:6",
        "--chunk-size",
        "2",
        "--sequential",
        "--task",
        "ecg",
        "--samples",
        "4",
        "--batch-size",
        "4",
        "--steps",
        "300",
        "--no-progress",
    ]
    killed = tmp_path / "killed"
    result = killed / "brf" / "landscape.npz"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradscape", *args, "--out", str(killed)],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    done = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if result.is_file():
            try:
                done = int(load_surface(result).computed.sum())
            except Exception:  # file replaced while reading: try again
                done = 0
            if done >= 4:
                break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    part = load_surface(result)
    assert 0 < part.computed.sum() < 36, "the run must be killed mid-way"
    assert main([*args, "--out", str(killed), "--resume"]) == 0
    assert main([*args, "--out", str(tmp_path / "whole")]) == 0
    assert _arrays(result) == _arrays(tmp_path / "whole" / "brf" / "landscape.npz")
    # Resuming with another setting is refused in one line.
    assert main([*args[:-1], "--seed", "1", "--no-progress", "--out", str(killed), "--resume"]) == 2


def test_torchrun_two_processes_equal_one(tmp_path) -> None:
    args = [
        "landscape",
        "--checkpoint",
        BRF,
        "--model",
        "brf",
        "--grid",
        "-1:1:5",
        "--chunk-size",
        "3",
        "--device",
        "cpu",
        *TINY,
    ]
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "gradscape",
        *args,
        "--out",
        str(tmp_path / "two"),
    ]
    run = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert _arrays(tmp_path / "two" / "brf" / "landscape.npz") == _arrays(
        tmp_path / "one" / "brf" / "landscape.npz"
    )
    assert (tmp_path / "two" / "landscape.png").is_file()


def test_checkpoint_plane_and_pca_trajectory(tmp_path) -> None:
    from gradscape.models.checkpoints import load_model, save_checkpoint

    net, _ = load_model(BRF, "brf")
    paths = []
    g = torch.Generator().manual_seed(0)
    for k in range(4):
        with torch.no_grad():
            net.hidden.weight.add_(0.05 * torch.randn(net.hidden.weight.shape, generator=g))
        save_checkpoint(tmp_path / f"ep{k}.pt", net)
        paths.append(str(tmp_path / f"ep{k}.pt"))
    common = ["landscape", "--checkpoint", paths[-1], "--grid", "-1:1:3", *TINY]
    assert main([*common, "--directions", "pca", "--trajectory", *paths, "--out", str(tmp_path / "pca")]) == 0
    s = load_surface(tmp_path / "pca" / "brf" / "landscape.npz")
    assert s.extras["path"].shape == (4, 2) and np.allclose(s.extras["path"][-1], 0)
    assert len(s.meta["directions"]["explained_variance_ratio"]) == 2
    assert len(s.meta["config"]["subspace_checkpoints_sha256"]) == 4
    rc = main(
        [
            *common,
            "--directions",
            "checkpoints",
            "--through",
            paths[0],
            paths[1],
            "--out",
            str(tmp_path / "cp"),
        ]
    )
    assert rc == 0
    assert main([*common, "--directions", "pca", "--out", str(tmp_path / "x")]) == 2
