"""Fault test of the atomic writes: kill ``train``, ``landscape`` and ``figures`` at seeded points.

``GRADSCAPE_KILL_AFTER_WRITES=N`` (the test hook of :func:`gradscape.io.atomic_write`) makes the
process ``os._exit(137)`` right after its N-th completed atomic write: no cleanup, no flush, the same
as a SIGKILL at that instant but reproducible. After every kill each file in the output folder must
be complete and valid (JSON parses, ``.pt`` loads with ``weights_only=True``, ``.npz`` arrays load,
CSV rows have every column, PNG/PDF/HTML end with their closing marker) and no temporary file may be
left; then ``--resume`` (``train``, ``landscape``) or a rerun (``figures``, which caches and resumes
its runs) must finish with results *equal* to an uninterrupted run. Equality is exact: resuming
restores the optimiser, scheduler and RNG state and the forward is the same code on the same thread
count (``GRADSCAPE_TEST_THREADS``, inherited through ``OMP_NUM_THREADS``/``--threads``), so the
floats are bit-identical; only wall-clock columns and timestamps are left out of the comparison.

The kills are chained: the first process is killed after N1 writes, the resuming process after N2
of its own writes, the next after N3, and the last resume runs to the end (in-process, to save
interpreter start-ups). N1, N2, N3 are drawn with a seeded RNG below the writes still to come (the
total T is counted on the uninterrupted run, whose process-wide counter ``gradscape.io._WRITES``
the hook also reads), so each kill lands on a real write and each resume restarts mid-job.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import gradscape.io as gio
from gradscape.cli import main

ROOT = Path(__file__).resolve().parents[2]
BRF = str(files("gradscape.bundled") / "checkpoints" / "ecg_brf.pt")
THREADS = os.environ.get("GRADSCAPE_TEST_THREADS", "1")
#: seed of each command's chain of three kills (one chain each keeps the file near its 60 s budget)
SEEDS = {"train": 0, "landscape": 1, "figures": 2}

# alif: the tiny BRF/RF never spike on ECG, so their metrics would not change from epoch to epoch
TRAIN = [
    "train", "--model", "alif", "--task", "ecg", "--hidden", "4", "--batch-size", "8",
    "--train-samples", "16", "--eval-samples", "8", "--epochs", "3", "--device", "cpu",
    "--threads", THREADS, "--no-progress",
]  # fmt: skip
LANDSCAPE = [
    "landscape", "--checkpoint", BRF, "--model", "brf", "--grid", "-1:1:4", "--chunk-size", "2",
    "--task", "ecg", "--samples", "4", "--batch-size", "4", "--steps", "30", "--device", "cpu",
    "--no-progress",
]  # fmt: skip
FIGURES = ["figures", "--profile", "smoke", "--only", "fig3", "--device", "cpu", "--no-progress"]

# ``figures --profile smoke --only fig3`` trains 8 runs (about 20 s here); the kill test needs four
# processes over it, so it patches the smoke profile down to its ECG ALIF runs (2 seeds): the same
# code path (run cache, resume of partial runs, fig3, table2, REPORT.md, summary.json), 2 runs.
_SMALL_FIG3 = {"fig3_tasks": ("ecg",), "fig3_models": ("alif",)}
_FIGURES_SCRIPT = f"""
import dataclasses, sys
from gradscape.figures import profiles
profiles.PROFILES["smoke"] = dataclasses.replace(profiles.PROFILES["smoke"], **{_SMALL_FIG3!r})
from gradscape.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def _env(kill_after: int) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = THREADS
    env["GRADSCAPE_KILL_AFTER_WRITES"] = str(kill_after)
    return env


