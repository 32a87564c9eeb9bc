"""Run a README bash block marked ``<!-- ci: NAME -->`` exactly as written (CI step, not a test).

The commands run with ``bash -euo pipefail`` in a fresh temporary folder that links the repository's
``examples/``, so the relative paths in README work and nothing is written into the checkout.
Usage: ``python scripts/run_readme_block.py custom-neuron``.

After the ``custom-neuron`` block the script also checks its first command's claim, the closed form
ρ = e^{bδ} = e^{−5 · 0.01} of the exact resonator, in the written ``out/res/result.json``
(tolerance 1e-12: the spectrum is computed in float64 from cos/sin of the exact discretisation).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def block(name: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- ci: {re.escape(name)} -->\s*```bash\n(.*?)```", text, flags=re.S)
    if found is None:
        raise SystemExit(f"README.md has no bash block marked <!-- ci: {name} -->")
    return found.group(1)


def main(name: str) -> int:
    script = block(name)
    with tempfile.TemporaryDirectory(prefix=f"readme-{name}-") as tmp:
        (Path(tmp) / "examples").symlink_to(ROOT / "examples")
        print(f"README block {name!r} in {tmp}:\n{script}", flush=True)
        rc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp).returncode
        if rc == 0 and name in CHECKS:
            CHECKS[name](Path(tmp))
        return rc


def _check_resonator(tmp: Path) -> None:
    point = json.loads((tmp / "out" / "res" / "result.json").read_text())["evaluation_point"]
    rho, expected = point["spectral_radius_subthreshold"], math.exp(-5 * 0.01)
    if abs(rho - expected) > 1e-12:
        raise SystemExit(f"README claims rho = e^(-0.05) = {expected:.6f}; gradscape spectrum gave {rho!r}")
    print(f"custom-neuron: rho = {rho!r} = e^(-0.05) (|diff| {abs(rho - expected):.1e})")


CHECKS = {"custom-neuron": _check_resonator}


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "custom-neuron"))
