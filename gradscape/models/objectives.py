"""Loss, predictions, accuracy and spike statistics of a sequence classifier.

Symbols: o_t ∈ R^C the readout at step t (outputs (T, B, C)), y the label(s), s = ``sub_seq_length``
(the first step that is scored), T' = T − s the number of scored steps, ℓ_t(b) = −log softmax(o_t(b))_y
the negative log-likelihood of sample b at step t.

* ``mode="last"`` (label-last): L = (1/B) Σ_b ℓ_{T−1}(b); only the final step counts.
* ``mode="per_step"``: ℓ_t = mean over the batch of ℓ_t(b) (with per-step targets (T, B), the mean
  over the samples whose label at t is not −1; a step without any such sample contributes 0), then
  L = Σ_{t≥s} ℓ_t (``reduction="sum"``, what the BRF reference backpropagates) or
  L = (1/T') Σ_{t≥s} ℓ_t (``reduction="mean"``, what its logs show).

Predictions: label-last → argmax o_{T−1}; per-step with one label per sequence → argmax of the
time-mean (1/T') Σ_{t≥s} o_t; per-step labels (ECG) → argmax o_t against y_t for every t ≥ s (steps
labelled −1 are left out of the accuracy).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gradscape.errors import UserError

__all__ = [
    "LOSS_MODES",
    "REDUCTIONS",
    "sequence_loss",
    "predictions",
    "correct_counts",
    "accuracy",
    "spike_stats",
]

LOSS_MODES = ("last", "per_step")
REDUCTIONS = ("sum", "mean")
IGNORE = -1


def _check(outputs: Tensor, targets: Tensor, mode: str, sub_seq_length: int) -> None:
    if mode not in LOSS_MODES:
        raise UserError(f"unknown loss mode {mode!r}; choose one of {', '.join(LOSS_MODES)}")
    if outputs.dim() != 3:
        raise UserError(f"outputs must be (T, B, C); got {tuple(outputs.shape)}")
    T, B = outputs.shape[:2]
    if targets.dim() == 1:
        ok = targets.shape[0] == B
    elif targets.dim() == 2:
        ok = tuple(targets.shape) == (T, B)
    else:
        ok = False
    if not ok:
        raise UserError(f"targets of shape {tuple(targets.shape)} do not fit outputs {tuple(outputs.shape)}")
    if not 0 <= sub_seq_length < T:
        raise UserError(f"sub_seq_length {sub_seq_length} must lie in [0, T) with T = {T}")


def _last_targets(targets: Tensor) -> Tensor:
    return targets[-1] if targets.dim() == 2 else targets


def sequence_loss(
    outputs: Tensor,
    targets: Tensor,
    *,
    mode: str,
    sub_seq_length: int = 0,
    reduction: str = "sum",
) -> Tensor:
    """The training loss L (module docstring): a scalar, mean over the batch."""
    _check(outputs, targets, mode, sub_seq_length)
    if reduction not in REDUCTIONS:
        raise UserError(f"unknown loss reduction {reduction!r}; choose sum or mean")
    if mode == "last":
        return F.nll_loss(F.log_softmax(outputs[-1], dim=-1), _last_targets(targets), ignore_index=IGNORE)
    out = outputs[sub_seq_length:]
    logp = F.log_softmax(out, dim=-1)  # (T', B, C)
    if targets.dim() == 1:
        y = targets.expand(out.shape[0], -1)
    else:
        y = targets[sub_seq_length:]
    valid = y != IGNORE
    nll = -logp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (T', B)
    nll = torch.where(valid, nll, torch.zeros_like(nll))
    per_step = nll.sum(1) / valid.sum(1).clamp(min=1)  # ℓ_t, mean over the labelled samples
    return per_step.sum() if reduction == "sum" else per_step.mean()


def predictions(
    outputs: Tensor, targets: Tensor, *, mode: str, sub_seq_length: int = 0
) -> tuple[Tensor, Tensor]:
    """(predicted class, aligned target): shapes (B,) and (B,), or (T', B) and (T', B) for ECG."""
    _check(outputs, targets, mode, sub_seq_length)
    if mode == "last":
        return outputs[-1].argmax(-1), _last_targets(targets)
    if targets.dim() == 1:
        return outputs[sub_seq_length:].mean(0).argmax(-1), targets
    return outputs[sub_seq_length:].argmax(-1), targets[sub_seq_length:]


def correct_counts(
    outputs: Tensor, targets: Tensor, *, mode: str, sub_seq_length: int = 0
) -> tuple[Tensor, Tensor]:
    """(number correct, number scored) as 0-d int64 tensors; labels −1 are not scored."""
    pred, y = predictions(outputs, targets, mode=mode, sub_seq_length=sub_seq_length)
    valid = y != IGNORE
    return ((pred == y) & valid).sum(), valid.sum()


def accuracy(outputs: Tensor, targets: Tensor, *, mode: str, sub_seq_length: int = 0) -> Tensor:
    """Percentage (0–100) of correct predictions (module docstring)."""
    correct, total = correct_counts(outputs, targets, mode=mode, sub_seq_length=sub_seq_length)
    return 100.0 * correct.double() / total.clamp(min=1).double()


def spike_stats(spikes: Tensor) -> dict[str, Tensor]:
    """Synaptic-operation counts of hidden outputs z (T, B, H), the reference's SOP convention.

    ``sops_per_sample`` = Σ z / B, ``sops_per_step`` = Σ z / (B T),
    ``spikes_per_neuron_step`` = Σ z / (B T H), ``total`` = Σ z.
    """
    T, B, H = spikes.shape
    total = spikes.detach().sum(dtype=torch.float64)
    return {
        "total": total,
        "sops_per_sample": total / B,
        "sops_per_step": total / (B * T),
        "spikes_per_neuron_step": total / (B * T * H),
    }
