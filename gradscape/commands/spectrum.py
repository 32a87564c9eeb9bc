"""``gradscape spectrum``: flags → :class:`~gradscape.gradflow.job.SpectrumJob` → ``run_spectrum`` → print.

The work, the files written and the meaning of every number are in :mod:`gradscape.gradflow.job`.
``--json`` prints a one-line summary as the last line of stdout: ``spectral_radius`` (alias of
``spectral_radius_subthreshold``, the membrane block with σ = 0), ``spectral_radius_at_state`` (σ = SG
at the evaluation state), the full-state values and, with checkpoints, the per-step statistics.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gradscape.commands.argtypes import finite_float, int_at_least, positive_float, threads
from gradscape.errors import UserError
from gradscape.threads import apply_threads


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "spectrum",
        help="eigenvalues and spectral radius of the gradient transition matrix J_t",
        description=(
            "Spectrum of J_t = ds_t/ds_{t-1}: symbolically for a neuron (built-in or path/file.py:Name) "
            "at an evaluation point (default: zero state below threshold, sigma = 0, q = 0, checked "
            "with the neuron's own step; its resting state when the zero state fires), over a "
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
        "--input",
        type=finite_float(),
        default=0.0,
        help="input current x_t at the evaluation point (default 0)",
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
    p.add_argument("--trust-neuron-file", action="store_true", help="run a checkpoint's neuron file")
    p.add_argument("--task", help="task whose test split drives the checkpoints (e.g. ecg)")
    p.add_argument("--samples", type=int, help="test samples (seeded random subset; default all)")
    p.add_argument("--steps", type=int, help="use only the first STEPS time steps (default all)")
    p.add_argument(
        "--flow-samples",
        type=int,
        default=4,
        help="samples for the whole-network gradient norms and Lyapunov exponents (default 4)",
    )
    p.add_argument("--lyapunov", type=int, default=5, help="leading Lyapunov exponents (default 5)")
    p.add_argument("--no-flow", action="store_true", help="skip the whole-network gradient-flow part")
    p.add_argument("--seed", type=int_at_least(0), default=0, help="seed of the sample subset (default 0)")
    p.add_argument("--data-dir", help="folder with the task's data files")
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        help="sympy time limit per eigenproblem, s (default 10)",
    )
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line of stdout")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    p.add_argument(
        "--threads",
        type=threads,
        help="torch CPU threads (default: the cores no other process is running on at start)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars (default: on a terminal)")
    return p


def _checkpoints(args: argparse.Namespace) -> list[Any]:
    """One CheckpointSpec per --checkpoint, paired with its --model."""
    from gradscape.gradflow.job import CheckpointSpec

    specs, kinds = args.checkpoint or [], args.model or []
    if kinds and len(kinds) != len(specs):
        if len(specs) == 1 or not specs:
            raise UserError("--model goes with --checkpoint: give one --model per --checkpoint")
        raise UserError(
            f"{len(specs)} --checkpoint but {len(kinds)} --model: give one --model per --checkpoint"
        )
    return [CheckpointSpec(spec, kinds[i] if kinds else None) for i, spec in enumerate(specs)]


def run(args: argparse.Namespace) -> int:
    from gradscape.gradflow.job import MapSpec, SpectrumJob, parse_assignments, run_spectrum
    from gradscape.io import to_jsonable

    apply_threads(args.threads)
    job = SpectrumJob(
        out=Path(args.out),
        neuron=args.neuron,
        params=parse_assignments(args.param, "param"),
        state=parse_assignments(args.state, "state"),
        input_current=args.input,
        symbolic=args.symbolic,
        map=MapSpec.parse(args.map, args.map_which) if args.map else None,
        checkpoints=_checkpoints(args),
        trust_neuron_file=args.trust_neuron_file,
        task=args.task,
        data_dir=args.data_dir,
        samples=args.samples,
        steps=args.steps,
        flow_samples=args.flow_samples,
        lyapunov=args.lyapunov,
        flow=not args.no_flow,
        seed=args.seed,
        timeout=args.timeout,
        device=args.device,
        progress=False if args.no_progress else None,
    )
    result = run_spectrum(job)
    for line in result.text:
        print(line)
    if args.json:
        sys.stdout.write(json.dumps(to_jsonable(result.summary())) + "\n")
    return 0
