"""Convergence statistics (the BRF paper's Table 2) and the published numbers beside them.

For one run with test accuracy a_e after epoch e (e = 1 … E; a_0 is the untrained network), the
epochs to X % of a final accuracy F is

    n_X = min { e ≥ 1 : a_e ≥ (X / 100) · F } − (1 − base)

The paper does not define F nor how it counts epochs, so the candidates are (:data:`FINAL_RULES`)

* ``last``: F = a_E, the last finite epoch (a diverged run is scored up to its divergence);
* ``max``: F = max_{e ≥ 1} a_e;
* ``best_val_acc``: F = a_{e*}, e* = argmax_{e ≥ 1} v_e (validation accuracy; first on ties);
* ``min_val_loss``: F = a_{e*}, e* = argmin_{e ≥ 1} ℓ_e (validation loss; first on ties);

crossed with the epoch count ``base`` ∈ {0, 1}: base 1 counts the first training epoch as epoch 1
(the curve's step), base 0 as epoch 0 (a Python ``range(epochs)`` index). Which pair reproduces the
published rows is measured by :func:`table2_rule_comparison` on the authors' own curves; the one pair
used everywhere (gradscape's own runs too) is :data:`TABLE2_RULE`, applied by :func:`convergence_epochs`.

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
    "FINAL_RULES",
    "EPOCH_BASES",
    "Table2Rule",
    "TABLE2_RULE",
    "REPRODUCE_TOLERANCE",
    "Curve",
    "final_accuracy",
    "epochs_to_fraction",
    "convergence_epochs",
    "effective_rule",
    "table2_rule_comparison",
    "rule_scores",
    "best_rule",
    "table2_rule_markdown",
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

FINAL_RULES = ("last", "max", "best_val_acc", "min_val_loss")
EPOCH_BASES = (0, 1)
#: a published Table 2 value (an integer) is reproduced when |mean over runs − published| ≤ this
REPRODUCE_TOLERANCE = 0.5


@dataclass(frozen=True)
class Table2Rule:
    """How "final accuracy" and the epoch count are defined (module doc)."""

    final: str = "last"
    base: int = 1

    def __post_init__(self) -> None:
        if self.final not in FINAL_RULES or self.base not in EPOCH_BASES:
            raise ValueError(
                f"unknown Table 2 rule {self.final!r}/{self.base}: use {FINAL_RULES} × {EPOCH_BASES}"
            )

    @property
    def name(self) -> str:
        return f"{self.final}/{self.base}-based"

    def describe(self) -> str:
        what = {
            "last": "the last epoch's test accuracy",
            "max": "the maximum test accuracy over epochs",
            "best_val_acc": "the test accuracy at the epoch of highest validation accuracy",
            "min_val_loss": "the test accuracy at the epoch of lowest validation loss",
        }[self.final]
        count = (
            "the first training epoch counts as epoch 0"
            if self.base == 0
            else "the first training epoch counts as epoch 1"
        )
        return f"final accuracy = {what}; {count}"


#: The one rule for every Table 2 number gradscape writes. Chosen because it reproduces the most
#: published ECG/SHD cells from the authors' own curves (6 of 18, every other candidate ≤ 5; measured
#: by :func:`table2_rule_comparison`, checked by tests/test_figures_stats_rule.py). The evidence is
#: thin: no candidate reproduces a whole ECG row or any ECG ALIF cell, and only min_val_loss/1-based
#: reproduces one whole row (SHD RF).
TABLE2_RULE = Table2Rule("best_val_acc", 0)


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
    #: per-epoch validation accuracy / loss and test loss on the same epochs (None: not recorded)
    val_acc: np.ndarray | None = None
    val_loss: np.ndarray | None = None
    test_loss: np.ndarray | None = None

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    def finite(self) -> tuple[np.ndarray, np.ndarray]:
        ok = np.isfinite(self.test_acc)
        return self.epochs[ok], self.test_acc[ok]


def epochs_to_fraction(
    epochs: Sequence[int], acc: Sequence[float], percent: float, final: float | None = None
) -> int | None:
    """The first epoch (curve step) ≥ 1 whose accuracy ≥ X % of ``final`` (default: the last finite
    epoch's accuracy). None when no epoch ≥ 1 is finite or none reaches it."""
    e = np.asarray(epochs)
    a = np.asarray(acc, dtype=float)
    ok = np.isfinite(a) & (e >= 1)
    if not ok.any():
        return None
    e, a = e[ok], a[ok]
    ref = a[-1] if final is None else final
    hit = np.nonzero(a >= percent / 100.0 * ref)[0]
    return int(e[hit[0]]) if hit.size else None


def final_accuracy(curve: Curve, rule: Table2Rule = TABLE2_RULE) -> tuple[float, int] | None:
    """(F, the epoch it is taken at) under ``rule.final`` (module doc), over epochs ≥ 1 with a finite
    test accuracy (and, for the validation rules, a finite validation number). None when there is no
    such epoch. A validation rule on a curve without validation numbers raises ValueError."""
    e = np.asarray(curve.epochs)
    a = np.asarray(curve.test_acc, dtype=float)
    ok = np.isfinite(a) & (e >= 1)
    key: np.ndarray | None = None
    if rule.final in ("best_val_acc", "min_val_loss"):
        v = curve.val_acc if rule.final == "best_val_acc" else curve.val_loss
        if v is None:
            raise ValueError(
                f"rule {rule.name} needs the validation curve, which run {curve.run_dir!r} lacks"
            )
        key = np.asarray(v, dtype=float)
        ok &= np.isfinite(key)
    if not ok.any():
        return None
    idx = np.nonzero(ok)[0]
    if rule.final == "last":
        i = idx[-1]
    elif rule.final == "max":
        i = idx[np.argmax(a[idx])]
    elif rule.final == "best_val_acc":
        i = idx[np.argmax(key[idx])]
    else:
        i = idx[np.argmin(key[idx])]
    return float(a[i]), int(e[i])


def convergence_epochs(curve: Curve, percent: float, rule: Table2Rule = TABLE2_RULE) -> int | None:
    """n_X of one run under ``rule`` (module doc) — the one function every Table 2 number comes from."""
    f = final_accuracy(curve, rule)
    if f is None:
        return None
    n = epochs_to_fraction(curve.epochs, curve.test_acc, percent, final=f[0])
    return None if n is None else n - (1 - rule.base)


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


def _mean_run(curves: Sequence[Curve]) -> Curve:
    """The mean over runs as one Curve (test accuracy, validation accuracy and loss where all have
    them), on the epochs every run reached with a finite test accuracy."""
    n = min(len(c.finite()[0]) for c in curves)

    def mean_of(attr: str) -> np.ndarray | None:
        if any(getattr(c, attr) is None for c in curves):
            return None
        return np.stack(
            [np.asarray(getattr(c, attr), dtype=float)[np.isfinite(c.test_acc)][:n] for c in curves]
        ).mean(0)

    ep, acc, _ = mean_curve(curves)
    return Curve(
        curves[0].model, curves[0].task, -1, ep, acc,
        val_acc=mean_of("val_acc"), val_loss=mean_of("val_loss"), run_dir="mean curve",
    )  # fmt: skip


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
    "task", "model", "runs", "diverged_runs", "rule",
    *(f"epochs_to_{x}_{s}" for x in FRACTIONS for s in ("mean", "std")),
    *(f"epochs_to_{x}_mean_curve" for x in FRACTIONS),
    "final_test_acc_mean", "final_test_acc_std", "epochs", "params",
    "sops_per_sample", "sops_per_step", "spikes_per_neuron_step",
    "paper_model", *(f"paper_epochs_to_{x}" for x in FRACTIONS),
    "paper_test_acc_mean", "paper_test_acc_std", "paper_params", "paper_sops_per_sample",
    "paper_sops_per_step",
)  # fmt: skip


