"""``gradscape figures``: plan the run matrix, train what is missing, render the figures, judge the claims.

Order: (1) work out which tasks have data (SHD only with its files; MNIST from ``--data-dir`` when it
holds the four IDX files, else the bundled split); (2) list the training runs the requested figures
need and train this rank's share of the missing ones (:class:`~gradscape.figures.runner.Runner`);
(3) after a barrier, rank 0 renders each figure, writes ``table2.csv``/``table2.md`` and ``REPORT.md``
and ``summary.json``. A figure whose inputs are missing is skipped with one line saying why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradscape.distributed import World, world
from gradscape.errors import UserError
from gradscape.figures.profiles import REFERENCE_PROFILES, Profile, get_profile
from gradscape.figures.runner import Runner, run_key
from gradscape.figures.stats import Curve
from gradscape.io import atomic_write_json, output_folder, provenance
from gradscape.models.device import resolve_device
from gradscape.models.training_config import TrainConfig, default_config

__all__ = ["FIGURES", "parse_only", "Plan", "plan_runs", "generate"]

FIGURES = ("fig1", "fig2", "fig3", "fig4", "fig5", "fig6")


def parse_only(text: str | None, allowed: Sequence[str] = FIGURES) -> tuple[str, ...]:
    """``"fig3,fig5"`` → ("fig3", "fig5") (``3,5`` too); None → all ``allowed`` figures.

    A text that names no figure (``""``, ``","``) is an error, not "all": the user asked for a subset.
    """
    if text is None:
        return tuple(allowed)
    names = tuple(dict.fromkeys(s.strip().lower() for s in str(text).split(",") if s.strip()))
    if not names:
        raise UserError(
            f"--only {text!r} names no figure; give some of {','.join(allowed)} (e.g. --only fig3) "
            "or leave --only out for all"
        )
    names = tuple(n if n.startswith("fig") else f"fig{n}" for n in names)
    bad = [n for n in names if n not in allowed]
    if bad:
        raise UserError(f"--only: unknown figure(s) {', '.join(bad)}; choose from {', '.join(allowed)}")
    return names


def check_data_dir(data_dir: str | Path | None) -> None:
    """``--data-dir``, when given, must be an existing folder (a typo must not silently mean bundled data)."""
    if data_dir is None:
        return
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UserError(f"--data-dir {data_dir} {what}; give the folder that holds the MNIST/SHD/ECG files")


def task_data_dirs(data_dir: str | None) -> tuple[dict[str, str | None], dict[str, str]]:
    """Per task the ``data_dir`` to train with (None: bundled data), and the tasks that lack data."""
    dirs: dict[str, str | None] = {"smnist": None, "psmnist": None, "ecg": None}
    missing: dict[str, str] = {}
    if data_dir is not None:
        from gradscape.models.datasets import mnist

        folder = Path(data_dir).expanduser()
        if mnist._full_files(folder) is not None:
            dirs["smnist"] = dirs["psmnist"] = str(data_dir)
        ecg_here = any((d / "QTDB_train.mat").is_file() for d in (folder, folder / "ecg"))
        dirs["ecg"] = str(data_dir) if ecg_here else None
    from gradscape.models.datasets import shd

    try:
        shd._files(data_dir, False)
    except UserError as exc:
        missing["shd"] = f"SHD skipped: {exc}"
    else:
        dirs["shd"] = str(data_dir)
    return dirs, missing


@dataclass
class Plan:
    """The runs each figure needs, by role (lists of TrainConfig, seeds included)."""

    fig3: dict[str, dict[str, list[TrainConfig]]] = field(default_factory=dict)  # task → model → seeds
    fig4_variants: dict[str, list[TrainConfig]] = field(default_factory=dict)
    fig4_models: dict[str, dict[str, list[TrainConfig]]] = field(default_factory=dict)
    fig5: dict[str, list[TrainConfig]] = field(default_factory=dict)
    fig6: dict[str, list[TrainConfig]] = field(default_factory=dict)

    def all(self) -> list[TrainConfig]:
        out: list[TrainConfig] = []
        for by_model in (*self.fig3.values(), *self.fig4_models.values()):
            for cs in by_model.values():
                out += cs
        for cs in (*self.fig4_variants.values(), *self.fig5.values(), *self.fig6.values()):
            out += cs
        return out


def plan_runs(
    profile: Profile,
    figures: Sequence[str],
    dirs: dict[str, str | None],
    missing: dict[str, str],
    device: str,
) -> Plan:
    compile_ok = profile.compile
    if compile_ok:
        try:
            import gradscape.models.fastpath  # noqa: F401
        except ImportError:
            compile_ok = False

    def cfg(model: str, task: str, seed: int, **extra: Any) -> TrainConfig:
        o = {**profile.overrides(model, task), **extra}
        return default_config(
            model, task, seed=seed, device=device, data_dir=dirs.get(task), compile=compile_ok, **o
        )

    plan = Plan()
    if "fig3" in figures:
        for task in profile.fig3_tasks:
            if task in missing:
                continue
            plan.fig3[task] = {m: [cfg(m, task, s) for s in profile.fig3_seeds] for m in profile.fig3_models}
    if "fig4" in figures:
        plan.fig4_variants = {
            v: [cfg(v, "smnist", s) for s in profile.fig4_seeds] for v in profile.fig4_variants
        }
        plan.fig4_models = {
            t: {m: [cfg(m, t, s) for s in profile.fig4_seeds] for m in profile.fig4_models}
            for t in profile.fig4_tasks
        }
    if "fig5" in figures:
        f5 = profile.fig5
        extra: dict[str, Any] = {"stop_at_val_acc": f5.stop_at_val_acc}
        if f5.max_epochs is not None:
            extra["epochs"] = f5.max_epochs
        plan.fig5 = {m: [cfg(m, f5.task, s, **extra) for s in f5.seeds] for m in f5.models}
    if "fig6" in figures:
        f6 = profile.fig6
        plan.fig6 = {m: [cfg(m, f6.task, s) for s in profile.fig3_seeds] for m in f6.models}
    return plan


def _all_done(runner: Runner, configs: Sequence[TrainConfig]) -> bool:
    return bool(configs) and all(runner.status(c) == "done" for c in configs)


def _previous_summary(out: Path, profile: str) -> dict[str, Any]:
    """The last ``summary.json`` in ``out`` when it was made with the same profile, else {}."""
    import json

    try:
        prev = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return prev if prev.get("profile") == profile else {}


def _curves(runner: Runner, groups: dict[str, list[TrainConfig]]) -> dict[str, list[Curve]]:
    return {k: [runner.curve(c) for c in cs] for k, cs in groups.items()}


def _settings_caption(
    profile: Profile, tasks: Sequence[str], seeds: Sequence[int], dirs: dict[str, str | None]
) -> str:
    parts = [f"profile {profile.name}; seeds {','.join(map(str, seeds))}"]
    for t in tasks:
        parts.append(f"{t}: {profile.settings_text(t)}")
    text = "; ".join(parts)
    if any(t in ("smnist", "psmnist") for t in tasks) and dirs.get("smnist") is None:
        text += (
            ". S-/PS-MNIST: no MNIST training files given, so train/val/test are a seeded 8,000/1,000/1,000 "
            "split of the bundled 10,000 MNIST test images"
        )
    return text


def generate(
    profile_name: str,
    out: str | Path,
    *,
    only: str | Sequence[str] | None = None,
    device: str = "auto",
    data_dir: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    threads: int | None = None,
) -> dict[str, Any]:
    """Make the requested figures into ``out``; returns the summary written to ``summary.json``.

    The ``reference`` profiles train nothing: :func:`gradscape.figures.reference.generate_reference`.
    ``threads``: torch intra-op threads while the profile runs (default: the profile's choice; one
    for the reference profiles, see :data:`REFERENCE_THREADS`).
    """
    if profile_name in REFERENCE_PROFILES:
        resolve_device(device)
        from gradscape.figures.reference import REFERENCE_FIGURES, generate_reference

        chosen = parse_only(
            only if isinstance(only, str) or only is None else ",".join(only), REFERENCE_FIGURES
        )
        settings = REFERENCE_PROFILES[profile_name]
        folder = output_folder(out)
        per_worker = threads or REFERENCE_THREADS
        with _threads(per_worker):
            return generate_reference(
                folder,
                chosen,
                settings=settings,
                device=device,
                progress=progress,
                log=log,
                workers=reference_workers(device, per_worker),
            )
    t0 = time.perf_counter()
    profile = get_profile(profile_name)
    figures = parse_only(only) if isinstance(only, str) or only is None else parse_only(",".join(only))
    check_data_dir(data_dir)
    resolve_device(device)  # a bad --device fails here, before any folder is made
    out = output_folder(out)
    with world(device) as w, _threads(threads or profile.threads):
        return _generate(profile, figures, out, device, data_dir, progress, log, w, t0)


def reference_workers(device: str, threads: int) -> int:
    """Worker processes for the reference profile's analyses: on a CPU one per ``threads`` cores
    available to this process (the 2-core CPU: two), on a GPU one (they would share the device)."""
    import os

    if resolve_device(device).type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // threads)


#: The reference profile's work is landscape grids and per-step Jacobians of H 256 networks on
#: 256 sequences, where one intra-op thread is as fast as two on the 2-core CPU (README, Speed:
#: 0.166 vs 0.170 s per landscape point) and does not spin-wait when another process holds the
#: other core (with two threads a 21×21 S-MNIST grid ran at 0.98 s per point on the loaded machine).
REFERENCE_THREADS = 1


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for the block (None: left as it is)."""
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _generate(
    profile: Profile,
    figures: Sequence[str],
    out: Path,
    device: str,
    data_dir: str | None,
    progress: bool,
    log: Callable[[str], None],
    w: World,
    t0: float,
) -> dict[str, Any]:
    dirs, missing = task_data_dirs(data_dir)
    plan = plan_runs(profile, figures, dirs, missing, device)
    jobs = profile.jobs if w.device.type == "cpu" and not w.distributed else 1
    runner = Runner(
        out, progress=progress, rank=w.rank, world=w.size, log=log, jobs=jobs, threads=profile.threads
    )
    counts = runner.run_all(plan.all())
    from gradscape.figures import fig1, fig2, fig3, fig4, fig5, fig6, report

    if w.distributed:
        import torch

        w.barrier()
        keys = ("new", "resumed", "reused", "mine")
        t = torch.tensor([counts[k] for k in keys], dtype=torch.long, device=w.device)
        torch.distributed.all_reduce(t)  # report the whole matrix, not rank 0's share
        counts.update({k: int(v) for k, v in zip(keys, t.tolist(), strict=True)})
    surfaces5: dict[str, list[Any]] = {}
    if "fig5" in figures:  # every rank takes part: the landscape shards grid points over ranks
        surfaces5 = fig5.compute_surfaces(runner, plan.fig5, profile, device=device, progress=progress)
    if not w.is_main:
        return {"rank": w.rank, "runs": counts}

    for task, why in missing.items():
        if ("fig3" in figures and task in profile.fig3_tasks) or "fig2" in figures:
            log(f"figures: {why}")
    summary: dict[str, Any] = {
        "profile": profile.name,
        "description": profile.description,
        "figures": {},
        "skipped": {f"{t} panels": why for t, why in missing.items()},
        "runs": counts,
        "missing_data": missing,
        "provenance": provenance(),
    }
    if "fig1" in figures:
        summary["figures"]["fig1"] = fig1.make_fig1(out, profile.fig1, f"Profile {profile.name}.")
    if "fig2" in figures:
        summary["figures"]["fig2"] = fig2.make_fig2(
            out, shd_data_dir=dirs.get("shd"), mnist_data_dir=dirs.get("smnist")
        )
    curves3: dict[str, dict[str, list[Curve]]] = {}
    if "fig3" in figures:
        curves3 = {t: _curves(runner, by) for t, by in plan.fig3.items()}
        cap = _settings_caption(
            profile, [t for t in profile.fig3_tasks if t not in missing], profile.fig3_seeds, dirs
        )
        summary["figures"]["fig3"] = fig3.make_fig3(out, curves3, missing, profile.fig3_tasks, cap)
    variants: dict[str, list[Curve]] = {}
    models4: dict[str, dict[str, list[Curve]]] = {}
    if "fig4" in figures:
        variants = _curves(runner, plan.fig4_variants)
        models4 = {t: _curves(runner, by) for t, by in plan.fig4_models.items()}
        cap = _settings_caption(profile, profile.fig4_tasks, profile.fig4_seeds, dirs)
        summary["figures"]["fig4"] = fig4.make_fig4(out, variants, models4, cap)
    if "fig5" in figures:
        summary["figures"]["fig5"] = fig5.make_fig5(out, surfaces5, runner, plan.fig5, profile, log=log)
    if "fig6" in figures:
        summary["figures"]["fig6"] = fig6.make_fig6(out, runner, plan.fig6, profile, device=device, log=log)

    # Claims whose figures were not requested this time still enter table2/REPORT.md when their
    # runs (Figs. 3, 4) are all cached or their analyses (Figs. 5, 6) are in the last summary.json.
    summary["made"] = list(summary["figures"])
    full = plan_runs(profile, FIGURES, dirs, missing, device)
    fig3_runs = [c for by in full.fig3.values() for cs in by.values() for c in cs]
    if "fig3" not in figures and _all_done(runner, fig3_runs):
        curves3 = {t: _curves(runner, by) for t, by in full.fig3.items()}
    fig4_runs = [c for cs in full.fig4_variants.values() for c in cs]
    fig4_runs += [c for by in full.fig4_models.values() for cs in by.values() for c in cs]
    if "fig4" not in figures and _all_done(runner, fig4_runs):
        variants = _curves(runner, full.fig4_variants)
        models4 = {t: _curves(runner, by) for t, by in full.fig4_models.items()}
    previous = _previous_summary(out, profile.name).get("analyses", {})
    summary["analyses"] = {
        f: summary["figures"][f] if f in summary["figures"] else previous[f]
        for f in ("fig5", "fig6")
        if f in summary["figures"] or f in previous
    }
    table = report.write_table2(out, curves3, models4, profile)
    report.write_report(out, profile, summary, curves3, variants, models4, table)
    summary["table2_rows"] = len(table)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    summary["run_keys"] = sorted({run_key(c) for c in plan.all()})
    atomic_write_json(out / "summary.json", summary)
    log(
        f"figures: wrote {', '.join(summary['figures'])}, table2 and REPORT.md to {out} "
        f"in {summary['seconds']} s ({counts['new'] + counts['resumed']} run(s) trained, "
        f"{counts['reused']} reused)"
    )
    return summary
