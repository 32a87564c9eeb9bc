"""Convergence statistics (the BRF paper's Table 2) and the published numbers beside them.

For one run with test accuracy a_e after epoch e (e = 1 … E; a_0 is the untrained network), the
epochs to X % of the final accuracy is

    n_X = min { e ≥ 1 : a_e ≥ (X / 100) · a_E }

with a_E the run's last finite epoch (a diverged run is scored up to its divergence and marked).
Over runs: mean ± sample std (ddof = 1; undefined with one run). The same statistic on the mean
curve ā_e (mean over runs, epochs every run reached) is given too, as the paper does not say which
it used.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

__all__ = [
    "FRACTIONS",
    "Curve",
    "epochs_to_fraction",
    "mean_std",
    "mean_curve",
    "paper_table",
    "table2_rows",
    "table2_markdown",
    "TABLE2_COLUMNS",
]

FRACTIONS = (95, 98, 100)
PAPER_TASK = {"smnist": "S-MNIST", "psmnist": "PS-MNIST", "ecg": "ECG", "shd": "SHD"}
PAPER_MODEL = {"brf": "BRF", "rf": "RF", "alif": "ALIF", "lstm": "LSTM"}


@dataclass
class Curve:
    """One run's learning curve: ``test_acc[e]`` after epoch ``epochs[e]`` (epoch 0 = untrained)."""

    model: str
    task: str
    seed: int
    epochs: np.ndarray
    test_acc: np.ndarray
    status: str = "finished"
    diverged_epoch: int | None = None
    final: dict[str, float] = field(default_factory=dict)  # last-epoch test metrics (SOPs …)
    params: int | None = None
    run_dir: str = ""

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    def finite(self) -> tuple[np.ndarray, np.ndarray]:
        ok = np.isfinite(self.test_acc)
        return self.epochs[ok], self.test_acc[ok]


def epochs_to_fraction(epochs: Sequence[int], acc: Sequence[float], percent: float) -> int | None:
    """n_X (module doc): the first epoch ≥ 1 whose accuracy ≥ X % of the last finite epoch's."""
    e = np.asarray(epochs)
    a = np.asarray(acc, dtype=float)
    ok = np.isfinite(a) & (e >= 1)
    if not ok.any():
        return None
    e, a = e[ok], a[ok]
    hit = np.nonzero(a >= percent / 100.0 * a[-1])[0]
    return int(e[hit[0]])


