"""Every command on a busy machine (issue 10): wall time with another process keeping one core busy,
against the same command on the idle machine, side by side.

Each command runs as a user would start it (``python -m gradscape …``, no ``--threads``: the default
thread policy is what is measured), first on the otherwise idle machine, then while a second
process spins on one core (``while True: pass``), then idle again; the idle time is the faster of
the two idle runs. The ratio busy / idle is the number the issue bounds (≤ 2.5; a fair share of two
cores is 2). The inputs are the bundled data and models, small enough for minutes in all:

    python benchmarks/bench_busy.py                 # all commands (about 10 minutes on 2 cores)
    python benchmarks/bench_busy.py --only evaluate,spectrum

Output folders go to a temporary directory that is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

#: name → arguments after ``python -m gradscape`` ({out}: a fresh folder per run)
COMMANDS: dict[str, list[str]] = {
    "demo": ["demo", "--quick", "--out", "{out}"],
    "train": ["train", "--task", "smnist", "--model", "brf", "--epochs", "1", "--max-batches", "3",
              "--train-samples", "768", "--eval-samples", "256", "--out", "{out}"],
    "evaluate": ["evaluate", "--checkpoint", "bundled:smnist-brf", "--task", "smnist", "--samples", "2048"],
    "spectrum": ["spectrum", "--checkpoint", "bundled:brf", "--task", "ecg", "--flow-samples", "4",
                 "--out", "{out}"],
    "landscape": ["landscape", "--checkpoint", "bundled:smnist-brf", "--task", "smnist", "--samples", "128",
                  "--grid=-1:1:5", "--out", "{out}"],
    "curves": ["curves", "--bundled", "all", "--out", "{out}"],
    "figures": ["figures", "--profile", "smoke", "--out", "{out}"],
}  # fmt: skip


def _run(args: list[str], root: str) -> float:
    out = tempfile.mkdtemp(dir=root)
    shutil.rmtree(out)  # commands that refuse an existing run folder get a fresh name
    cmd = [sys.executable, "-m", "gradscape", *(a.replace("{out}", out) for a in args), "--no-progress"]
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): " + " | ".join(tail))
    return wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help=f"comma-separated subset of {','.join(COMMANDS)}")
    args = ap.parse_args(argv)
    names = args.only.split(",") if args.only else list(COMMANDS)
    unknown = [n for n in names if n not in COMMANDS]
    if unknown:
        ap.error(f"unknown command(s) {unknown}; choose from {','.join(COMMANDS)}")
    print(f"{os.cpu_count()} CPUs, load average before {os.getloadavg()[0]:.2f}")
    print(f"  {'command':<10} {'idle s':>7} {'busy s':>7} {'busy/idle':>9}  arguments")
    root = tempfile.mkdtemp(prefix="bench-busy-")
    worst = 0.0
    try:
        for name in names:
            _run(COMMANDS[name], root)  # warm-up: compile caches, page cache (not timed)
            idle = _run(COMMANDS[name], root)
            busy_proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                time.sleep(0.5)  # let it be running when the command reads /proc/loadavg
                busy = _run(COMMANDS[name], root)
            finally:
                busy_proc.kill()
                busy_proc.wait()
            idle = min(idle, _run(COMMANDS[name], root))
            worst = max(worst, busy / idle)
            print(f"  {name:<10} {idle:7.1f} {busy:7.1f} {busy / idle:9.2f}  {' '.join(COMMANDS[name])}",
                  flush=True)  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"worst busy/idle {worst:.2f} (target ≤ 2.5; load average after {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
