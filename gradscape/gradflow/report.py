"""Compatibility import path: :func:`checkpoint_spectra` lives in :mod:`gradscape.gradflow.jacobians`
(also ``from gradscape.gradflow import checkpoint_spectra``). Kept because the README's Python API
example imports it from here; it goes once the README imports it from :mod:`gradscape.gradflow`."""

from gradscape.gradflow.jacobians import checkpoint_spectra

__all__ = ["checkpoint_spectra"]
