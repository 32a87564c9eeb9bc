"""``gradscape spectrum``: the gradient transition matrix J_t = ∂s_t/∂s_{t−1} of a neuron and of
trained networks, its eigenvalues and spectral radius ρ.

Outputs in ``--out``: ``result.json`` (full config, data subset indices, seed, provenance; written
atomically), ``jacobian_<neuron>.txt`` / ``.tex`` (symbolic J, J_sub, membrane block, det(λI − M),
eigenvalues, ρ), ``map.png`` / ``map.npz`` (with ``--map``), ``rho_distribution.png``,
``gradient_norms.png``, ``spectra.npz`` (with ``--checkpoint``) and ``spectrum.html`` (interactive,
offline). ``--json`` prints a one-line summary as the last line of stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gradscape.errors import UserError
from gradscape.models.checkpoints import bundled_checkpoint

_SYMBOLIC_CACHE: dict[tuple[str, float], tuple[str, str, dict]] = {}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "spectrum",
        help="eigenvalues and spectral radius of the gradient transition matrix J_t",
        description=(
            "Spectrum of J_t = ds_t/ds_{t-1}: symbolically for a neuron (built-in or path/file.py:Name) "
            "at an evaluation point (default: zero state below threshold, sigma = 0, q = 0), over a "
            "parameter grid (--map), and numerically along real trajectories of trained networks "
            "(--checkpoint, repeatable; 'bundled:brf', 'bundled:rf', 'bundled:alif' name the reference "
            "ECG models)."
        ),
    )
    p.add_argument("--neuron", help="brf, rf, rf+sr, …, alif, lif or path/to/file.py:Name")
    p.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="parameter value, e.g. omega=10 (repeatable or comma-joined); trainable "
        "parameters not given take the mean of their initialisation",
    )
    p.add_argument(
        "--state",
        action="append",
        metavar="FIELD=VALUE",
        help="evaluate at this state s_{t-1} (other fields 0; sigma = SG there) instead of the "
        "zero state below threshold",
    )
    p.add_argument(
        "--input", type=float, default=0.0, help="input current x_t at the evaluation point (default 0)"
    )
    p.add_argument("--symbolic", action="store_true", help="also print the symbolic J and eigenvalues")
    p.add_argument(
        "--map",
        metavar="X=LO:HI:N,Y=LO:HI:N",
        help="spectral-radius map over two parameters, e.g. omega=0:99:200,b=-100:0:201",
    )
    p.add_argument(
        "--map-which",
        choices=("membrane", "sub", "full"),
        default="membrane",
        help="matrix whose rho is mapped (default membrane)",
    )
    p.add_argument(
        "--checkpoint",
        action="append",
        metavar="RUN_OR_FILE",
        help="trained model (run folder, .pt file or bundled:brf|rf|alif); repeatable",
    )
    p.add_argument(
        "--model",
        action="append",
        metavar="KIND",
        help="neuron kind of a reference checkpoint (brf, rf, …); one per --checkpoint",
    )
    p.add_argument("--task", help="task whose test split drives the checkpoints (e.g. ecg)")
    p.add_argument("--samples", type=int, help="test samples (seeded random subset; default all)")
    p.add_argument("--steps", type=int, help="use only the first STEPS time steps (default all)")
    p.add_argument(
        "--flow-samples",
        type=int,
        default=4,
        help="samples for the whole-network gradient norms and Lyapunov exponents (default 4)",
    )
    p.add_argument("--lyapunov", type=int, default=5, help="leading Lyapunov-style exponents (default 5)")
    p.add_argument("--no-flow", action="store_true", help="skip the whole-network gradient-flow part")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample subset (default 0)")
    p.add_argument("--data-dir", help="folder with the task's data files")
    p.add_argument(
        "--timeout", type=float, default=10.0, help="sympy time limit per eigenproblem, s (default 10)"
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    return p


# ---------------------------------------------------------------------- helpers
def _parse_map(spec: str) -> list[tuple[str, np.ndarray]]:
    axes = []
    for part in spec.split(","):
        name, sep, rng = part.partition("=")
        bits = rng.split(":")
        if not sep or len(bits) != 3:
            raise UserError(f"--map {part!r}: write NAME=LO:HI:N, e.g. omega=0:99:200")
        try:
            lo, hi, n = float(bits[0]), float(bits[1]), int(bits[2])
        except ValueError:
            raise UserError(f"--map {part!r}: LO and HI must be numbers and N an integer") from None
        if n < 2:
            raise UserError(f"--map {part!r}: N must be at least 2")
        axes.append((name.strip(), np.linspace(lo, hi, n)))
    if len(axes) != 2:
        raise UserError(f"--map needs exactly two axes, got {len(axes)}: {spec!r}")
    return axes


def _checkpoints(args: argparse.Namespace) -> list[tuple[str, str | None, str]]:
    """(path, model kind, label) per --checkpoint."""
    specs = args.checkpoint or []
    kinds = args.model or []
    if kinds and len(kinds) != len(specs):
        if len(specs) == 1 or not specs:
            raise UserError("--model goes with --checkpoint: give one --model per --checkpoint")
        raise UserError(
            f"{len(specs)} --checkpoint but {len(kinds)} --model: give one --model per --checkpoint"
        )
    out = []
    for i, spec in enumerate(specs):
        kind = kinds[i] if kinds else None
        if spec.startswith("bundled:"):
            name = spec.split(":", 1)[1]
            path = str(bundled_checkpoint(name))
            kind = kind or name
            out.append((path, kind, f"{name} (reference ECG)"))
        else:
            out.append((spec, kind, Path(spec).name if kind is None else f"{kind} ({Path(spec).name})"))
    return out


def _boundary(neuron: Any, params: dict, x_name: str, x_values: np.ndarray, y_name: str) -> Any:
    """The curve p(ω) in the map's (ω, y) coordinates where it applies (RF family), else None."""
    if x_name != "omega" or "dt" not in params or y_name not in ("b", "b_offset"):
        return None
    from gradscape.gradflow import parameter_map

    pw = np.asarray(parameter_map.divergence_boundary_curve(x_values, params["dt"]), dtype=float)
    if y_name == "b":
        return (x_values, pw), "divergence boundary b = p(ω)"
    if not params.get("boundary", False):
        return (x_values, -pw), "b′ = −p(ω) (vanilla RF: b = −b′ on the boundary)"
    return None


