"""Every command takes ``--threads N`` and ``--no-progress`` (issue 10), and ``--threads`` out of
range is one argparse line with exit 2 before anything runs."""

from __future__ import annotations

import pytest

from gradscape.cli import COMMANDS, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_threads_and_no_progress(command: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--threads" in text and "--no-progress" in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_threads_below_one_is_refused(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--threads", "0", "--out", "unused"])
    assert done.value.code == 2
    err = capsys.readouterr().err
    assert "--threads" in err and "Traceback" not in err
