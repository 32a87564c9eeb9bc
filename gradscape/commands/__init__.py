"""Sub-commands of the ``gradscape`` command line (one module each)."""
