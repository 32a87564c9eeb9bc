"""The three bundled reference ECG checkpoints reproduce the published accuracies (±0.05 pp)."""

import importlib.resources
import json

import pytest

from gradscape.cli import main
from gradscape.models.checkpoints import load_model
from gradscape.models.datasets import load_task
from gradscape.models.evaluation import evaluate, task_objective

PUBLISHED = {"brf": 86.22, "rf": 85.11, "alif": 70.73}  # percent, BRF paper / bundled checkpoints


def _path(kind):
    return importlib.resources.files("gradscape.bundled") / "checkpoints" / f"ecg_{kind}.pt"


@pytest.mark.parametrize("kind", list(PUBLISHED))
def test_reference_accuracy_through_evaluate(kind):
    net, _ = load_model(_path(kind), kind)
    obj = task_objective("ecg", kind)
    assert obj["sub_seq_length"] == (10 if kind == "alif" else 0)
    res = evaluate(net, load_task("ecg").test, mode=obj["mode"], sub_seq_length=obj["sub_seq_length"])
    assert res["samples"] == 141
    assert res["scored"] == 141 * (1300 - obj["sub_seq_length"])
    assert res["accuracy"] == pytest.approx(PUBLISHED[kind], abs=0.05)
    assert res["sops_per_step"] == pytest.approx(res["sops_per_sample"] / 1300)
    assert res["spikes_per_neuron_step"] == pytest.approx(res["sops_per_step"] / 36)


@pytest.mark.parametrize("kind", list(PUBLISHED))
def test_reference_accuracy_through_cli_json(kind, capsys):
    rc = main(["evaluate", "--checkpoint", str(_path(kind)), "--task", "ecg", "--model", kind, "--json"])
    assert rc == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    res = json.loads(last)
    assert res["accuracy"] == pytest.approx(PUBLISHED[kind], abs=0.05)
    for key in ("loss", "sops_per_sample", "sops_per_step", "spikes_per_neuron_step"):
        assert res[key] > 0