def mean_std(values: Iterable[float | None]) -> tuple[float, float, int]:
    """(mean, sample std with ddof 1 — NaN for one value, count) over the values that are not None."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size)


def mean_curve(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(epochs, mean, std) over runs, on the epochs every run reached with a finite accuracy."""
    n = min(len(c.finite()[0]) for c in curves)
    acc = np.stack([c.finite()[1][:n] for c in curves])
    std = acc.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros(n)
    return curves[0].finite()[0][:n], acc.mean(axis=0), std


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("gradscape.bundled").joinpath("paper", name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def paper_table(name: str) -> list[dict[str, str]]:
    """The BRF paper's ``table1`` or ``table2`` as shipped in ``gradscape/bundled/paper``."""
    return _read_csv(f"{name}.csv")


def paper_source_note() -> str:
    return resources.files("gradscape.bundled").joinpath("paper", "SOURCE.md").read_text(encoding="utf-8")


def _paper_lookup(task: str, model: str) -> dict[str, Any]:
    """Published numbers for (task, model): Table 2 epochs and Table 1 accuracy/params/SOPs.

    Table 1's ALIF rows for S-MNIST, PS-MNIST and ECG are Yin et al.'s larger SRNN (``ALIF*``); they
    are given, marked, because the paper gives nothing else.
    """
    t, m = PAPER_TASK.get(task, task), PAPER_MODEL.get(model, model.upper())
    out: dict[str, Any] = {}
    for row in paper_table("table2"):
        if row["task"] == t and row["model"] == m:
            for x in FRACTIONS:
                out[f"paper_epochs_to_{x}"] = float(row[f"epochs_to_{x}pct"])
    for row in paper_table("table1"):
        if row["task"] == t and row["model"] in (m, m + "*"):
            out["paper_model"] = row["model"]
            for k in ("test_acc_mean", "test_acc_std", "params", "sops_per_sample", "sops_per_step"):
                out[f"paper_{k}"] = float(row[k]) if row[k] else math.nan
    return out


TABLE2_COLUMNS = (
    "task", "model", "runs", "diverged_runs",
    *(f"epochs_to_{x}_{s}" for x in FRACTIONS for s in ("mean", "std")),
    *(f"epochs_to_{x}_mean_curve" for x in FRACTIONS),
    "final_test_acc_mean", "final_test_acc_std", "epochs", "params",
    "sops_per_sample", "sops_per_step", "spikes_per_neuron_step",
    "paper_model", *(f"paper_epochs_to_{x}" for x in FRACTIONS),
    "paper_test_acc_mean", "paper_test_acc_std", "paper_params", "paper_sops_per_sample",
    "paper_sops_per_step",
)  # fmt: skip


def table2_rows(groups: Mapping[tuple[str, str], Sequence[Curve]]) -> list[dict[str, Any]]:
    """One row per (task, model): the statistics of the module doc plus the paper's numbers."""
    rows = []
    for (task, model), curves in groups.items():
        if not curves:
            continue
        row: dict[str, Any] = {"task": task, "model": model, "runs": len(curves)}
        row["diverged_runs"] = sum(c.diverged for c in curves)
        for x in FRACTIONS:
            m, s, _ = mean_std(epochs_to_fraction(*c.finite(), x) for c in curves)
            row[f"epochs_to_{x}_mean"], row[f"epochs_to_{x}_std"] = m, s
        ep, mc, _ = mean_curve(curves)
        for x in FRACTIONS:
            row[f"epochs_to_{x}_mean_curve"] = epochs_to_fraction(ep, mc, x)
        finals = [c.finite()[1][-1] if len(c.finite()[1]) else None for c in curves]
        row["final_test_acc_mean"], row["final_test_acc_std"], _ = mean_std(finals)
        row["epochs"] = int(max(c.epochs.max() for c in curves))
        row["params"] = curves[0].params
        for k in ("sops_per_sample", "sops_per_step", "spikes_per_neuron_step"):
            # a non-spiking model (LSTM) has no synaptic operations to count
            row[k] = mean_std(c.final.get(k) for c in curves)[0] if model != "lstm" else math.nan
        row.update(_paper_lookup(task, model))
        rows.append({k: row.get(k, math.nan) for k in TABLE2_COLUMNS})
    return rows


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _pm(m: Any, s: Any, digits: int = 1) -> str:
    if m is None or (isinstance(m, float) and not math.isfinite(m)):
        return "—"
    if s is None or (isinstance(s, float) and not math.isfinite(s)):
        return _fmt(m, digits)
    return f"{_fmt(m, digits)} ± {_fmt(s, digits)}"


def table2_markdown(rows: Sequence[Mapping[str, Any]], settings: str) -> str:
    """Table 2 as Markdown: measured (mean ± std over runs; mean-curve value in brackets) | paper."""
    head = (
        "| task | model | runs | n₉₅ | n₉₈ | n₁₀₀ | paper n₉₅/n₉₈/n₁₀₀ | final test acc (%) | paper acc (%) "
        "| params (paper) | SOPs/sample (paper) | SOPs/step (paper) | spikes/neuron/step |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        eps = [
            _pm(r[f"epochs_to_{x}_mean"], r[f"epochs_to_{x}_std"])
            + f" [{_fmt(r[f'epochs_to_{x}_mean_curve'])}]"
            for x in FRACTIONS
        ]
        paper_eps = "/".join(_fmt(r.get(f"paper_epochs_to_{x}"), 0) for x in FRACTIONS)
        model = r["model"].upper() + (" (diverged: %d)" % r["diverged_runs"] if r["diverged_runs"] else "")
        pm = r.get("paper_model")
        paper_acc = _pm(r.get("paper_test_acc_mean"), r.get("paper_test_acc_std"))
        if isinstance(pm, str) and pm.endswith("*"):
            paper_acc += " (ALIF*)"
        lines.append(
            f"| {PAPER_TASK.get(r['task'], r['task'])} | {model} | {r['runs']} | "
            + " | ".join(eps)
            + f" | {paper_eps} | {_pm(r['final_test_acc_mean'], r['final_test_acc_std'], 2)} | {paper_acc} | "
            f"{_fmt(r['params'])} ({_fmt(r.get('paper_params'), 0)}) | "
            f"{_fmt(r['sops_per_sample'])} ({_fmt(r.get('paper_sops_per_sample'))}) | "
            f"{_fmt(r['sops_per_step'], 2)} ({_fmt(r.get('paper_sops_per_step'), 2)}) | "
            f"{_fmt(r['spikes_per_neuron_step'], 4)} |"
        )
    notes = (
        "\n\nn_X: epochs until the test accuracy first reaches X % of the run's last-epoch test accuracy "
        "(epoch ≥ 1), mean ± sample std over runs; in brackets the same statistic on the mean curve. "
        "A diverged run is scored up to its divergence. Paper numbers: the BRF paper's Tables 1 and 2 "
        "(5 runs, full settings; transcription and cross-checks in gradscape/bundled/paper/SOURCE.md); "
        "ALIF* marks Table 1's ALIF entry, Yin et al.'s 2-layer SRNN, not the "
        "single-layer ALIF trained here. Parameters count every trainable tensor (the paper's count "
        "may differ in which tensors it counts).\n\n"
        f"Settings: {settings}\n"
    )
    return (
        "# Table 2 — convergence statistics, measured vs the BRF paper\n\n" + head + "\n".join(lines) + notes
    )