def effective_rule(curves: Sequence[Curve], rule: Table2Rule) -> Table2Rule:
    """``rule``, or ``last`` with the same base for a group whose runs did not record validation
    numbers (runs folders read before validation curves were kept): stated in the row's ``rule``."""
    if rule.final in ("best_val_acc", "min_val_loss"):
        need = "val_acc" if rule.final == "best_val_acc" else "val_loss"
        if any(getattr(c, need) is None for c in curves):
            return Table2Rule("last", rule.base)
    return rule


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
        mc = _mean_run(curves)
        for x in FRACTIONS:
            row[f"epochs_to_{x}_mean_curve"] = convergence_epochs(mc, x, used)
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


def _published(task: str, model: str) -> dict[int, float] | None:
    t, m = PAPER_TASK.get(task, task), PAPER_MODEL.get(model, model.upper())
    for row in paper_table("table2"):
        if row["task"] == t and row["model"] == m:
            return {x: float(row[f"epochs_to_{x}pct"]) for x in FRACTIONS}
    return None


def table2_rule_comparison(groups: Mapping[tuple[str, str], Sequence[Curve]]) -> list[dict[str, Any]]:
    """Every candidate rule (:data:`FINAL_RULES` × :data:`EPOCH_BASES`) on every (task, model) group
    that has a published Table 2 row: one row per (rule, task, model) with, per X in 95/98/100, the
    per-run n_X, their mean, the published value, the residual mean − published and whether
    |residual| ≤ :data:`REPRODUCE_TOLERANCE`."""
    out = []
    for final in FINAL_RULES:
        for base in EPOCH_BASES:
            rule = Table2Rule(final, base)
            for (task, model), curves in groups.items():
                pub = _published(task, model)
                if pub is None or not curves:
                    continue
                row: dict[str, Any] = {
                    "rule": rule.name,
                    "final": final,
                    "base": base,
                    "task": task,
                    "model": model,
                }
                row["runs"] = len(curves)
                hits = 0
                for x in FRACTIONS:
                    per_run = [convergence_epochs(c, x, rule) for c in curves]
                    m = mean_std(per_run)[0]
                    res = m - pub[x]
                    ok = bool(math.isfinite(res) and abs(res) <= REPRODUCE_TOLERANCE)
                    hits += ok
                    row[f"n{x}_runs"] = per_run
                    row[f"n{x}_mean"] = m
                    row[f"n{x}_paper"] = pub[x]
                    row[f"n{x}_residual"] = res
                    row[f"n{x}_reproduced"] = ok
                row["cells_reproduced"] = hits
                row["row_reproduced"] = hits == len(FRACTIONS)
                out.append(row)
    return out


