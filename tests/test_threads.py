"""The default thread count: torch's, less the tasks running elsewhere at the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from gradscape import threads


def test_runnable_elsewhere_reads_the_instant_count(tmp_path: Path) -> None:
    f = tmp_path / "loadavg"
    f.write_text("3.10 2.05 1.00 3/412 12345\n")  # 3 runnable, this process one of them
    assert threads.runnable_elsewhere(str(f)) == 2
    f.write_text("0.00 0.00 0.00 1/80 1\n")
    assert threads.runnable_elsewhere(str(f)) == 0
    assert threads.runnable_elsewhere(str(tmp_path / "absent")) == 0
    f.write_text("garbage\n")
    assert threads.runnable_elsewhere(str(f)) == 0


@pytest.mark.parametrize(("elsewhere", "expected"), [(0, 2), (1, 1), (5, 1)])
def test_default_threads_leaves_busy_cores(
    monkeypatch: pytest.MonkeyPatch, elsewhere: int, expected: int
) -> None:
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: elsewhere)
    assert threads.default_threads(cores=2) == expected


def test_apply_threads_takes_an_explicit_count(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 99)
    try:
        assert threads.apply_threads(2) == 2 and torch.get_num_threads() == 2
        assert threads.apply_threads(None) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_inference_commands_prefer_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "runnable_elsewhere", lambda: 0)
    try:
        assert threads.apply_threads(None, prefer=threads.INFERENCE_THREADS) == 1
        assert threads.apply_threads(2, prefer=1) == 2  # an explicit --threads wins
    finally:
        torch.set_num_threads(before)
