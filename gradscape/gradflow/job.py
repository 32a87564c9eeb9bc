"""``run_spectrum(job) -> SpectrumResult``: everything ``gradscape spectrum`` does, as one library call.

A :class:`SpectrumJob` says what to analyse: a neuron (built-in or ``path/file.py:Name``) at an
evaluation point (:mod:`gradscape.gradflow.evaluation_point`), optionally symbolically
(:func:`gradscape.gradflow.symbolic.derive`) and over a parameter grid
(:func:`gradscape.gradflow.parameter_map.spectral_radius_map`), and trained checkpoints along real
test trajectories (per-neuron J_t, :func:`gradscape.gradflow.jacobians.checkpoint_spectra`; the
whole-network gradient flow and Lyapunov exponents,
:func:`gradscape.gradflow.network_flow.checkpoint_gradient_flow`). :func:`run_spectrum` writes into
``job.out``: ``result.json`` (the resolved job, data subset, seed and provenance), ``jacobian_<neuron>.txt``
/ ``.tex``, ``map.png`` / ``map.npz``, ``rho_distribution.png``, ``rho_full_distribution.png``,
``gradient_norms.png``, ``spectra.npz`` and ``spectrum.html``; the :class:`SpectrumResult` holds
every number reported and the list of files written (the types live in
:mod:`gradscape.gradflow.jobspec` and :mod:`gradscape.gradflow.results` and are re-exported here).
The command, the demo and the figures call it (or the functions it calls); none of them
orchestrates the analysis itself.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from gradscape.errors import UserError
from gradscape.gradflow.evaluation_point import PointSpectrum, point_spectrum
from gradscape.gradflow.jobspec import CheckpointSpec, MapAxis, MapSpec, SpectrumJob, parse_assignments
from gradscape.gradflow.neuron_facts import parameter_values
from gradscape.gradflow.results import CheckpointSpectra, ParameterMap, SpectrumResult

__all__ = [
    "MapAxis",
    "MapSpec",
    "CheckpointSpec",
    "SpectrumJob",
    "ParameterMap",
    "CheckpointSpectra",
    "SpectrumResult",
    "run_spectrum",
    "parse_assignments",
    "open_checkpoint_spec",
]

# built-in neuron name, sympy time limit → (text, LaTeX, closed forms) of its general derivation
_SYMBOLIC_CACHE: dict[tuple[str, float], tuple[str, str, dict]] = {}


# ---------------------------------------------------------------------- helpers
def open_checkpoint_spec(c: CheckpointSpec, trust_neuron_file: bool = False) -> tuple[Any, str]:
    """The one place a spectrum job opens a checkpoint: the typed Checkpoint and its report label
    (the run folder or file name: two runs of one neuron must not share a label)."""
    from gradscape.models.checkpoints import open_checkpoint

    ck = open_checkpoint(c.spec, c.model, trust_neuron_file=trust_neuron_file)
    if ck.bundled is not None:
        where = "reference ECG" if ck.bundled.task == "ecg" else f"bundled {ck.bundled.task}"
        return ck, f"{ck.bundled.name} ({where})"
    name = Path(c.spec).name
    return ck, name if c.model is None else f"{c.model} ({name})"


def _fmt_stats(s: dict) -> str:
    return (
        f"median {s['median']:.5f}, range {s['min']:.5f}–{s['max']:.5f}, "
        f"ρ>1 in {100 * s['frac_gt_1']:.3f} % ({s['count_gt_1']} of {s['n']})"
    )


def _boundary(params: dict, x_name: str, x_values: np.ndarray, y_name: str) -> Any:
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


def _symbolic(
    neuron: Any, point: PointSpectrum | None, job: SpectrumJob, out: Path, text: list[str] | None
) -> tuple[dict[str, Any], list[str]]:
    """jacobian_<neuron>.txt / .tex: the general symbolic J and, with ``job.symbolic``, J at the
    evaluation ``point`` (the numbers themselves are in result.json, from torch)."""
    from gradscape.gradflow.symbolic import derive
    from gradscape.io import atomic_write_text
    from gradscape.models.neurons import NEURONS

    key = (neuron.name, job.timeout)
    builtin = NEURONS.get(neuron.name) is neuron
    if builtin and key in _SYMBOLIC_CACHE:
        body, tex, sym = _SYMBOLIC_CACHE[key]
    else:
        general = derive(neuron)
        body, tex = general.to_text(job.timeout), general.to_latex(job.timeout)
        sym = {"closed_form": {}}
        for which in ("membrane", "sub", "full"):
            res = general.eigenvalues(which, job.timeout)
            rho = general.spectral_radius(which, job.timeout)
            sym["closed_form"][which] = {
                "eigenvalues": [str(v) for v in res.values],
                "closed_form": res.closed_form,
                "note": res.note,
                "spectral_radius": None if rho is None else str(rho),
            }
        if builtin:
            # the general derivation of a built-in neuron depends on nothing else: reuse it in-process
            _SYMBOLIC_CACHE[key] = (body, tex, sym)
    if point is not None and job.symbolic:
        # the given state, or the resting state that replaced a firing zero state
        state = dict(job.state) or (point.state if point.zero_state_fires else None)
        at = derive(neuron, params=point.params, state=state, x=job.input_current if state else None)
        body += "\n\n=== at the evaluation point ===\n" + at.to_text(job.timeout)
        tex += "\n% === at the evaluation point ===\n" + at.to_latex(job.timeout)
    name = neuron.name.replace("+", "_").replace("/", "_")
    atomic_write_text(out / f"jacobian_{name}.txt", body)
    atomic_write_text(out / f"jacobian_{name}.tex", tex)
    if job.symbolic and text is not None:
        text.append(body)
    return sym, [f"jacobian_{name}.txt", f"jacobian_{name}.tex"]


def _parameter_map(neuron: Any, params: dict, job: SpectrumJob, out: Path) -> ParameterMap:
    from gradscape.gradflow import parameter_map, plots
    from gradscape.io import atomic_savez

    spec = job.map
    assert spec is not None
    (xn, xv), (yn, yv) = (spec.x.name, spec.x.values), (spec.y.name, spec.y.values)
    # the pseudo-parameter b replaces b_offset (see gradscape.gradflow.parameter_map)
    hidden = {xn, yn} | ({"b_offset"} if "b" in (xn, yn) else set())
    constants = {k: v for k, v in params.items() if k not in hidden}
    rho = np.asarray(
        parameter_map.spectral_radius_map(
            neuron, xn, xv, yn, yv, which=spec.which, constants=constants, state=job.state or None
        ),
        dtype=float,
    )
    if rho.shape != (len(yv), len(xv)):
        raise UserError(f"parameter map returned shape {rho.shape}, expected {(len(yv), len(xv))}")
    b = _boundary(params, xn, xv, yn)
    title = (
        f"{neuron.name}: ρ of the {spec.which} J over ({xn}, {yn}); "
        f"{', '.join(f'{k}={v:g}' if not isinstance(v, bool) else f'{k}={v}' for k, v in constants.items())}"
    )
    kw = {"boundary": b[0], "boundary_label": b[1]} if b else {}
    plots.plot_parameter_map(out / "map.png", xn, xv, yn, yv, rho, title=title, **kw)
    atomic_savez(out / "map.npz", x=xv, y=yv, rho=rho)
    return ParameterMap(spec, rho, constants, title, b[0] if b else None, b[1] if b else None)


def _point_lines(p: PointSpectrum) -> list[str]:
    lines = [
        f"{p.neuron} at {p.point} (params {p.params}): membrane ρ sub-threshold (σ = 0) = "
        f"{p.spectral_radius_subthreshold:.6f}, at the state (σ = SG there) = "
        f"{p.spectral_radius_at_state:.6f}; full-state ρ sub-threshold = "
        f"{p.spectral_radius_full_subthreshold:.6f}"
    ]
    if p.diverged:
        lines.append(
            f"note: {p.neuron}'s step gives NaN/inf at this point: the neuron diverges there, and the "
            "spectra of a J that is not finite are NaN (recorded as diverged in result.json)"
        )
    if p.zero_state_fires:
        state = ", ".join(f"{k}={v:.6g}" for k, v in p.state.items())
        lines.append(f"note: {p.neuron} spikes at the zero state; evaluated at its resting state {state}")
    return lines


# ---------------------------------------------------------------------- run
def run_spectrum(job: SpectrumJob) -> SpectrumResult:
    """Run ``job`` (module docstring); raises :class:`UserError` with one line for a user's mistake."""
    import torch
    from tqdm import tqdm

    from gradscape.gradflow import plots
    from gradscape.gradflow.jacobians import checkpoint_spectra
    from gradscape.gradflow.network_flow import checkpoint_gradient_flow
    from gradscape.io import atomic_savez, atomic_write_json, output_folder, provenance
    from gradscape.memory import require_memory
    from gradscape.models.device import resolve_device
    from gradscape.models.neurons import get_neuron

    if job.neuron is None and not job.checkpoints:
        raise UserError("give --neuron NAME (or path/file.py:Name) and/or --checkpoint RUN_OR_FILE")
    if job.checkpoints and not job.task:
        raise UserError("--checkpoint needs --task (the test split that drives the network), e.g. --task ecg")
    job.check()
    # checked before any computing: an unwritable --out must not fail at the first write of the end
    out = output_folder(job.out)
    device = resolve_device(job.device)
    config = job.config()
    config["device"] = str(device)
    loaded = [open_checkpoint_spec(c, job.trust_neuron_file) for c in job.checkpoints]
    neuron = get_neuron(job.neuron) if job.neuron is not None else loaded[0][0].model.neuron
    if job.map is not None:
        require_memory(
            job.map.memory_bytes(len(neuron.state_fields)),
            f"--map {job.map} ({job.map.size:,} grid points of {neuron.name}'s J)",
            "use fewer points per axis (N in NAME=LO:HI:N)",
        )
    params, defaulted = parameter_values(neuron, job.params)
    point = point_spectrum(neuron, params, job.state or None, x=job.input_current, defaulted=defaulted)
    text = _point_lines(point)
    symbolic: dict[str, Any] = {}
    sym, sym_files = _symbolic(neuron, point, job, out, text)
    symbolic[neuron.name] = sym
    for ck, _ in loaded:
        if ck.model.neuron.name != neuron.name:
            sym, more = _symbolic(ck.model.neuron, None, job, out, None)
            symbolic[ck.model.neuron.name] = sym
            sym_files += more
    result = SpectrumResult(out, config, provenance(), point, symbolic)
    if job.map is not None:
        result.parameter_map = _parameter_map(neuron, params, job, out)
        result.files += ["map.png", "map.npz"]
        text.append(f"map written: {out / 'map.png'}")
    map_plot = None if result.parameter_map is None else result.parameter_map.plot_data()
    if loaded:
        from gradscape.models.datasets import load_task

        data = load_task(job.task, data_dir=job.data_dir)
        split = (
            data.test
            if job.samples is None or job.samples >= len(data.test)
            else data.test.subset(job.samples, seed=job.seed)
        )
        inputs = split.inputs.transpose(0, 1).contiguous()
        targets = split.targets.transpose(0, 1).contiguous() if split.targets.dim() == 2 else split.targets
        if job.steps:
            inputs = inputs[: job.steps]
            targets = targets[: job.steps] if targets.dim() == 2 else targets
        nflow = min(job.flow_samples, inputs.shape[1])
        result.data = {
            "task": job.task,
            "split": "test",
            "source": split.source,
            "indices": split.indices.tolist(),
            "samples": int(inputs.shape[1]),
            "steps": int(inputs.shape[0]),
            "seed": job.seed,
            "info": data.info,
            "flow_indices": split.indices[:nflow].tolist(),
        }
        hist: dict[str, np.ndarray] = {}
        curves: dict[str, np.ndarray] = {}
        arrays: dict[str, np.ndarray] = {}
        quiet = None if job.progress is None else not job.progress
        for i, (ck, label) in enumerate(tqdm(loaded, desc="checkpoints", disable=quiet)):
            net = ck.model.to(device)
            x = inputs.to(device)
            stats, arr = checkpoint_spectra(net, x, seed=job.seed, progress=job.progress)
            entry = CheckpointSpectra(
                label, str(ck.path), net.neuron.name, dict(ck.config), ck.raw.get("epoch"), stats
            )
            if job.flow and nflow > 0:
                # float64 copy: the backprop and Jacobian-product routes are compared to ~1e-12
                net64 = copy.deepcopy(net).double()
                entry.gradient_flow, norms = checkpoint_gradient_flow(
                    net64,
                    x[:, :nflow].double(),
                    targets[..., :nflow].to(device),
                    lyapunov=job.lyapunov,
                    seed=job.seed,
                    progress=job.progress,
                )
                curves[label] = norms
                arrays[f"{i}_gradient_norms"] = norms
            result.checkpoints.append(entry)
            tr = stats["trajectory"]
            hist[f"{label}: membrane ρ along trajectory"] = arr["membrane_rho"]
            hist[f"{label}: full-state ρ"] = arr["full_rho"]
            text.append(f"{label}: membrane |λ_t| along the trajectory: {_fmt_stats(tr['membrane_rho'])}")
            if "q0" in stats:
                hist[f"{label}: membrane ρ at q = 0"] = arr["membrane_rho_q0"]
                text.append(f"{label}: membrane |λ_t| at q = 0: {_fmt_stats(stats['q0']['membrane_rho'])}")
            text.append(f"{label}: full-state ρ(J_t): {_fmt_stats(tr['full_rho'])}")
            text.append(f"{label}: ‖J_t‖₂: {_fmt_stats(tr['sigma_max'])}")
            if entry.gradient_flow is not None:
                f = entry.gradient_flow
                lyap = np.round(f["lyapunov_exponents_per_step"]["median"], 5).tolist()
                text.append(
                    f"{label}: leading Lyapunov exponents per step (median over samples) {lyap}; "
                    f"backprop vs Jacobian max rel. diff {f['backprop_vs_jacobian_max_rel_diff']:.2e}"
                )
            for key, v in arr.items():
                arrays[f"{i}_{key}"] = v
        settings = f"{job.task} test, {inputs.shape[1]} samples × {inputs.shape[0]} steps"
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
        result.files += ["rho_distribution.png", "rho_full_distribution.png"]
        if curves:
            plots.plot_gradient_norms(
                out / "gradient_norms.png",
                curves,
                title=f"‖∂L/∂s_(T−k)‖, last-step NLL, backprop ({job.task} test, {nflow} samples, float64)",
            )
            result.files.append("gradient_norms.png")
        atomic_savez(out / "spectra.npz", **arrays)
        result.files.append("spectra.npz")
        with torch.no_grad():
            plots.write_html(
                out / "spectrum.html",
                title=f"gradscape spectrum: {', '.join(lbl for _, lbl in loaded)} ({settings})",
                parameter_map=map_plot,
                rho=hist,
                gradients=curves or None,
                seed=job.seed,
            )
        result.files.append("spectrum.html")
    elif map_plot is not None:
        plots.write_html(
            out / "spectrum.html", title=f"gradscape spectrum: {neuron.name}", parameter_map=map_plot
        )
        result.files.append("spectrum.html")
    result.files += sym_files
    result.text = text
    atomic_write_json(result.result_path, result.to_dict())
    return result
