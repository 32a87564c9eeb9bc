"""``python -m gradscape`` is the ``gradscape`` command."""

from gradscape.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