def _fmt_stats(s: dict) -> str:
    return (
        f"median {s['median']:.5f}, range {s['min']:.5f}–{s['max']:.5f}, "
        f"ρ>1 in {100 * s['frac_gt_1']:.3f} % ({s['count_gt_1']} of {s['n']})"
    )


# ---------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    from gradscape.gradflow import report
    from gradscape.io import atomic_savez, atomic_write_json, provenance
    from gradscape.models.device import resolve_device
    from gradscape.models.neurons import get_neuron

    if not args.neuron and not args.checkpoint:
        raise UserError("give --neuron NAME (or path/file.py:Name) and/or --checkpoint RUN_OR_FILE")
    if args.checkpoint and not args.task:
        raise UserError("--checkpoint needs --task (the test split that drives the network), e.g. --task ecg")
    if args.samples is not None and args.samples < 1:
        raise UserError("--samples must be at least 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(args.device)
    given_params = report.parse_assignments(args.param, "param")
    given_state = report.parse_assignments(args.state, "state")
    ckpts = _checkpoints(args)

    config = {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "command"}
    config["device"] = str(device)
    result: dict[str, Any] = {"config": config, "provenance": provenance(), "files": []}
    summary: dict[str, Any] = {}
    lines: list[str] = []

    # -- the neuron at its evaluation point (and symbolically) --------------------------------
    loaded: list[tuple[Any, dict, str]] = []
    for path, kind, label in ckpts:
        from gradscape.models.checkpoints import load_model

        net, ck = load_model(path, kind)
        loaded.append((net, ck, label))
    neuron = get_neuron(args.neuron) if args.neuron else loaded[0][0].neuron
    params, defaulted = report.resolve_params(neuron, given_params)
    point = report.point_spectrum(neuron, params, given_state or None, x=args.input)
    point["defaulted_to_init_mean"] = defaulted
    result["evaluation_point"] = point
    summary.update(
        neuron=neuron.name,
        spectral_radius=point["spectral_radius"],
        spectral_radius_full=point["spectral_radius_full"],
        eigenvalues=point["eigenvalues"],
        eigenvalues_full=point["eigenvalues_full"],
        params=point["params"],
        state=point["state"],
    )
    lines.append(
        f"{neuron.name} at {point['point']} (params {point['params']}): membrane ρ = "
        f"{point['spectral_radius']:.6f}, full-state ρ = {point['spectral_radius_full']:.6f}"
    )

    symbolic_files = _write_symbolic(neuron, params, given_state, args, out, result, lines)
    for net, _, _ in loaded:
        if net.neuron.name != neuron.name:
            symbolic_files += _write_symbolic(net.neuron, None, {}, args, out, result, lines, quiet=True)

    # -- parameter map -----------------------------------------------------------------------
    if args.map:
        _parameter_map(neuron, params, given_state, args, out, result)
        lines.append(f"map written: {out / 'map.png'}")

    # -- trained networks ----------------------------------------------------------------------
    if loaded:
        from tqdm import tqdm

        from gradscape.gradflow import plots
        from gradscape.models.datasets import load_task

        data = load_task(args.task, data_dir=args.data_dir)
        split = (
            data.test
            if args.samples is None or args.samples >= len(data.test)
            else data.test.subset(args.samples, seed=args.seed)
        )
        inputs = split.inputs.transpose(0, 1).contiguous()
        targets = split.targets.transpose(0, 1).contiguous() if split.targets.dim() == 2 else split.targets
        if args.steps:
            inputs = inputs[: args.steps]
            targets = targets[: args.steps] if targets.dim() == 2 else targets
        result["data"] = {
            "task": args.task,
            "split": "test",
            "source": split.source,
            "indices": split.indices.tolist(),
            "samples": int(inputs.shape[1]),
            "steps": int(inputs.shape[0]),
            "seed": args.seed,
            "info": data.info,
        }
        nflow = min(args.flow_samples, inputs.shape[1])
        result["data"]["flow_indices"] = split.indices[:nflow].tolist()
        hist: dict[str, np.ndarray] = {}
        curves: dict[str, np.ndarray] = {}
        arrays: dict[str, np.ndarray] = {}
        result["checkpoints"] = []
        summary["checkpoints"] = []
        for i, (net, ck, label) in enumerate(tqdm(loaded, desc="checkpoints", disable=None)):
            net = net.to(device)
            x = inputs.to(device)
            stats, arr = report.checkpoint_spectra(net, x, seed=args.seed, progress=None)
            entry: dict[str, Any] = {
                "label": label,
                "path": ck.get("_path"),
                "model": net.neuron.name,
                "model_config": ck.get("model_config"),
                "epoch": ck.get("epoch"),
                **stats,
            }
            if not args.no_flow and nflow > 0:
                # float64 copy: the backprop and Jacobian-product routes are compared to ~1e-12
                net64 = copy.deepcopy(net).double()
                flow, norms = report.checkpoint_gradient_flow(
                    net64,
                    x[:, :nflow].double(),
                    targets[..., :nflow].to(device),
                    lyapunov=args.lyapunov,
                    progress=None,
                )
                entry["gradient_flow"] = flow
                curves[label] = norms
                arrays[f"{i}_gradient_norms"] = norms
            result["checkpoints"].append(entry)
            tr = stats["trajectory"]
            brief = {
                "label": label,
                "model": net.neuron.name,
                "membrane_rho": tr["membrane_rho"],
                "full_rho": tr["full_rho"],
                "sigma_max": tr["sigma_max"],
            }
            hist[f"{label}: membrane ρ along trajectory"] = arr["membrane_rho"]
            hist[f"{label}: full-state ρ"] = arr["full_rho"]
            lines.append(f"{label}: membrane |λ_t| along the trajectory: {_fmt_stats(tr['membrane_rho'])}")
            if "q0" in stats:
                brief["membrane_rho_q0"] = stats["q0"]["membrane_rho"]
                hist[f"{label}: membrane ρ at q = 0"] = arr["membrane_rho_q0"]
                lines.append(f"{label}: membrane |λ_t| at q = 0: {_fmt_stats(stats['q0']['membrane_rho'])}")
            lines.append(f"{label}: full-state ρ(J_t): {_fmt_stats(tr['full_rho'])}")
            lines.append(f"{label}: ‖J_t‖₂: {_fmt_stats(tr['sigma_max'])}")
            if "gradient_flow" in entry:
                f = entry["gradient_flow"]
                brief["lyapunov_median"] = f["lyapunov_exponents_per_step"]["median"]
                brief["gradient_norm_median_at_k"] = f["median_norm_at_k"]
                lines.append(
                    f"{label}: leading exponents per step {np.round(brief['lyapunov_median'], 5).tolist()}; "
                    f"backprop vs Jacobian max rel. diff {f['backprop_vs_jacobian_max_rel_diff']:.2e}"
                )
            summary["checkpoints"].append(brief)
            for key, v in arr.items():
                arrays[f"{i}_{key}"] = v
        settings = f"{args.task} test, {inputs.shape[1]} samples × {inputs.shape[0]} steps"
        if any(v.size < stats["neuron_steps"] for v in hist.values()):
            settings += "; histograms of a seeded random 200,000 neuron-steps per model"
        plots.plot_rho_distributions(
            out / "rho_distribution.png",
            {k: v for k, v in hist.items() if "full-state" not in k},
            title=f"membrane-block ρ of per-neuron J_t ({settings})",
            xlabel="membrane-block spectral radius max |λ_t|",
        )
        plots.plot_rho_distributions(
            out / "rho_full_distribution.png",
            {k: v for k, v in hist.items() if "full-state" in k},
            title=f"full-state ρ(J_t), spike path included ({settings})",
        )
        result["files"] += ["rho_distribution.png", "rho_full_distribution.png"]
        if curves:
            plots.plot_gradient_norms(
                out / "gradient_norms.png",
                curves,
                title=f"‖∂L/∂s_(T−k)‖, last-step NLL, backprop ({args.task} test, {nflow} samples, float64)",
            )
            result["files"].append("gradient_norms.png")
        atomic_savez(out / "spectra.npz", **arrays)
        result["files"].append("spectra.npz")
        plots.write_html(
            out / "spectrum.html",
            title=f"gradscape spectrum: {', '.join(lbl for _, _, lbl in loaded)} ({settings})",
            parameter_map=result.get("_map_plot"),
            rho=hist,
            gradients=curves or None,
            seed=args.seed,
        )
        result["files"].append("spectrum.html")
    elif "_map_plot" in result:
        from gradscape.gradflow import plots

        plots.write_html(
            out / "spectrum.html",
            title=f"gradscape spectrum: {neuron.name}",
            parameter_map=result["_map_plot"],
        )
        result["files"].append("spectrum.html")
    result.pop("_map_plot", None)
    result["files"] += symbolic_files
    atomic_write_json(out / "result.json", result)
    summary["result"] = str(out / "result.json")
    for line in lines:
        print(line)
    if args.json:
        from gradscape.io import to_jsonable

        sys.stdout.write(json.dumps(to_jsonable(summary)) + "\n")
    return 0


def _write_symbolic(
    neuron: Any,
    params: dict | None,
    state: dict,
    args: argparse.Namespace,
    out: Path,
    result: dict,
    lines: list[str],
    quiet: bool = False,
) -> list[str]:
    """jacobian_<neuron>.txt / .tex: the general symbolic J and, with --symbolic, J at the
    evaluation point (the numbers themselves are always in result.json, from torch)."""
    from gradscape.gradflow.symbolic import derive
    from gradscape.models.neurons import NEURONS

    key = (neuron.name, args.timeout)
    builtin = NEURONS.get(neuron.name) is neuron
    if builtin and key in _SYMBOLIC_CACHE:
        text, tex, sym = _SYMBOLIC_CACHE[key]
    else:
        general = derive(neuron)
        text = general.to_text(args.timeout)
        tex = general.to_latex(args.timeout)
        sym = {"closed_form": {}}
        for which in ("membrane", "sub", "full"):
            res = general.eigenvalues(which, args.timeout)
            rho = general.spectral_radius(which, args.timeout)
            sym["closed_form"][which] = {
                "eigenvalues": [str(v) for v in res.values],
                "closed_form": res.closed_form,
                "note": res.note,
                "spectral_radius": None if rho is None else str(rho),
            }
        if builtin:
            # the general derivation of a built-in neuron depends on nothing else: reuse it in-process
            _SYMBOLIC_CACHE[key] = (text, tex, sym)
    if params is not None and args.symbolic:
        at = derive(neuron, params=params, state=state or None, x=args.input if state else None)
        text += "\n\n=== at the evaluation point ===\n" + at.to_text(args.timeout)
        tex += "\n% === at the evaluation point ===\n" + at.to_latex(args.timeout)
    name = neuron.name.replace("+", "_").replace("/", "_")
    from gradscape.io import atomic_write_text

    atomic_write_text(out / f"jacobian_{name}.txt", text)
    atomic_write_text(out / f"jacobian_{name}.tex", tex)
    result.setdefault("symbolic", {})[neuron.name] = sym
    if args.symbolic and not quiet:
        lines.append(text)
    return [f"jacobian_{name}.txt", f"jacobian_{name}.tex"]


def _parameter_map(
    neuron: Any, params: dict, state: dict, args: argparse.Namespace, out: Path, result: dict
) -> None:
    from gradscape.gradflow import parameter_map, plots
    from gradscape.io import atomic_savez

    (xn, xv), (yn, yv) = _parse_map(args.map)
    # the pseudo-parameter b replaces b_offset (see gradscape.gradflow.parameter_map)
    hidden = {xn, yn} | ({"b_offset"} if "b" in (xn, yn) else set())
    constants = {k: v for k, v in params.items() if k not in hidden}
    rho = np.asarray(
        parameter_map.spectral_radius_map(
            neuron, xn, xv, yn, yv, which=args.map_which, constants=constants, state=state or None
        ),
        dtype=float,
    )
    if rho.shape != (len(yv), len(xv)):
        raise UserError(f"parameter map returned shape {rho.shape}, expected {(len(yv), len(xv))}")
    b = _boundary(neuron, params, xn, xv, yn)
    title = (
        f"{neuron.name}: ρ of the {args.map_which} J over ({xn}, {yn}); "
        f"{', '.join(f'{k}={v:g}' if not isinstance(v, bool) else f'{k}={v}' for k, v in constants.items())}"
    )
    kw = {"boundary": b[0], "boundary_label": b[1]} if b else {}
    plots.plot_parameter_map(out / "map.png", xn, xv, yn, yv, rho, title=title, **kw)
    atomic_savez(out / "map.npz", x=xv, y=yv, rho=rho)
    finite = rho[np.isfinite(rho)]
    result["map"] = {
        "x": xn,
        "y": yn,
        "which": args.map_which,
        "shape": list(rho.shape),
        "rho_min": float(finite.min()) if finite.size else None,
        "rho_max": float(finite.max()) if finite.size else None,
        "frac_gt_1": float((finite > 1).mean()) if finite.size else None,
        "constants": constants,
    }
    result["files"] += ["map.png", "map.npz"]
    result["_map_plot"] = {
        "x_name": xn,
        "y_name": yn,
        "x_values": xv,
        "y_values": yv,
        "rho": rho,
        "title": title,
        "boundary": b[0] if b else None,
    }
