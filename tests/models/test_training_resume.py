"""A run killed with SIGKILL and resumed gives the same metrics as an uninterrupted run (CPU)."""

import os
import signal
import subprocess
import sys
import time

import torch

from gradscape.cli import main
from gradscape.models.run_folder import read_csv

# one mini-batch per epoch; killed after epoch 1, so the resumed process runs epoch 2 from last.pt
ARGS = ["train", "--model", "alif", "--task", "ecg", "--hidden", "8", "--batch-size", "4",
        "--train-samples", "4", "--eval-samples", "2", "--epochs", "2", "--lr", "0.2", "--threads", "1",
        "--no-progress"]  # fmt: skip


def _epoch_of_last(path):
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # not written yet
        return -1


def _without_wall_time(rows):
    return [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]


def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    n_threads = torch.get_num_threads()
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gradscape", *ARGS, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while _epoch_of_last(killed / "last.pt") < 1:
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no epoch-1 checkpoint within 120 s"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    status = (killed / "status.json").read_text()
    assert '"running"' in status  # it really was interrupted mid-run
    try:
        assert main([*ARGS, "--out", str(killed), "--resume"]) == 0
        assert main([*ARGS, "--out", str(whole)]) == 0
    finally:
        torch.set_num_threads(n_threads)
    a, b = read_csv(killed / "metrics.csv"), read_csv(whole / "metrics.csv")
    assert [r["epoch"] for r in a] == ["0", "1", "2"]
    assert _without_wall_time(a) == _without_wall_time(b)
    assert read_csv(killed / "iterations.csv") == read_csv(whole / "iterations.csv")
    # the loss moved, so equal tables are a real check
    assert len({r["train_loss"] for r in a}) > 1
    assert '"finished"' in (killed / "status.json").read_text()
