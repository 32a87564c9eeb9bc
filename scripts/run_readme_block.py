"""Run a README bash block marked ``<!-- ci: NAME -->`` exactly as written (CI step, not a test).

The commands run with ``bash -euo pipefail`` in a fresh temporary folder that links the repository's
``examples/``, so the relative paths in README work and nothing is written into the checkout.
Usage: ``python scripts/run_readme_block.py custom-neuron``.
"""

from __future__ import annotations

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
        return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "custom-neuron"))
