"""Device selection: ``auto`` picks CUDA when present; anything else is checked before it is used."""

from __future__ import annotations

import torch

from gradscape.errors import UserError

__all__ = ["resolve_device"]

_CHOICES = "use auto, cpu, cuda or cuda:N"


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` → ``cuda`` if available else ``cpu``; otherwise the named device, checked.

    Only devices the networks can run on are accepted: ``cpu``, ``cuda``/``cuda:N`` with N below the
    number of visible GPUs, and ``mps`` where the MPS backend is available. ``meta`` (tensors without
    data) and other backends would fail deep inside a forward, so they are refused here in one line.
    """
    text = str(name).strip()
    if text.lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text.lower())
    except (RuntimeError, ValueError):
        raise UserError(f"--device {text!r} is not a device; {_CHOICES}") from None
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {text}: CUDA is not available here; use --device auto or cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and not 0 <= dev.index < count:
            raise UserError(
                f"--device {text}: this machine has {count} CUDA device(s), cuda:0 … cuda:{count - 1}; "
                "use one of them, cuda or auto"
            )
        return dev
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UserError(f"--device {text}: Apple MPS is not available here; {_CHOICES}")
        return dev
    raise UserError(f"--device {text}: gradscape does not run on {dev.type!r} devices; {_CHOICES}")
