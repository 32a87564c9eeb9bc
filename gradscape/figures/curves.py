"""Learning curves: reading them (gradscape run folders, the BRF authors' curve CSVs, the bundled
reduced copy) and drawing them (the panels of Figs. 3 and 4: mean ± std over seeds, the 95 % dot,
divergence marks).

Curve files understood by :func:`read_curve_file` (``.csv`` or ``.csv.gz``):

* the authors' TensorBoard export, long format ``,metric,value,step`` with ``{accuracy,loss}/{val,test}``
  per epoch (any capitalisation; ``*/train`` rows are ignored), one run per file, task/model/run from a
  ``{task}_{model}_run_{r}.csv`` name (else task ``unknown``, model = the file's stem);
* the reduced wide format ``task,model,run,epoch,val_loss,val_accuracy,test_loss,test_accuracy`` (the
  bundled ``gradscape/bundled/paper/curves.csv.gz``, see its SOURCE.md), any number of runs.

Values are read as float32 (TensorBoard's precision) and widened, so both formats give identical
numbers.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from gradscape.errors import UserError
from gradscape.figures.plotting import model_color, model_label
from gradscape.figures.stats import TABLE2_RULE, Curve, Table2Rule, convergence_epochs, effective_rule

__all__ = [
    "BUNDLED_CURVES",
    "BUNDLED_CAPTION",
    "CurveGroups",
    "bundled_curves",
    "read_curve_file",
    "read_run_folder",
    "read_curves",
    "padded",
    "plot_curves",
]

CurveGroups = dict[tuple[str, str], list[Curve]]

#: the bundled reduced copy of the authors' curves (package resource path inside gradscape.bundled)
BUNDLED_CURVES = ("paper", "curves.csv.gz")
BUNDLED_CAPTION = (
    "Data: the BRF authors' released learning curves (AdaptiveAILab/brf-neurons, MIT, "
    "experiments/*/csv_files; 5 runs per model), bundled per epoch as gradscape/bundled/paper/curves.csv.gz."
)
#: (task, model) whose released runs diverged: the curves stop after the epoch-0 row
BUNDLED_DIVERGED = frozenset({("psmnist", "rf")})
WIDE = ("task", "model", "run", "epoch", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
_NAME = re.compile(r"^(?P<task>[A-Za-z0-9-]+)_(?P<model>[A-Za-z0-9+-]+)_run_(?P<run>\d+)$")


def _f32(values: Iterable[str]) -> np.ndarray:
    return np.array([float(v) if v not in ("", None) else math.nan for v in values], np.float32).astype(float)


def _curve(task: str, model: str, run: int, rows: Sequence[Mapping[str, str]], source: str) -> Curve:
    rows = sorted(rows, key=lambda r: int(r["epoch"]))
    epochs = np.array([int(r["epoch"]) for r in rows], dtype=int)
    if len(set(epochs.tolist())) != len(epochs):
        raise UserError(f"{source}: run {task}/{model}/{run} has two rows for one epoch; one row per epoch")
    test = _f32(r["test_accuracy"] for r in rows)
    # The authors' diverged runs simply stop logging (PS-MNIST RF: only the epoch-0 row).
    stopped_at_init = (task, model) in BUNDLED_DIVERGED and int(epochs.max()) == 0
    diverged = stopped_at_init or bool(len(test) and not np.isfinite(test[-1]))
    return Curve(
        model=model,
        task=task,
        seed=run,
        epochs=epochs,
        test_acc=test,
        status="diverged" if diverged else "finished",
        diverged_epoch=int(epochs[np.isfinite(test)].max()) + 1
        if diverged and np.isfinite(test).any()
        else None,
        run_dir=f"{source}:{task}_{model}_run_{run}",
        val_acc=_f32(r["val_accuracy"] for r in rows),
        val_loss=_f32(r["val_loss"] for r in rows),
        test_loss=_f32(r["test_loss"] for r in rows),
    )


def _group(curves: Iterable[Curve]) -> CurveGroups:
    out: CurveGroups = {}
    for c in curves:
        out.setdefault((c.task, c.model), []).append(c)
    for cs in out.values():
        cs.sort(key=lambda c: c.seed)
    return out


def _parse_wide(rows: list[dict[str, str]], source: str) -> list[Curve]:
    runs: dict[tuple[str, str, int], list[dict[str, str]]] = {}
    for r in rows:
        runs.setdefault((r["task"], r["model"], int(r["run"])), []).append(r)
    return [_curve(t, m, k, rs, source) for (t, m, k), rs in runs.items()]


def _parse_long(rows: list[dict[str, str]], name: str, source: str) -> list[Curve]:
    m = _NAME.match(name)
    task, model, run = (m["task"].lower(), m["model"].lower(), int(m["run"])) if m else ("unknown", name, 0)
    by_epoch: dict[int, dict[str, str]] = {}
    for r in rows:
        parts = r["metric"].lower().split("/")
        if len(parts) != 2 or parts[1] not in ("val", "test") or parts[0] not in ("accuracy", "loss"):
            continue  # */train: one row per iteration
        by_epoch.setdefault(int(float(r["step"])), {})[f"{parts[1]}_{parts[0]}"] = r["value"]
    if not by_epoch:
        raise UserError(
            f"{source}: no accuracy/test or loss/val rows; expected the ,metric,value,step export"
        )
    table = [{"epoch": str(e), **{k: v.get(k, "") for k in WIDE[4:]}} for e, v in sorted(by_epoch.items())]
    return [_curve(task, model, run, table, source)]


def _parse_text(text: str, name: str, source: str) -> list[Curve]:
    rows = list(csv.DictReader(io.StringIO(text)))
    header = set(rows[0]) if rows else set()
    if set(WIDE) <= header:
        return _parse_wide(rows, source)
    if {"metric", "value", "step"} <= header:
        return _parse_long(rows, name, source)
    raise UserError(
        f"{source}: not a curve file: expected the columns {','.join(WIDE)} or ',metric,value,step'"
    )


def read_curve_file(path: str | Path) -> CurveGroups:
    """Curves of one ``.csv``/``.csv.gz`` file in either format (module doc), grouped by (task, model)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such curve file or run folder")
    try:
        raw = p.read_bytes()
        text = (gzip.decompress(raw) if p.name.endswith(".gz") else raw).decode("utf-8")
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise UserError(f"{p}: cannot read it as a (gzipped) UTF-8 CSV ({e})") from None
    stem = p.name.removesuffix(".gz").removesuffix(".csv")
    try:
        return _group(_parse_text(text, stem, str(p)))
    except (KeyError, ValueError) as e:
        raise UserError(
            f"{p}: malformed curve file ({e}); see `gradscape curves --help` for the formats"
        ) from None


