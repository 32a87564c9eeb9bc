"""Checkpoints are data: opening one never runs a neuron file it names (issue 13, issue 11).

A run trained with ``path.py:Name`` records the spec and the file's sha256; reopening it needs that
neuron passed again (checked against the hash) or an explicit ``--trust-neuron-file``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gradscape.cli import main
from gradscape.errors import UserError
from gradscape.models.checkpoints import open_checkpoint
from gradscape.models.run_folder import write_status
from gradscape.models.training import default_config, train

NEURON = """
from dataclasses import dataclass
import shutil
from pathlib import Path
from typing import Any, NamedTuple

from gradscape.models import Neuron, Normal

Path({marker!r}).write_text("the file ran")


class S(NamedTuple):
    u: Any


@dataclass(frozen=True)
class P:
    tau: Any
    theta: float = {theta}


def step(ops, x, s, p):
    a = ops.exp(-1 / ops.abs(p.tau))
    u = a * s.u + (1 - a) * x
    z = ops.spike(u - p.theta)
    return z, S(u - z * p.theta)


Leaky = Neuron(name="leaky", step=step, state=S, params=P, init={{"tau": Normal(10.0, 1.0)}}, membrane=("u",))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("safety")
    marker = root / "marker.txt"
    neuron = root / "leaky.py"
    neuron.write_text(NEURON.format(marker=str(marker), theta=1.0))
    cfg = default_config(f"{neuron}:Leaky", "ecg").replace(
        epochs=1, hidden_size=4, batch_size=4, train_samples=4, eval_samples=4, device="cpu"
    )
    train(cfg, root / "run", progress=False)
    marker.unlink()
    return root / "run", neuron, marker


def test_a_checkpoint_naming_a_neuron_file_does_not_run_it(run, capsys) -> None:
    folder, _, marker = run
    assert main(["evaluate", "--checkpoint", str(folder), "--task", "ecg", "--samples", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--model" in err and "--trust-neuron-file" in err
    assert "Traceback" not in err
    assert not marker.exists()  # the file's top-level code never ran


def test_passing_the_neuron_again_or_trusting_the_record_opens_it(run) -> None:
    folder, neuron, _ = run
    ck = open_checkpoint(folder, f"{neuron}:Leaky")
    assert ck.neuron == f"{neuron}:Leaky" and ck.label == "leaky"
    assert ck.config["neuron_file"]["sha256"] == ck.model.neuron.source.sha256
    assert open_checkpoint(folder, trust_neuron_file=True).model.hidden_size == 4
    assert main(["evaluate", "--checkpoint", str(folder), "--task", "ecg", "--samples", "2",
                 "--model", f"{neuron}:Leaky", "--json"]) == 0  # fmt: skip


def test_a_changed_neuron_file_is_refused_naming_both_hashes(run, tmp_path: Path) -> None:
    folder, _, _ = run
    recorded = open_checkpoint(folder, trust_neuron_file=True).config["neuron_file"]["sha256"]
    changed = tmp_path / "leaky.py"
    changed.write_text(NEURON.format(marker=str(tmp_path / "changed-ran.txt"), theta=2.0))
    with pytest.raises(UserError) as info:
        open_checkpoint(folder, f"{changed}:Leaky")
    assert recorded in str(info.value)
    assert not (tmp_path / "changed-ran.txt").exists()


def test_resume_refuses_a_changed_neuron_file(run, tmp_path: Path) -> None:
    folder, neuron, _ = run
    killed = tmp_path / "run"
    shutil.copytree(folder, killed)
    write_status(killed, "running", epoch=1)  # as if killed before it could say "finished"
    original = neuron.read_text()
    try:
        neuron.write_text(original.replace("theta: float = 1.0", "theta: float = 3.0"))
        cfg = default_config(f"{neuron}:Leaky", "ecg").replace(
            epochs=1, hidden_size=4, batch_size=4, train_samples=4, eval_samples=4, device="cpu"
        )
        with pytest.raises(UserError, match="sha256"):
            train(cfg, killed, resume=True, progress=False)
    finally:
        neuron.write_text(original)
