"""Convergence statistics: the epochs a run needs to reach X % of its final accuracy (Table 2).

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
published rows is measured by :func:`~gradscape.figures.table2_rules.table2_rule_comparison` on the
authors' own curves; the one pair used everywhere (gradscape's own runs too) is :data:`TABLE2_RULE`,
applied by :func:`convergence_epochs`.

Over runs: mean ± sample std (ddof = 1; undefined with one run). The same statistic on the mean
curve ā_e (mean over runs, epochs every run reached) is given too, as the paper does not say which
it used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "FRACTIONS",
    "FINAL_RULES",
    "EPOCH_BASES",
    "Table2Rule",
    "TABLE2_RULE",
    "Curve",
    "final_accuracy",
    "epochs_to_fraction",
    "convergence_epochs",
    "effective_rule",
    "mean_std",
    "mean_curve",
    "mean_run",
]

FRACTIONS = (95, 98, 100)
FINAL_RULES = ("last", "max", "best_val_acc", "min_val_loss")
EPOCH_BASES = (0, 1)


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
#: by :func:`table2_rule_comparison`, checked by tests/figures/test_figures_stats_rule.py). The evidence is
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


def mean_run(curves: Sequence[Curve]) -> Curve:
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


def effective_rule(curves: Sequence[Curve], rule: Table2Rule) -> Table2Rule:
    """``rule``, or ``last`` with the same base for a group whose runs did not record validation
    numbers (runs folders read before validation curves were kept): stated in the row's ``rule``."""
    if rule.final in ("best_val_acc", "min_val_loss"):
        need = "val_acc" if rule.final == "best_val_acc" else "val_loss"
        if any(getattr(c, need) is None for c in curves):
            return Table2Rule("last", rule.base)
    return rule
