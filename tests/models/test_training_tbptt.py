"""Truncated BPTT: where the optimiser steps, and that chunks continue the state exactly."""

import pytest
import torch

from gradscape.models.network import RecurrentNetwork
from gradscape.models.training import default_config, train_batch, truncation_chunks


def test_reference_truncation_points():
    # optimiser steps after t = 0, 3, 6 (t % 3 == 0) and after t = T - 1
    assert truncation_chunks(8, 3, "reference") == [(0, 1), (1, 4), (4, 7), (7, 8)]
    assert truncation_chunks(7, 3, "reference") == [(0, 1), (1, 4), (4, 7)]  # T - 1 = 6 already a point
    # scoring from step 2: no step before it (the reference skips zero losses)
    assert truncation_chunks(8, 3, "reference", sub_seq_length=2) == [(0, 4), (4, 7), (7, 8)]
    # the S-MNIST case: T = 784, K = 50 → t = 0, 50, …, 750 and 783: 17 steps
    ch = truncation_chunks(784, 50, "reference")
    assert len(ch) == 17 and ch[0] == (0, 1) and ch[-1] == (751, 784)
    assert truncation_chunks(8, 3, "standard") == [(0, 3), (3, 6), (6, 8)]
    assert truncation_chunks(8, None) == [(0, 8)]


class CountingSGD(torch.optim.SGD):
    def __init__(self, params):
        super().__init__(params, lr=0.0)
        self.calls = 0

    def step(self, closure=None):
        self.calls += 1
        return super().step(closure)


@pytest.mark.parametrize(
    "mode, loss_mode, want",
    [
        ("reference", "per_step", 4),
        ("reference", "last", 4),
        ("standard", "per_step", 3),
        ("standard", "last", 1),
    ],
)
def test_optimiser_steps_and_state_continuation(mode, loss_mode, want):
    torch.manual_seed(0)
    net = RecurrentNetwork("alif", 3, 6, 4, seed=1)
    x = torch.rand(8, 5, 3) * 3
    y = torch.randint(0, 4, (5,))
    cfg = default_config("alif", "ecg", tbptt=3, tbptt_mode=mode, loss_mode=loss_mode, sub_seq_length=0)
    opt = CountingSGD(net.parameters())
    res = train_batch(net, x, y, cfg, opt)
    assert opt.calls == want == res.steps == len(res.losses)
    # lr = 0: the chunked run must reproduce one uninterrupted forward pass
    full = net(x, fast=True).outputs
    torch.testing.assert_close(res.outputs, full)


def test_reference_label_last_uses_loss_at_truncation_point():
    net = RecurrentNetwork("alif", 2, 4, 3, seed=2)
    x = torch.rand(5, 2, 2) * 3
    y = torch.tensor([2, 0])
    cfg = default_config("alif", "ecg", tbptt=2, loss_mode="last", sub_seq_length=0)
    res = train_batch(net, x, y, cfg, CountingSGD(net.parameters()))
    out = net(x).outputs
    logp = torch.log_softmax(out, -1)
    want = [-(logp[t, [0, 1], y]).mean() for t in (0, 2, 4)]  # points t = 0, 2, 4 = T - 1
    torch.testing.assert_close(torch.stack(res.losses), torch.stack(want).detach(), rtol=1e-5, atol=1e-6)
