"""The reference profile's claims: each of the convergence paper's claims with a verdict from the
released artifacts (:func:`gradscape.figures.report.verdict`), and REPORT.md."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gradscape.figures.reference import TASK_LABEL, ReferenceSettings
from gradscape.io import atomic_write_text

__all__ = ["claims_of", "write_report"]


def _swapped(nums: Mapping[str, Any]) -> dict[str, Any]:
    """``verdict``'s numbers with a and b exchanged (the claim names b first)."""
    return {**nums, "mean_a": nums["mean_b"], "std_a": nums["std_b"], "n_a": nums["n_b"],
            "mean_b": nums["mean_a"], "std_b": nums["std_a"], "n_b": nums["n_a"]}  # fmt: skip


#: The quick profile's verdicts (tiny networks trained here; docs/figures-quick/REPORT.md, recorded by
#: ``gradscape figures --profile quick`` on the 2-core CPU), shown beside the reference verdicts. Its
#: landscape and gradient-flow claims were on S-MNIST; it drew no SHD panels (no SHD files offline).
#: tests/figures/test_figures_reference.py checks this table against that REPORT.md.
QUICK_VERDICTS: dict[str, str] = {
    "BRF reaches 95 % of its final accuracy in fewer epochs than ALIF (S-MNIST)": "inconclusive",
    "BRF reaches 95 % of its final accuracy in fewer epochs than ALIF (PS-MNIST)": "inconclusive",
    "BRF reaches 95 % of its final accuracy in fewer epochs than ALIF (ECG)": "not reproduced",
    "The divergence boundary, more than RP or SR, carries the convergence benefit": "inconclusive",
    "RF without the divergence boundary diverges on PS-MNIST": "inconclusive",
    "BRF's loss landscape is smoother than ALIF's (S-MNIST)": "inconclusive",
    "BRF's loss landscape is closer to convex than ALIF's (S-MNIST)": "inconclusive",
    "BRF keeps gradient magnitude through time better than ALIF (S-MNIST)": "reproduced",
}


def quick_verdict(claim: str) -> str:
    """The quick profile's verdict of ``claim`` ('not run' where the quick profile has no such claim)."""
    return QUICK_VERDICTS.get(claim, "not run")