def bundled_curves(tasks: Iterable[str] | None = None) -> CurveGroups:
    """The authors' curves bundled with gradscape (ECG and SHD: BRF, RF, ALIF; PS-MNIST: RF), runs 0–4,
    as (task, model) → curves; ``tasks`` keeps only those tasks."""
    raw = resources.files("gradscape.bundled").joinpath(*BUNDLED_CURVES).read_bytes()
    groups = _group(_parse_text(gzip.decompress(raw).decode("utf-8"), "curves", "bundled"))
    keep = None if tasks is None else set(tasks)
    rank = {m: i for i, m in enumerate(("brf", "rf", "alif"))}
    keys = sorted(groups, key=lambda k: (k[0], rank.get(k[1], 9)))
    return {k: groups[k] for k in keys if keep is None or k[0] in keep}


def read_run_folder(path: str | Path) -> Curve:
    """A gradscape run folder (``config.json``, ``metrics.csv``, ``status.json``) as one Curve with its
    validation curve, final test metrics and status."""
    d = Path(path)
    try:
        meta = json.loads((d / "config.json").read_text(encoding="utf-8"))
        cfg = meta["config"]
        with open(d / "metrics.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError as e:
        raise UserError(f"{d}: not a gradscape run folder (missing {Path(e.filename).name})") from None
    except (json.JSONDecodeError, KeyError, OSError) as e:
        raise UserError(f"{d}: unreadable run folder ({e!r}); was it written by `gradscape train`?") from None
    if not rows:
        raise UserError(f"{d}: metrics.csv has no epochs yet")
    status_path = d / "status.json"
    st = json.loads(status_path.read_text(encoding="utf-8")) if status_path.is_file() else {}

    def col(k: str) -> np.ndarray:
        return np.array([float(r[k]) if r.get(k) not in (None, "") else math.nan for r in rows])

    final = {
        k: float(col(k)[-1])
        for k in ("sops_per_sample", "sops_per_step", "spikes_per_neuron_step", "test_loss", "test_accuracy")
    }
    diverged = st.get("status") == "diverged"
    return Curve(
        model=str(cfg["model"]),
        task=str(cfg["task"]),
        seed=int(cfg.get("seed", 0)),
        epochs=np.array([int(r["epoch"]) for r in rows], dtype=int),
        test_acc=col("test_accuracy"),
        status=str(st.get("status", "running")),
        diverged_epoch=int(st["epoch"]) if diverged and "epoch" in st else None,
        final=final,
        run_dir=str(d),
        val_acc=col("val_accuracy"),
        val_loss=col("val_loss"),
        test_loss=col("test_loss"),
    )


def read_curves(paths: Iterable[str | Path]) -> CurveGroups:
    """Run folders and curve files together, grouped by (task, model) (runs keep their file order)."""
    out: CurveGroups = {}
    for p in paths:
        groups = (
            {(c.task, c.model): [c] for c in [read_run_folder(p)]} if Path(p).is_dir() else read_curve_file(p)
        )
        for k, cs in groups.items():
            out.setdefault(k, []).extend(cs)
    return out


def padded(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray]:
    """(epochs, acc (runs, epochs)) with NaN after a run's last finite epoch."""
    n = max(len(c.epochs) for c in curves)
    acc = np.full((len(curves), n), np.nan)
    for i, c in enumerate(curves):
        acc[i, : len(c.test_acc)] = c.test_acc
    longest = max(curves, key=lambda c: len(c.epochs))
    return longest.epochs, acc


def _dot_epoch(curves: Sequence[Curve], epochs: np.ndarray, mean: np.ndarray, rule: Table2Rule) -> int | None:
    """Curve step of the 95 % dot: the mean over runs of n₉₅ under ``rule`` (Table 2's number, with
    Table 2's fallback for runs without a validation curve), put back on the step axis and rounded."""
    used = effective_rule(curves, rule)
    per_run = [convergence_epochs(c, 95, used) for c in curves]
    steps = [n + (1 - used.base) for n in per_run if n is not None]
    return round(float(np.mean(steps))) if steps else None


def plot_curves(
    ax: Any,
    groups: Mapping[str, Sequence[Curve]],
    *,
    chance: float | None = None,
    rule: Table2Rule = TABLE2_RULE,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Draw mean ± std (over runs that reached an epoch) per model; a dot on the mean curve at the
    mean epoch at which runs reach 95 % of their final accuracy (``rule``, as in Table 2); ``×`` where
    a run diverged. ``styles[key]`` may set ``color``, ``ls`` and ``label`` (default: the model's colour,
    a solid line, its display name). Returns per-model summary numbers."""
    summary: dict[str, Any] = {}
    for model, curves in groups.items():
        if not curves:
            continue
        epochs, acc = padded(curves)
        # epochs that only some runs reached: NaN columns / one-run std are expected, not warnings
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(acc, axis=0)
            count = np.sum(np.isfinite(acc), axis=0)
            std = (
                np.where(count > 1, np.nanstd(acc, axis=0, ddof=1), 0.0)
                if len(curves) > 1
                else np.zeros_like(mean)
            )
        style = (styles or {}).get(model, {})
        colour = style.get("color", model_color(model))
        ls = style.get("ls", "-")
        n_div = sum(c.diverged for c in curves)
        label = f"{style.get('label', model_label(model))} (n={len(curves)}" + (
            f", {n_div} diverged)" if n_div else ")"
        )
        ax.plot(epochs, mean, color=colour, lw=1.5, ls=ls, label=label)
        if len(curves) > 1:
            ax.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.2, lw=0)
        e95 = _dot_epoch(curves, epochs, mean, rule)
        if e95 is not None and e95 in list(epochs):
            ax.plot(e95, mean[list(epochs).index(e95)], "o", color=colour, mec="k", ms=6, zorder=5)
        for c in curves:
            if c.diverged:
                ep, a = c.finite()
                x = c.diverged_epoch if c.diverged_epoch is not None else (ep[-1] if len(ep) else 0)
                y = a[-1] if len(a) else np.nan
                ax.plot(x, y, "x", color=colour, ms=9, mew=2, zorder=6)
                ax.annotate(
                    "diverged", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=colour
                )
        summary[model] = {
            "epochs_to_95_mean_curve": e95,
            "final_mean": float(mean[np.isfinite(mean)][-1]) if np.isfinite(mean).any() else float("nan"),
            "runs": len(curves),
            "diverged": n_div,
        }
    if chance is not None:
        ax.axhline(chance, color="0.6", ls=":", lw=0.8, label=f"chance ({chance:.1f} %)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return summary


#: the authors' Table 2 rows that have released curves, in the paper's order
REFERENCE_ROWS = (
    ("ecg", "brf"),
    ("ecg", "rf"),
    ("ecg", "alif"),
    ("shd", "brf"),
    ("shd", "rf"),
    ("shd", "alif"),
)


def _reference_groups() -> CurveGroups:
    g = bundled_curves(("ecg", "shd"))
    return {k: g[k] for k in REFERENCE_ROWS if k in g}


def table2_reference(rule: Table2Rule = TABLE2_RULE) -> list[dict[str, Any]]:
    """Table 2 rows (:func:`gradscape.figures.stats.table2_rows`, with the published numbers beside
    them) for ECG and SHD × BRF, RF, ALIF from the authors' bundled curves, under ``rule``."""
    from gradscape.figures.stats import table2_rows

    return table2_rows(_reference_groups(), rule)


def table2_rules_reference() -> list[dict[str, Any]]:
    """Every candidate rule on the authors' ECG/SHD curves
    (:func:`gradscape.figures.stats.table2_rule_comparison`)."""
    from gradscape.figures.stats import table2_rule_comparison

    return table2_rule_comparison(_reference_groups())


def write_table2_reference(out: str | Path) -> list[Path]:
    """``table2_reference.csv/.md`` (the chosen rule's rows vs the paper) and ``table2_rules.csv/.md``
    (every candidate rule, the residuals and which reproduces what) into ``out``."""
    from gradscape.figures.stats import FRACTIONS, TABLE2_COLUMNS, table2_markdown, table2_rule_markdown
    from gradscape.io import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = table2_reference()
    comparison = table2_rules_reference()
    paths = [
        atomic_write_text(out / "table2_reference.csv", _csv_text(rows, TABLE2_COLUMNS)),
        atomic_write_text(
            out / "table2_reference.md",
            table2_markdown(
                rows, f"{BUNDLED_CAPTION} No training: the statistics are read off those curves."
            ),
        ),
    ]
    cols = ["rule", "final", "base", "task", "model", "runs"]
    for x in FRACTIONS:
        cols += [f"n{x}_mean", f"n{x}_paper", f"n{x}_residual", f"n{x}_reproduced", f"n{x}_runs"]
    cols += ["cells_reproduced", "row_reproduced"]
    flat = [
        {**r, **{f"n{x}_runs": " ".join(str(v) for v in r[f"n{x}_runs"]) for x in FRACTIONS}}
        for r in comparison
    ]
    paths.append(atomic_write_text(out / "table2_rules.csv", _csv_text(flat, cols)))
    paths.append(
        atomic_write_text(
            out / "table2_rules.md", table2_rule_markdown(comparison) + f"\n{BUNDLED_CAPTION}\n"
        )
    )
    return paths


def _csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    return buf.getvalue()


_SOURCE_LS = ("-", "--", "-.", ":")


def plot_comparison(
    out: str | Path,
    by_source: Mapping[str, CurveGroups],
    *,
    rule: Table2Rule = TABLE2_RULE,
    caption: str = "",
    name: str = "curves",
) -> list[Path]:
    """One panel per task: every (source, model) group's mean ± std test accuracy and its 95 % dot
    (``rule``); sources differ by line style, models by colour. Writes ``name.png/.pdf``."""
    from gradscape.figures.fig3 import CHANCE
    from gradscape.figures.plotting import TASK_LABELS, add_caption, plt, save_figure

    order = {t: i for i, t in enumerate(("smnist", "psmnist", "ecg", "shd"))}
    tasks = sorted({t for g in by_source.values() for t, _ in g}, key=lambda t: (order.get(t, 9), t))
    fig, axes = plt.subplots(
        1, len(tasks), figsize=(5.6 * len(tasks), 4.4), layout="constrained", squeeze=False
    )
    for ax, task in zip(axes[0], tasks, strict=True):
        groups: dict[str, list[Curve]] = {}
        styles: dict[str, dict[str, Any]] = {}
        for i, (source, g) in enumerate(by_source.items()):
            for (t, model), cs in g.items():
                if t != task:
                    continue
                key = f"{source}|{model}"
                groups[key] = list(cs)
                styles[key] = {
                    "color": model_color(model),
                    "ls": _SOURCE_LS[i % len(_SOURCE_LS)],
                    "label": f"{model_label(model)}, {source}",
                }
        plot_curves(ax, groups, chance=CHANCE.get(task), rule=rule, styles=styles)
        epochs = int(max(c.epochs.max() for cs in groups.values() for c in cs))
        if epochs > 50:
            ax.set_xscale("symlog", linthresh=10)
            ax.set_xlim(0, epochs)
            ax.set_xlabel("epoch (linear to 10, then log)")
        ax.set_ylim(0, 100)
        ax.set_title(TASK_LABELS.get(task, task))
        ax.plot([], [], "o", color="0.5", mec="k", label=f"• n₉₅ ({rule.name})")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Convergence: test accuracy per epoch, mean ± std over runs")
    add_caption(
        fig,
        f"{caption} Dot: mean over runs of the epoch at which a run first reaches 95 % of its final "
        f"accuracy ({rule.describe()}), drawn at the curve step. Epoch 0 = before training.",
        width=150,
    )
    return save_figure(fig, Path(out), name)
