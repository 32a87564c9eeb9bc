"""The ``gradscape`` command.

Each sub-command lives in :mod:`gradscape.commands` as a module with ``add_parser(subparsers)``
and ``run(args) -> int``. A :class:`~gradscape.errors.UserError` (or a bad flag) ends in one line on
stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gradscape import __version__
from gradscape.errors import UserError

COMMANDS = ("demo", "train", "evaluate", "spectrum", "landscape", "figures", "curves")


class _Parser(argparse.ArgumentParser):
    """argparse, but errors are one line (and name the sub-command's --help)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gradscape",
        description="Gradient flow and loss landscapes of recurrent spiking networks.",
    )
    parser.add_argument("--version", action="version", version=f"gradscape {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"gradscape.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"gradscape.commands.{name}":
                continue
            raise
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except UserError as exc:
        sys.stderr.write(f"gradscape {args.command}: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("gradscape: interrupted\n")
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