def claims_of(
    curves: Mapping[str, Any], f5: Mapping[str, Any], f6: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Every claim with its figure, verdict, the numbers behind it and the rule applied, from the
    authors' curves (task → model → runs) and the Fig. 5/Fig. 6 results."""
    from gradscape.figures.report import verdict
    from gradscape.figures.stats import convergence_epochs

    claims: list[dict[str, Any]] = []

    def add(claim: str, figure: str, v: str, numbers: str, rule: str) -> None:
        claims.append({"claim": claim, "figure": figure, "verdict": v, "numbers": numbers, "rule": rule})

    def num(x: float, d: int = 2) -> str:
        return "—" if not math.isfinite(x) else f"{x:.{d}f}"

    def two(nums: Mapping[str, Any], a: str, b: str, d: int = 2) -> str:
        return (
            f"{a} {num(nums['mean_a'], d)} ± {num(nums['std_a'], d)} (n={nums['n_a']}) vs {b} "
            f"{num(nums['mean_b'], d)} ± {num(nums['std_b'], d)} (n={nums['n_b']}); "
            f"Δ = {num(nums['delta'], d)}, combined std {num(nums['combined_std'], d)}"
        )

    rule_text = "Δ has the paper's sign and |Δ| > sqrt(s₁² + s₂²) (sample stds over the spread)"
    for task in ("smnist", "psmnist", "ecg", "shd"):
        label = {"ecg": "ECG", "shd": "SHD", **TASK_LABEL}[task]
        claim = f"BRF reaches 95 % of its final accuracy in fewer epochs than ALIF ({label})"
        runs = curves.get(task, {})
        if not runs.get("brf") or not runs.get("alif"):
            add(
                claim,
                "fig3, table2",
                "no artifact",
                "the authors released no learning curves for this task",
                "",
            )
            continue
        n_brf = [x for x in (convergence_epochs(c, 95) for c in runs["brf"]) if x is not None]
        n_alif = [x for x in (convergence_epochs(c, 95) for c in runs["alif"]) if x is not None]
        v, nums = verdict(n_alif, n_brf)
        swapped = _swapped(nums)
        add(claim, "fig3, table2", v, two(swapped, "BRF", "ALIF", 1) + " epochs (authors' 5 runs each)",
            rule_text + "; n₉₅ under the Table 2 rule")  # fmt: skip
    add("The divergence boundary, more than RP or SR, carries the convergence benefit", "fig4 (top)",
        "no artifact", "no curves of the RF variants were released", "")  # fmt: skip
    ps = curves.get("psmnist", {}).get("rf", [])
    if ps:
        diverged = sum(bool(c.diverged) or len(c.epochs) <= 1 for c in ps)
        v = "reproduced" if diverged == len(ps) and len(ps) > 1 else "inconclusive"
        add("RF without the divergence boundary diverges on PS-MNIST", "fig4 (bottom)", v,
            f"{diverged} of {len(ps)} released PS-MNIST RF runs stop after epoch 0 (diverged)",
            "reproduced when every released run diverged")  # fmt: skip
    for key, sign, what in (("roughness", -1, "smoother"), ("psd_fraction", 1, "closer to convex")):
        for task, res in f5.items():
            per = res["per_seed"]
            brf = [
                m[key] for n, ms in per.items() if n.endswith("-brf") for m in ms if m.get(key) is not None
            ]
            alif = [
                m[key] for n, ms in per.items() if n.endswith("-alif") for m in ms if m.get(key) is not None
            ]
            v, nums = verdict(brf, alif, sign=sign)
            add(f"BRF's loss landscape is {what} than ALIF's ({TASK_LABEL[task]})", "fig5", v,
                two(nums, "BRF", "ALIF", 4) + f"; measure {key}; spread over direction seeds × data subsets",
                rule_text)  # fmt: skip
    for task, names in (("smnist", "smnist"), ("psmnist", "psmnist")):
        per = f6.get("per_model", {})
        brf, alif = per.get(f"{names}-brf"), per.get(f"{names}-alif")
        if not brf or not alif:
            continue
        b = [abs(m["log10_grad_ratio"]) for m in brf]
        a = [abs(m["log10_grad_ratio"]) for m in alif]
        v, nums = verdict(a, b)
        signed = {
            k: [round(m["log10_grad_ratio"], 2) for m in ms] for k, ms in (("BRF", brf), ("ALIF", alif))
        }
        swapped = _swapped(nums)
        add(f"BRF keeps gradient magnitude through time better than ALIF ({TASK_LABEL[task]})", "fig6", v,
            two(swapped, "BRF", "ALIF")
            + f"; measure |log10(‖∂L/∂s_0‖/‖∂L/∂s_T‖)| per data subset; signed {signed}",
            rule_text)  # fmt: skip
        frac = [m["lambda_frac_gt_1"] for m in brf]
        add(f"BRF's membrane |λ_t| stays ≤ 1 along real trajectories ({TASK_LABEL[task]})", "fig6",
            "reproduced" if max(frac) == 0 else "not reproduced",
            f"fraction of neuron-steps with |λ_t| > 1: {[f'{x:.2e}' for x in frac]}; max |λ_t| "
            f"{max(m['lambda_max'] for m in brf):.6f}",
            "reproduced when no neuron-step exceeds 1")  # fmt: skip
    return claims


def _cell(text: str) -> str:
    """``text`` for a Markdown table cell (a literal ``|`` would end the cell)."""
    return text.replace("|", "\\|")


def _number(value: Any) -> float:
    """A result number as a float: JSON result files write NaN/inf as the strings 'nan'/'inf' (a
    Hessian-vector product that overflowed), None where nothing was computed (NaN)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _curvature_lines(f5: Mapping[str, Any]) -> list[str]:
    rows = []
    for task, res in f5.items():
        for label, c in (res.get("curvature") or {}).items():
            centre = (c or {}).get("centre") or {}
            if centre:
                top, bottom, ratio = (
                    _number(centre.get(k)) for k in ("lambda_max", "lambda_min", "abs_min_over_max")
                )
                rows.append(f"| {TASK_LABEL[task]} | {label} | {top:.4g} | {bottom:.4g} | {ratio:.3g} |")
    if not rows:
        return []
    n = next(iter(f5.values())).get("curvature_samples")
    return [
        f"## Curvature at θ* (surrogate Hessian over W, Lanczos, {n} seeded test images)",
        "",
        r"| task | model | λ_max | λ_min | \|λ_min/λ_max\| |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "NaN: the Hessian-vector product is not finite (the gradient overflows through time).",
        "",
    ]


def write_report(
    out: Path,
    s: ReferenceSettings,
    claims: Sequence[Mapping[str, Any]],
    f5: Mapping[str, Any],
    wall: float,
    workers: int = 1,
) -> None:
    """REPORT.md: the claims table, each claim's numbers and rule, and the curvature at θ*."""
    lines = [
        "# gradscape figures — REPORT (reference profile)",
        "",
        "Every verdict below comes from the models and learning curves the BRF authors released "
        "(bundled with gradscape), not from networks trained here. The spreads behind the landscape "
        f"and gradient-flow verdicts were fixed before any run: {len(s.spread_seeds)} direction seeds × "
        f"{len(s.spread_subsets)} data subsets ({s.spread_grid}×{s.spread_grid} points, {s.spread_samples} "
        f"images) per landscape, {len(s.flow_subsets)} data subsets of {s.flow_samples} sequences for the "
        "gradient flow. `no artifact`: nothing released answers the claim. The last column is the "
        "quick profile's verdict (docs/figures-quick/REPORT.md; `not run` where it has no such claim).",
        "",
        "| claim | figure | verdict | quick profile (tiny networks trained here) |",
        "|---|---|---|---|",
        *(
            f"| {_cell(c['claim'])} | {c['figure']} | **{c['verdict']}** | {quick_verdict(c['claim'])} |"
            for c in claims
        ),
        "",
    ]
    for c in claims:
        lines += [f"## {c['claim']}", "", f"- verdict: **{c['verdict']}** ({c['figure']})"]
        lines += [f"- measured: {c['numbers']}", *([f"- rule: {c['rule']}"] if c["rule"] else []), ""]
    lines += _curvature_lines(f5)
    lines += [
        "Table 2 from the authors' curves beside the published rows: `table2_reference.md`; the candidate "
        "final-accuracy rules and which reproduces which published cell: `table2_rules.md`.",
        "",
        f"Wall time of this run: {wall / 60:.1f} min with {workers} worker process(es) "
        "(analyses already cached in this folder are reused).",
        "",
    ]
    atomic_write_text(out / "REPORT.md", "\n".join(lines))
