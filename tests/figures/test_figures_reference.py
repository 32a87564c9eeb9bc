"""``gradscape figures --profile reference``: every output from the released artifacts, on tiny settings."""

from __future__ import annotations

import json
import math

from gradscape.cli import main


def test_reference_smoke_writes_every_figure_table_and_the_report(tmp_path) -> None:
    out = tmp_path / "ref"
    assert main(["figures", "--profile", "reference-smoke", "--out", str(out), "--no-progress"]) == 0
    for name in ("fig3.png", "fig4.png", "fig5.png", "fig5.html", "fig5-psmnist.png", "fig6.png",
                 "table2_reference.md", "table2_rules.md", "REPORT.md", "summary.json"):  # fmt: skip
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    verdicts = {c["claim"]: c["verdict"] for c in summary["claims"]}
    # claims with no released artifact say so; the authors' 5 PS-MNIST RF runs all stop after epoch 0
    assert (
        verdicts["The divergence boundary, more than RP or SR, carries the convergence benefit"]
        == "no artifact"
    )
    assert verdicts["RF without the divergence boundary diverges on PS-MNIST"] == "reproduced"
    # BRF's membrane block has |λ| ≤ 1 by construction (divergence boundary): a closed-form fact
    assert verdicts["BRF's membrane |λ_t| stays ≤ 1 along real trajectories (S-MNIST)"] == "reproduced"
    assert summary["settings"]["spread_seeds"] == [0, 1] and "gradscape_version" in summary["provenance"]
    report = (out / "REPORT.md").read_text()
    assert "\\|λ_t\\|" in report  # a literal | inside a table cell is escaped
    # cached: a second call recomputes nothing and gives the same verdicts
    assert main(["figures", "--profile", "reference-smoke", "--out", str(out), "--only", "fig5,fig6",
                 "--no-progress"]) == 0  # fmt: skip
    again = json.loads((out / "summary.json").read_text())
    assert again["fig5"] == summary["fig5"] and again["fig6"] == summary["fig6"]


def test_reference_only_rejects_unknown_figures(tmp_path, capsys) -> None:
    assert main(["figures", "--profile", "reference", "--only", "fig1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "fig3, fig4, fig5, fig6" in err


def test_lanczos_on_a_low_rank_operator_and_a_non_finite_one() -> None:
    """ARPACK gives up on an operator of rank < ncv (the Hessian of a loss on few samples): the
    invariant Krylov space then gives the exact extremes; a NaN operator gives NaN, marked."""
    import math

    import torch

    from gradscape.landscape.eigen import lanczos
    from gradscape.landscape.operators import MatrixOperator

    g = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(300, 3, generator=g, dtype=torch.float64))[0]
    a = u @ torch.diag(torch.tensor([5.0, -2.0, 0.5], dtype=torch.float64)) @ u.T  # rank 3, n 300
    top = lanczos(MatrixOperator(a), 1, which="LA")
    bottom = lanczos(MatrixOperator(a), 1, which="SA")
    assert abs(float(top.values[0]) - 5.0) < 1e-9 and abs(float(bottom.values[0]) + 2.0) < 1e-9
    zero = lanczos(MatrixOperator(torch.zeros(300, 300, dtype=torch.float64)), 1)  # ARPACK fails here
    assert zero.method == "krylov-breakdown" and float(zero.values[0]) == 0.0
    bad = lanczos(MatrixOperator(torch.full((50, 50), math.nan, dtype=torch.float64)), 1)
    assert bad.method == "non-finite" and math.isnan(float(bad.values[0])) and not bad.converged


def test_worker_processes_fill_the_cache_with_the_serial_results(tmp_path) -> None:
    """Two worker processes (one thread each) compute the analyses, the serial pass then only reads
    them: the Fig. 5 measures and Fig. 6 numbers equal a serial run's exactly (same code, same
    seeds, one thread in both), and both write the same cache files."""
    from dataclasses import replace

    import torch

    from gradscape.figures.reference import REFERENCE_SMOKE, generate_reference

    s = replace(
        REFERENCE_SMOKE,
        landscape_models={"smnist": ("smnist-brf",)},
        flow_models={"smnist": ("smnist-brf",)},
        spread_subsets=(0,),
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runs = {
            w: generate_reference(
                tmp_path / str(w),
                ("fig5", "fig6"),
                settings=s,
                device="cpu",
                progress=False,
                log=lambda _: None,
                workers=w,
            )
            for w in (1, 2)
        }
    finally:
        torch.set_num_threads(threads)
    par, ser = (json.loads((tmp_path / str(w) / "summary.json").read_text()) for w in (2, 1))
    assert par["workers"] == 2 and ser["workers"] == 1
    assert par["fig5"] == ser["fig5"] and par["fig6"] == ser["fig6"]
    names = {w: sorted(p.name for p in (tmp_path / str(w) / "analyses").rglob("*.npz")) for w in (1, 2)}
    # fig5: the grid, the curvature grid, 2 direction seeds × 1 subset; fig6: 2 flow subsets
    assert names[1] == names[2] and len(names[1]) == 6
    assert runs[2]["claims"] == runs[1]["claims"]


def test_quick_verdicts_beside_the_reference_ones_are_the_recorded_quick_report() -> None:
    """REPORT.md's quick-profile column comes from QUICK_VERDICTS: every entry equals the verdict in
    docs/figures-quick/REPORT.md (the un-suffixed landscape / gradient claims there are S-MNIST)."""
    import re
    from pathlib import Path

    from gradscape.figures.reference_report import QUICK_VERDICTS

    text = (Path(__file__).resolve().parents[2] / "docs" / "figures-quick" / "REPORT.md").read_text()
    recorded = dict(re.findall(r"^\| (.+?) \| fig[^|]* \| \*\*(.+?)\*\* \|$", text, flags=re.M))
    for claim, verdict in QUICK_VERDICTS.items():
        name = claim if claim in recorded else claim.removesuffix(" (S-MNIST)")
        assert recorded[name] == verdict, claim


def test_curvature_table_shows_a_non_finite_hessian_as_nan() -> None:
    """A Hessian-vector product that overflowed is stored as the JSON strings 'nan' (the released
    S-MNIST ALIF at θ* does this): its REPORT row reads nan, the finite row its numbers."""
    from gradscape.figures.reference_report import _curvature_lines

    nan = {"lambda_max": "nan", "lambda_min": "nan", "abs_min_over_max": "nan"}
    ok = {"lambda_max": 0.5, "lambda_min": -0.25, "abs_min_over_max": 0.5}
    f5 = {"smnist": {"curvature": {"smnist-alif": {"centre": nan}, "smnist-brf": {"centre": ok}},
                     "curvature_samples": 16}}  # fmt: skip
    rows = [line.strip("|").split("|") for line in _curvature_lines(f5) if line.startswith("| S-MNIST")]
    assert [r[1].strip() for r in rows] == ["smnist-alif", "smnist-brf"]
    assert all(math.isnan(float(x)) for x in rows[0][2:])
    assert [float(x) for x in rows[1][2:]] == [0.5, -0.25, 0.5]  # exact in binary and in %.3g