def rule_scores(comparison: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per rule: cells and whole rows reproduced, and the mean |residual| over all cells, best first
    (most cells, then most rows, then smallest mean |residual|)."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in comparison:
        by.setdefault(r["rule"], []).append(r)
    scores = []
    for name, rows in by.items():
        res = [abs(r[f"n{x}_residual"]) for r in rows for x in FRACTIONS]
        scores.append(
            {
                "rule": name,
                "final": rows[0]["final"],
                "base": rows[0]["base"],
                "cells_reproduced": sum(r["cells_reproduced"] for r in rows),
                "cells": len(rows) * len(FRACTIONS),
                "rows_reproduced": sum(r["row_reproduced"] for r in rows),
                "rows": len(rows),
                "mean_abs_residual": float(np.mean(res)) if res else math.nan,
            }
        )
    scores.sort(key=lambda s: (-s["cells_reproduced"], -s["rows_reproduced"], s["mean_abs_residual"]))
    return scores


def best_rule(comparison: Sequence[Mapping[str, Any]]) -> Table2Rule:
    """The rule :func:`rule_scores` ranks first."""
    top = rule_scores(comparison)[0]
    return Table2Rule(top["final"], top["base"])


def _no_ecg_tail(comparison: Sequence[Mapping[str, Any]]) -> bool:
    ecg = [r for r in comparison if r["task"] == "ecg"]
    return bool(ecg) and not any(r["n98_reproduced"] or r["n100_reproduced"] for r in ecg)


def table2_rule_markdown(comparison: Sequence[Mapping[str, Any]], chosen: Table2Rule = TABLE2_RULE) -> str:
    """The rule comparison as Markdown: the score per rule, then the chosen rule's per-row residuals,
    then every rule's per-row residuals."""
    scores = rule_scores(comparison)
    lines = [
        '# Table 2 — which definition of "final accuracy" reproduces the published numbers',
        "",
        "Computed from the authors' own learning curves (bundled, 5 runs per row). A published cell "
        f"(an integer) counts as reproduced when |mean over runs − published| ≤ {REPRODUCE_TOLERANCE} epoch.",
        "",
        "| rule | cells reproduced | rows reproduced | mean abs residual (epochs) |",
        "|---|---|---|---|",
    ]
    for s in scores:
        mark = " **(chosen)**" if s["rule"] == chosen.name else ""
        lines.append(
            f"| {s['rule']}{mark} | {s['cells_reproduced']} / {s['cells']} | "
            f"{s['rows_reproduced']} / {s['rows']} | {_fmt(s['mean_abs_residual'], 2)} |"
        )
    top = scores[0] if scores else None
    lines += ["", f"Chosen rule: **{chosen.name}** — {chosen.describe()}."]
    if top is not None and top["rule"] != chosen.name:
        lines.append(f"(The best-scoring rule on these curves is {top['rule']}, not the chosen one.)")
    if len(scores) > 1:
        runner_up = scores[1]
        by_res = min(scores, key=lambda x: x["mean_abs_residual"])
        by_rows = max(scores, key=lambda x: x["rows_reproduced"])
        lines.append(
            "Ranking fixed before the comparison: most reproduced cells first. The margin is "
            f"{scores[0]['cells_reproduced'] - runner_up['cells_reproduced']} cell(s) over "
            f"{runner_up['rule']}; the smallest mean |residual| is {by_res['rule']} "
            f"({_fmt(by_res['mean_abs_residual'], 2)} epochs) and the most whole rows {by_rows['rule']} "
            f"({by_rows['rows_reproduced']}), so these curves determine the choice only weakly."
        )
    whole = [x for x in scores if x["rows_reproduced"]]
    if scores and not whole:
        lines.append(
            "No rule reproduces a whole published row; the chosen rule is the one that reproduces the most "
            "single cells."
        )
    elif whole:
        lines.append(
            "Whole rows reproduced: "
            + ", ".join(f"{x['rule']} {x['rows_reproduced']} of {x['rows']}" for x in whole)
            + "; no rule reproduces every row"
            + (", and none any ECG n₉₈ or n₁₀₀ cell" if _no_ecg_tail(comparison) else "")
            + "."
        )

    def block(rule_name: str) -> list[str]:
        out = [
            "| task | model | n₉₅ mean (paper, residual) | n₉₈ mean (paper, residual) "
            "| n₁₀₀ mean (paper, residual) | per-run n₉₅ / n₉₈ / n₁₀₀ |",
            "|---|---|---|---|---|---|",
        ]
        for r in comparison:
            if r["rule"] != rule_name:
                continue
            cells = []
            for x in FRACTIONS:
                ok = "✓" if r[f"n{x}_reproduced"] else "✗"
                cells.append(
                    f"{_fmt(r[f'n{x}_mean'])} ({_fmt(r[f'n{x}_paper'], 0)}, {r[f'n{x}_residual']:+.1f}) {ok}"
                )
            runs = " / ".join(",".join(_fmt(v) for v in r[f"n{x}_runs"]) for x in FRACTIONS)
            out.append(
                f"| {PAPER_TASK.get(r['task'], r['task'])} | {PAPER_MODEL.get(r['model'], r['model'])} | "
                + " | ".join(cells)
                + f" | {runs} |"
            )
        return out

    lines += ["", "## Per published row: the rules that reproduce each cell", ""]
    lines += ["| task | model | n₉₅ | n₉₈ | n₁₀₀ | whole row |", "|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["task"], r["model"]) for r in comparison))
    for task, model in keys:
        mine = [r for r in comparison if (r["task"], r["model"]) == (task, model)]
        cells = [", ".join(r["rule"] for r in mine if r[f"n{x}_reproduced"]) or "none" for x in FRACTIONS]
        whole = ", ".join(r["rule"] for r in mine if r["row_reproduced"]) or "none"
        lines.append(
            f"| {PAPER_TASK.get(task, task)} | {PAPER_MODEL.get(model, model)} | "
            + " | ".join(cells)
            + f" | {whole} |"
        )
    lines += ["", f"## Chosen rule ({chosen.name}): per-row residuals", "", *block(chosen.name)]
    for s in scores:
        if s["rule"] != chosen.name:
            lines += ["", f"## {s['rule']}", "", *block(s["rule"])]
    return "\n".join(lines) + "\n"