def _killed(argv: list[str], kill_after: int, *, script: str | None = None) -> None:
    """Run ``gradscape argv`` in a fresh interpreter that dies after ``kill_after`` atomic writes."""
    head = ["-c", script] if script else ["-m", "gradscape"]
    proc = subprocess.run(
        [sys.executable, *head, *argv], env=_env(kill_after), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 137, (kill_after, proc.returncode, proc.stderr[-2000:])


def _counted(run: Callable[[], int]) -> int:
    """Run in-process; return the number of atomic writes it made."""
    before = gio._WRITES
    assert run() == 0
    return gio._WRITES - before


def _kill_points(total: int, seed: int) -> list[int]:
    """Three chained kill counts, each below the writes still to come (see the module doc)."""
    rng = random.Random(seed)
    n1 = rng.randint(1, total - 3)
    n2 = rng.randint(1, total - n1 - 2)
    n3 = rng.randint(1, total - n1 - n2 - 1)
    return [n1, n2, n3]


# --------------------------------------------------------------------------- file validity
_ENDINGS = {".png": b"IEND\xaeB`\x82", ".pdf": b"%%EOF"}


def _check_file(path: Path) -> None:
    suffix = path.suffix
    data = path.read_bytes()
    if suffix == ".json":
        json.loads(data.decode("utf-8"))
    elif suffix == ".pt":
        torch.load(path, map_location="cpu", weights_only=True)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            for key in z.files:
                z[key]  # reading each member checks its zip entry and CRC
    elif suffix == ".csv":
        text = data.decode("utf-8")
        assert text.endswith("\n"), f"{path}: last row not terminated"
        rows = list(csv.reader(text.splitlines()))
        assert rows and all(len(r) == len(rows[0]) for r in rows), f"{path}: a row lacks columns"
    elif suffix in _ENDINGS:
        assert data.rstrip().endswith(_ENDINGS[suffix]), f"{path}: truncated {suffix}"
    elif suffix == ".html":
        assert data.rstrip().endswith(b"</html>"), f"{path}: truncated html"
    elif suffix == ".md":
        assert data.decode("utf-8").strip(), f"{path}: empty"
    else:
        raise AssertionError(f"{path}: a file kind this test does not know how to check")


def _check_folder(out: Path) -> None:
    """Every file under ``out`` is complete and valid; no temporary file of atomic_write is left."""
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        assert not path.name.endswith(".tmp"), f"left-over temporary file {path}"
        _check_file(path)


# --------------------------------------------------------------------------- result comparisons
def _numbers(path: Path, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """CSV rows as numbers where they parse (compared exactly: see the module doc)."""

    def value(text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text

    with open(path, encoding="utf-8", newline="") as fh:
        return [{k: value(v) for k, v in r.items() if k not in skip} for r in csv.DictReader(fh)]


def _same_weights(a: Path, b: Path) -> None:
    sa = torch.load(a, map_location="cpu", weights_only=True)["state_dict"]
    sb = torch.load(b, map_location="cpu", weights_only=True)["state_dict"]
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), (a, k)


def _same_run(a: Path, b: Path) -> None:
    skip = ("wall_time_s",)
    assert _numbers(a / "metrics.csv", skip) == _numbers(b / "metrics.csv", skip)
    assert _numbers(a / "iterations.csv") == _numbers(b / "iterations.csv")
    for name in ("init.pt", "best.pt", "last.pt"):
        _same_weights(a / name, b / name)
    assert json.loads((a / "status.json").read_text()) == json.loads((b / "status.json").read_text())


def _same_surface(a: Path, b: Path) -> None:
    with np.load(a, allow_pickle=False) as za, np.load(b, allow_pickle=False) as zb:
        assert set(za.files) == set(zb.files)
        for key in za.files:
            if za[key].dtype.kind in "fiub":
                assert np.array_equal(za[key], zb[key], equal_nan=za[key].dtype.kind == "f"), key


# --------------------------------------------------------------------------- the three commands
def _chain(
    argv: list[str], out: Path, reference: Path, seed: int, resume: list[str], script: str | None = None
) -> None:
    total = _counted(lambda: main([*argv, "--out", str(reference)]))
    points = _kill_points(total, seed)
    for k, n in enumerate(points):
        _killed([*argv, "--out", str(out), *(resume if k else [])], n, script=script)
        _check_folder(out)
    assert main([*argv, "--out", str(out), *resume]) == 0
    _check_folder(out)


def test_train_killed_three_times_resumes_to_the_same_run(tmp_path: Path) -> None:
    out, ref = tmp_path / "killed", tmp_path / "whole"
    _chain(TRAIN, out, ref, SEEDS["train"], ["--resume"])
    _same_run(out, ref)


def test_landscape_killed_three_times_resumes_to_the_same_surface(tmp_path: Path) -> None:
    out, ref = tmp_path / "killed", tmp_path / "whole"
    _chain(LANDSCAPE, out, ref, SEEDS["landscape"], ["--resume"])
    _same_surface(out / "brf" / "landscape.npz", ref / "brf" / "landscape.npz")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ref.iterdir())


def test_figures_killed_three_times_reruns_to_the_same_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from gradscape.figures import profiles

    small = dataclasses.replace(profiles.PROFILES["smoke"], **_SMALL_FIG3)
    monkeypatch.setitem(profiles.PROFILES, "smoke", small)
    out, ref = tmp_path / "killed", tmp_path / "whole"
    _chain(FIGURES, out, ref, SEEDS["figures"], [], script=_FIGURES_SCRIPT)
    runs = sorted(p.name for p in (ref / "runs").iterdir())
    assert runs and sorted(p.name for p in (out / "runs").iterdir()) == runs
    for name in runs:
        _same_run(out / "runs" / name, ref / "runs" / name)
    assert _numbers(out / "table2.csv") == _numbers(ref / "table2.csv")
    made = json.loads((out / "summary.json").read_text())
    assert made["made"] == ["fig3"] and made["table2_rows"] == 1
    for name in ("fig3.png", "fig3.pdf", "REPORT.md"):
        assert (out / name).is_file()
