"""One training mini-batch: forward, (truncated) backpropagation through time, optimiser step(s).

The loss L of :func:`~gradscape.models.objectives.sequence_loss` is backpropagated, gradients are
clipped to norm ``clip`` (if set), Adam steps, and ``model.project_()`` puts parameters back into
their valid set (BRF: δω < 1, counted in :attr:`BatchResult.clamped`).

Truncated BPTT with length K (``tbptt``):

* ``reference`` (the BRF reference's ALIF scripts): an optimiser step after every step t with
  t mod K = 0 and t ≥ sub_seq_length (so t = 0 is one when scoring starts at 0), and after t = T − 1;
  the state is detached after each. Per-step loss: the (summed or averaged) loss of the steps since
  the previous truncation point; label-last: the loss ℓ_t at the truncation point itself against the
  sequence label. Parameters change within a sequence, as in the reference.
* ``standard``: chunks [0, K), [K, 2K), …; one step per chunk over that chunk's loss (label-last: only
  the final chunk carries a loss, so only it produces a step).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradscape.errors import UserError
from gradscape.models.network import NetState, RecurrentNetwork
from gradscape.models.objectives import sequence_loss
from gradscape.models.plan import ForwardPlan, plan_forward
from gradscape.models.training_config import TrainConfig

__all__ = ["BatchResult", "train_batch", "truncation_chunks"]


def truncation_chunks(
    T: int, tbptt: int | None, mode: str = "reference", sub_seq_length: int = 0
) -> list[tuple[int, int]]:
    """The [start, end) step ranges after each of which the optimiser steps (module docstring)."""
    if not tbptt:
        return [(0, T)]
    K = int(tbptt)
    if mode == "reference":
        ends = sorted({t + 1 for t in range(sub_seq_length, T) if t % K == 0} | {T})
    elif mode == "standard":
        ends = [min(e, T) for e in range(K, T + K, K)]
    else:
        raise UserError(f"unknown TBPTT mode {mode!r}; choose reference or standard")
    starts = [0, *ends[:-1]]
    return list(zip(starts, ends, strict=True))


def _detach(state: NetState) -> NetState:
    neuron = type(state.neuron)(*(f.detach() for f in state.neuron))
    return NetState(state.z.detach(), neuron, state.o.detach())


@dataclass
class BatchResult:
    """What one mini-batch did: its outputs, the loss of each optimiser step, how many steps, and how
    many parameters ``project_`` clamped (kept on the device, so reading it costs no sync)."""

    outputs: torch.Tensor  # (T, B, C), detached
    losses: list[torch.Tensor]  # one per optimiser step, detached
    steps: int
    clamped: torch.Tensor


def _chunk_loss(
    out: torch.Tensor, y: torch.Tensor, start: int, end: int, cfg: TrainConfig
) -> torch.Tensor | None:
    s = cfg.sub_seq_length
    yy = y if y.dim() == 1 else y[start:end]  # a label per sequence, or per step
    if cfg.loss_mode == "last":
        return sequence_loss(out, yy, mode="last")
    if end <= s:
        return None
    return sequence_loss(out, yy, mode="per_step", sub_seq_length=max(0, s - start), reduction=cfg.reduction)


def train_batch(
    model: RecurrentNetwork,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer,
    plan: ForwardPlan | None = None,
) -> BatchResult:
    """Forward, backward and optimiser step(s) on one mini-batch (x (T, B, I), y (B,) or (T, B)).

    ``plan``: the forward path (default: :func:`plan_forward` from ``cfg.fast``)."""
    T = x.shape[0]
    chunks = truncation_chunks(T, cfg.tbptt, cfg.tbptt_mode, cfg.sub_seq_length)
    state = None
    outs, losses = [], []
    clamped = torch.zeros((), dtype=torch.long, device=x.device)  # stays on the device: no sync
    steps = 0
    if plan is None:
        plan = plan_forward(model, grad=True, batch=x.shape[1], fast=cfg.fast)
    for start, end in chunks:
        run = model(x[start:end], state=state, plan=plan)
        outs.append(run.outputs.detach())
        loss = _chunk_loss(run.outputs, y, start, end, cfg)
        if cfg.loss_mode == "last" and cfg.tbptt_mode == "standard" and end < T:
            loss = None  # standard TBPTT with one label: only the final chunk is scored
        if loss is not None:
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            optimizer.step()
            clamped = clamped + model.project_().to(clamped.device)
            losses.append(loss.detach())
            steps += 1
        state = _detach(run.final)
    return BatchResult(torch.cat(outs), losses, steps, clamped)
