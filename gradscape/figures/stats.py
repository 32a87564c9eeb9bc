"""Table 2 of the BRF paper: convergence statistics per (task, model), measured beside the published row.

The statistic is :mod:`~gradscape.figures.convergence` (n_X under the one rule
:data:`TABLE2_RULE`, :func:`convergence_epochs`); the published numbers are
:mod:`~gradscape.figures.paper`; which rule reproduces them is :mod:`~gradscape.figures.table2_rules`.
This module turns groups of runs into Table 2's rows (:func:`table2_rows`) and Markdown
(:func:`table2_markdown`), and is the one import for all of Table 2 (it re-exports the names above).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from gradscape.figures import convergence as _convergence
from gradscape.figures import paper as _paper
from gradscape.figures import table2_rules as _table2_rules
from gradscape.figures.cells import cell as _fmt
from gradscape.figures.cells import cell_pm as _pm
from gradscape.figures.convergence import (
    FRACTIONS,
    TABLE2_RULE,
    Curve,
    Table2Rule,
    convergence_epochs,
    effective_rule,
    mean_run,
    mean_std,
)
from gradscape.figures.paper import PAPER_TASK, paper_numbers

#: the names that moved to convergence, paper and table2_rules, still importable from here
_MOVED = {name: module for module in (_convergence, _paper, _table2_rules) for name in module.__all__}
__all__ = [*_MOVED, "table2_rows", "table2_markdown", "TABLE2_COLUMNS"]


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(_MOVED[name], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


TABLE2_COLUMNS = (
    "task", "model", "runs", "diverged_runs", "rule",
    *(f"epochs_to_{x}_{s}" for x in FRACTIONS for s in ("mean", "std")),
    *(f"epochs_to_{x}_mean_curve" for x in FRACTIONS),
    "final_test_acc_mean", "final_test_acc_std", "epochs", "params",
    "sops_per_sample", "sops_per_step", "spikes_per_neuron_step",
    "paper_model", *(f"paper_epochs_to_{x}" for x in FRACTIONS),
    "paper_test_acc_mean", "paper_test_acc_std", "paper_params", "paper_sops_per_sample",
    "paper_sops_per_step",
)  # fmt: skip


def table2_rows(
    groups: Mapping[tuple[str, str], Sequence[Curve]], rule: Table2Rule = TABLE2_RULE
) -> list[dict[str, Any]]:
    """One row per (task, model): the statistics of the module doc under ``rule`` plus the paper's
    numbers. The mean-curve column takes the mean test and validation curves through the same rule."""
    rows = []
    for (task, model), curves in groups.items():
        if not curves:
            continue
        used = effective_rule(curves, rule)
        row: dict[str, Any] = {"task": task, "model": model, "runs": len(curves), "rule": used.name}
        row["diverged_runs"] = sum(c.diverged for c in curves)
        for x in FRACTIONS:
            m, s, _ = mean_std(convergence_epochs(c, x, used) for c in curves)
            row[f"epochs_to_{x}_mean"], row[f"epochs_to_{x}_std"] = m, s
        mc = mean_run(curves)
        for x in FRACTIONS:
            row[f"epochs_to_{x}_mean_curve"] = convergence_epochs(mc, x, used)
        finals = [c.finite()[1][-1] if len(c.finite()[1]) else None for c in curves]
        row["final_test_acc_mean"], row["final_test_acc_std"], _ = mean_std(finals)
        row["epochs"] = int(max(c.epochs.max() for c in curves))
        row["params"] = curves[0].params
        for k in ("sops_per_sample", "sops_per_step", "spikes_per_neuron_step"):
            # a non-spiking model (LSTM) has no synaptic operations to count
            row[k] = mean_std(c.final.get(k) for c in curves)[0] if model != "lstm" else math.nan
        row.update(paper_numbers(task, model))
        rows.append({k: row.get(k, math.nan) for k in TABLE2_COLUMNS})
    return rows


def _parse_rule(name: str) -> tuple[str, int]:
    final, base = name.split("/")
    return final, int(base.split("-")[0])


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
        if r.get("source"):
            model += f" — {r['source']}"
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
    used = sorted({str(r.get("rule")) for r in rows if r.get("rule")})
    rules = "; ".join(f"rule {n} ({Table2Rule(*_parse_rule(n)).describe()})" for n in used)
    rules = rules or f"rule {TABLE2_RULE.name} ({TABLE2_RULE.describe()})"
    notes = (
        f"\n\nn_X: epochs until the test accuracy first reaches X % of the run's final accuracy, {rules}; "
        "mean ± sample std over runs; in brackets the same statistic on the mean curve. "
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
