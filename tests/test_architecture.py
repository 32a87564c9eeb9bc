"""The layers of docs/architecture.md, checked on the source: models/ knows nothing above it, and the
two analyses (gradflow/, landscape/) never import each other or the figures and commands that use
them. Every import counts, including those inside functions (read with ``ast``, nothing is run)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gradscape"

#: subpackage -> the gradscape modules it must never import
FORBIDDEN = {
    "models": ("gradflow", "landscape", "figures", "commands", "cli", "demo"),
    "gradflow": ("landscape", "figures", "commands", "cli", "demo"),
    "landscape": ("gradflow", "figures", "commands", "cli", "demo"),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            # ``from gradscape import landscape`` names the subpackage as an imported name
            if node.module == "gradscape":
                found += [(node.lineno, f"gradscape.{alias.name}") for alias in node.names]
    return found


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(layer: str) -> None:
    bad = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] == "gradscape" and len(parts) > 1 and parts[1] in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(PACKAGE)}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_function_level_imports(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from gradscape.landscape.memory import x\n    import gradscape.cli\n")
    assert _imports(f) == [(2, "gradscape.landscape.memory"), (3, "gradscape.cli")]
