"""Loss, predictions, accuracy and spike statistics against hand-computed values."""

import math

import pytest
import torch

from gradscape.errors import UserError
from gradscape.models.objectives import accuracy, predictions, sequence_loss, spike_stats


def _nll(logits, k):
    return -(logits[k] - math.log(sum(math.exp(v) for v in logits)))


# T = 3 steps, B = 2 samples, C = 2 classes
O = torch.tensor(
    [
        [[0.0, 1.0], [2.0, 0.0]],
        [[1.0, 0.0], [0.0, 0.0]],
        [[0.5, 0.0], [0.0, 3.0]],
    ]
)
Y = torch.tensor([1, 0])


def test_label_last_is_final_step_nll():
    want = (_nll([0.5, 0.0], 1) + _nll([0.0, 3.0], 0)) / 2
    got = sequence_loss(O, Y, mode="last")
    assert float(got) == pytest.approx(want, rel=1e-6)


def test_per_step_sum_and_mean_from_sub_seq_length():
    steps = [O[t].tolist() for t in range(3)]
    per_t = [(_nll(steps[t][0], 1) + _nll(steps[t][1], 0)) / 2 for t in range(3)]
    assert float(sequence_loss(O, Y, mode="per_step", reduction="sum")) == pytest.approx(sum(per_t), rel=1e-6)
    assert float(sequence_loss(O, Y, mode="per_step", reduction="mean")) == pytest.approx(
        sum(per_t) / 3, rel=1e-6
    )
    assert float(sequence_loss(O, Y, mode="per_step", sub_seq_length=1, reduction="sum")) == pytest.approx(
        per_t[1] + per_t[2], rel=1e-6
    )
    assert float(sequence_loss(O, Y, mode="per_step", sub_seq_length=1, reduction="mean")) == pytest.approx(
        (per_t[1] + per_t[2]) / 2, rel=1e-6
    )


def test_per_step_labels_with_ignored_steps():
    y = torch.tensor([[1, -1], [0, 1], [-1, -1]])  # (T, B); -1 is not scored
    steps = [O[t].tolist() for t in range(3)]
    l0 = _nll(steps[0][0], 1)  # only sample 0 is labelled at t = 0
    l1 = (_nll(steps[1][0], 0) + _nll(steps[1][1], 1)) / 2
    # t = 2 has no labelled sample and contributes 0
    assert float(sequence_loss(O, y, mode="per_step", reduction="sum")) == pytest.approx(l0 + l1, rel=1e-6)
    assert float(sequence_loss(O, y, mode="per_step", reduction="mean")) == pytest.approx(
        (l0 + l1) / 3, rel=1e-6
    )
    # accuracy over the 3 labelled steps: t0 b0 argmax 1 == 1 ✓; t1 b0 argmax 0 == 0 ✓; t1 b1 tie → 0 ≠ 1
    assert float(accuracy(O, y, mode="per_step")) == pytest.approx(200 / 3)


def test_predictions_last_vs_time_mean():
    pred_last, y_last = predictions(O, Y, mode="last")
    assert pred_last.tolist() == [0, 1] and y_last.tolist() == [1, 0]
    # time-means: b0 (1.5/3, 1/3) → 0; b1 (2/3, 3/3) → 1
    pred_mean, _ = predictions(O, Y, mode="per_step")
    assert pred_mean.tolist() == [0, 1]
    # from step 1 on: b0 (1.5/2, 0) → 0; b1 (0, 1.5) → 1
    assert predictions(O, Y, mode="per_step", sub_seq_length=1)[0].tolist() == [0, 1]
    assert float(accuracy(O, Y, mode="last")) == 0.0
    assert float(accuracy(O, torch.tensor([0, 1]), mode="per_step")) == 100.0


def test_spike_stats():
    z = torch.zeros(4, 2, 5)
    z[0, 0, 0] = z[1, 1, 3] = z[3, 1, 4] = 1.0  # 3 spikes, T = 4, B = 2, H = 5
    s = spike_stats(z)
    assert float(s["sops_per_sample"]) == 1.5
    assert float(s["sops_per_step"]) == 1.5 / 4
    assert float(s["spikes_per_neuron_step"]) == 1.5 / 20


def test_bad_arguments():
    with pytest.raises(UserError):
        sequence_loss(O, Y, mode="median")
    with pytest.raises(UserError):
        sequence_loss(O, Y, mode="per_step", reduction="max")
    with pytest.raises(UserError):
        sequence_loss(O, torch.tensor([0, 1, 1]), mode="last")
