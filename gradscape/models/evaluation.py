"""Evaluate a network on a data split: loss, accuracy and spike statistics.

The loss reported is the mean over samples of the per-sample loss in the logging convention
(:func:`~gradscape.models.objectives.sequence_loss` with ``reduction="mean"``: the time-mean of the
per-step NLL for ``per_step``, the final-step NLL for ``last``). Accuracy counts correct predictions
over the whole split (per step for ECG), so it does not depend on the batch size. Spike statistics
count the hidden outputs z_t over all T steps (also the steps before ``sub_seq_length``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from tqdm.auto import tqdm

from gradscape.errors import UserError
from gradscape.models.device import resolve_device
from gradscape.models.objectives import correct_counts, sequence_loss, spike_stats
from gradscape.models.plan import ForwardPlan, plan_forward

__all__ = ["TASK_OBJECTIVES", "task_objective", "evaluate", "evaluate_checkpoint"]

#: task → (loss mode, sub_seq_length for ALIF). The others score from step 0. SHD is per-step,
#: as in the BRF reference's SHD scripts (``label_last = False``, prediction from the time-mean).
TASK_OBJECTIVES: dict[str, tuple[str, int]] = {
    "smnist": ("last", 0),
    "psmnist": ("per_step", 0),
    "ecg": ("per_step", 10),
    "shd": ("per_step", 10),
}


def _family(model_kind: str) -> str:
    from gradscape.models.training_config import model_family

    return model_family(model_kind)


def task_objective(task: str, model_kind: str) -> dict[str, Any]:
    """The paper's objective for ``task``: ``{"mode", "sub_seq_length", "reduction"}``.

    S-MNIST label-last; PS-MNIST, ECG and SHD per-step; ALIF scores ECG and SHD from step 10
    (its reference ``sub_seq_length``); the reference backpropagates the sum over time.
    """
    if task not in TASK_OBJECTIVES:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASK_OBJECTIVES)}")
    mode, alif_sub = TASK_OBJECTIVES[task]
    sub = alif_sub if _family(model_kind) == "alif" else 0
    return {"mode": mode, "sub_seq_length": sub, "reduction": "sum"}


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    split: Any,
    *,
    mode: str,
    sub_seq_length: int = 0,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    progress: bool = False,
    plan: ForwardPlan | None = None,
) -> dict[str, float]:
    """Loss (mean over samples), accuracy (percent), SOPs and spike rate of ``model`` on ``split``.

    ``plan``: the forward path (default: :func:`~gradscape.models.plan.plan_forward` for inference,
    the dense fast path).

    Returns ``accuracy``, ``loss``, ``sops_per_sample``, ``sops_per_step``,
    ``spikes_per_neuron_step``, ``samples`` (and ``scored``: the number of scored predictions).
    """
    from gradscape.models.datasets import batches

    dev = resolve_device(device) if isinstance(device, str) else device
    was_training = model.training
    model.eval()
    n = len(split)
    if n == 0:
        raise UserError("cannot evaluate on an empty split")
    loss_sum = torch.zeros((), dtype=torch.float64, device=dev)
    correct = torch.zeros((), dtype=torch.long, device=dev)
    scored = torch.zeros((), dtype=torch.long, device=dev)
    spikes = torch.zeros((), dtype=torch.float64, device=dev)
    T = H = 0
    if plan is None:
        plan = plan_forward(model, grad=False, batch=batch_size, device=dev)
        if (
            plan.path == "sparse"
        ):  # it counts Σ z on the way: writing the (T, B, H) spikes cost ~40 % of an evaluation
            plan = dataclasses.replace(plan, keep_spikes=False)
    it = batches(split, batch_size, shuffle=False, device=dev)
    bar = tqdm(it, total=-(-n // batch_size), desc="evaluate", leave=False, disable=not progress)
    try:
        for x, y in bar:
            run = model(x, plan=plan)
            B = x.shape[1]
            T = run.outputs.shape[0]
            loss = sequence_loss(run.outputs, y, mode=mode, sub_seq_length=sub_seq_length, reduction="mean")
            loss_sum += loss.double() * B
            c, s = correct_counts(run.outputs, y, mode=mode, sub_seq_length=sub_seq_length)
            correct += c
            scored += s
            if run.spikes is not None:
                H = run.spikes.shape[2]
                spikes += spike_stats(run.spikes)["total"]
            else:
                H = model.hidden_size
                spikes += run.spike_total
    finally:
        bar.close()
        model.train(was_training)
    total = float(spikes)
    return {
        "accuracy": 100.0 * int(correct) / max(int(scored), 1),
        "loss": float(loss_sum) / n,
        "sops_per_sample": total / n,
        "sops_per_step": total / (n * T),
        "spikes_per_neuron_step": total / (n * T * H),
        "samples": n,
        "scored": int(scored),
    }


def _mnist_test_split(task: str, data_info: dict[str, Any], data_dir: str | None) -> tuple[Any, str]:
    """The S-MNIST test split to score: the held-out part of a bundled-split run, else all 10,000."""
    from gradscape.models.datasets import Split, load_task

    if data_info.get("bundled_split") and data_info.get("task") in ("smnist", "psmnist"):
        td = load_task("smnist", seed=int(data_info.get("seed", 0)))
        return td.test, (
            "the checkpoint's run trained on the seeded 8000/1000/1000 split of the bundled MNIST test "
            f"images (seed {data_info.get('seed', 0)}): scored on its {len(td.test)} held-out images"
        )
    if data_dir is not None:
        td = load_task("smnist", data_dir=data_dir)
        return td.test, f"all {len(td.test)} MNIST test images from {data_dir}"
    td = load_task("smnist")
    # The bundled split's three parts are disjoint and cover the whole test set: rejoin them.
    parts = (td.train, td.val, td.test)
    idx = torch.cat([p.indices for p in parts])
    order = idx.argsort()
    split = Split(
        torch.cat([p.inputs for p in parts])[order],
        torch.cat([p.targets for p in parts])[order],
        idx[order],
        "mnist-test",
    )
    return split, f"all {len(split)} MNIST test images (bundled)"


def evaluate_checkpoint(
    checkpoint: str | Any,
    task: str,
    *,
    model: str | None = None,
    permutation: str | None = None,
    data_dir: str | None = None,
    device: str = "auto",
    batch_size: int = 256,
    exclude_unlabelled: bool | None = None,
    progress: bool = False,
    samples: int | None = None,
    seed: int = 0,
    trust_neuron_file: bool = False,
) -> dict[str, Any]:
    """Load a gradscape or reference checkpoint and score it on ``task``'s test set.

    ``samples``: score a seeded random subset of that many test sequences (:meth:`Split.subset`
    with ``seed``; the result lists their source indices) instead of the whole test set.

    The objective (loss mode, sub_seq_length) comes from the checkpoint's training config when it
    was trained on ``task``, else from :func:`task_objective`. S-/PS-MNIST: all 10,000 MNIST test
    images, unless the checkpoint's run trained on the bundled split (then its held-out part).
    PS-MNIST pixel order: ``permutation`` (file or seed), else the checkpoint's recorded
    permutation, else the datasets default.
    """
    from gradscape.models.checkpoints import Checkpoint, open_checkpoint
    from gradscape.models.datasets import Split, load_task

    task = str(task).lower()
    if task not in TASK_OBJECTIVES:
        raise UserError(f"unknown task {task!r}; choose one of {', '.join(TASK_OBJECTIVES)}")
    if isinstance(checkpoint, Checkpoint):
        ck = checkpoint
    else:
        ck = open_checkpoint(checkpoint, model, trust_neuron_file=trust_neuron_file)
    net, kind = ck.model, ck.neuron
    train_cfg = ck.raw.get("config") if isinstance(ck.raw.get("config"), dict) else None
    data_info = ck.raw.get("data") if isinstance(ck.raw.get("data"), dict) else {}
    if train_cfg is not None and train_cfg.get("task") == task:
        objective = {"mode": train_cfg["loss_mode"], "sub_seq_length": int(train_cfg["sub_seq_length"])}
    else:
        objective = task_objective(task, kind)
    if exclude_unlabelled is None:
        exclude_unlabelled = bool(train_cfg.get("ecg_exclude_unlabelled")) if train_cfg else False
    if task in ("smnist", "psmnist"):
        split, note = _mnist_test_split(task, data_info, data_dir)
        if task == "psmnist":
            if permutation is not None:
                from gradscape.models.datasets.mnist import load_permutation

                perm, _ = load_permutation(int(permutation) if str(permutation).isdigit() else permutation)
                note += "; pixels permuted by the given permutation"
            elif ck.permutation is not None and ck.task == "psmnist":
                perm = ck.permutation
                note += "; pixels permuted in the order the network was trained with"
            else:
                perm = load_task("psmnist").permutation
                note += "; pixels permuted by the task's default permutation (seed 0)"
            split = Split(split.inputs[:, perm].contiguous(), split.targets, split.indices, split.source)
    else:
        td = load_task(task, data_dir=data_dir, ecg_exclude_unlabelled=bool(exclude_unlabelled))
        split, note = td.test, td.info.get("note", "")
    if samples is not None:
        if samples < 1:
            raise UserError(f"--samples must be at least 1, got {samples}")
        split = split.subset(samples, seed)
        note += f"; a seeded subset of {len(split)} sequences (seed {seed})"
    if split.inputs.shape[-1] != net.input_size:
        raise UserError(
            f"the checkpoint's network takes {net.input_size} input channels but {task} has "
            f"{split.inputs.shape[-1]}; is it a {task} model?"
        )
    dev = resolve_device(device)
    result = evaluate(
        net.to(dev),
        split,
        mode=objective["mode"],
        sub_seq_length=objective["sub_seq_length"],
        batch_size=batch_size,
        device=dev,
        progress=progress,
    )
    return {
        **result,
        "task": task,
        "model": kind,
        "checkpoint": str(ck.path),
        "checkpoint_sha256": ck.sha256,
        "bundled": None if ck.bundled is None else f"bundled:{ck.bundled.name}",
        "published_accuracy": None if ck.bundled is None else ck.bundled.published_accuracy,
        "reference_checkpoint": ck.reference,
        "mode": objective["mode"],
        "sub_seq_length": objective["sub_seq_length"],
        "split": split.source,
        "subset": None if samples is None else {"seed": seed, "indices": split.indices.tolist()},
        "note": note,
    }
