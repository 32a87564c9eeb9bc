"""A time limit for one sympy computation.

sympy has no time limit of its own, and the standard library's ready-made ones do not fit:
``concurrent.futures.Future.result(timeout=)`` stops *waiting* but leaves the computation running in
a pool thread that the interpreter then joins at exit (a minutes-long ``factor`` would hang the
process on quit), and ``multiprocessing`` would have to pickle sympy expressions holding the
neuron's own classes. So: SIGALRM, which interrupts the computation itself, where it is available
(the main thread of a POSIX process with no other interval timer running); else a daemon thread,
which the interpreter does not wait for, abandoned when the limit passes.
"""

from __future__ import annotations

import queue
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SymbolicTimeout", "run_with_timeout"]


class SymbolicTimeout(Exception):
    """A sympy computation ran past its time limit."""


def _alarm_available() -> bool:
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )


def run_with_timeout(fn: Callable[[], Any], timeout: float | None) -> Any:
    """``fn()``, or :class:`SymbolicTimeout` after ``timeout`` seconds (None or ≤ 0: no limit).

    In the main thread (and when no other interval timer is running) SIGALRM interrupts the
    computation itself; elsewhere ``fn`` runs in a daemon thread that is abandoned (not killed:
    Python cannot kill a thread) when the limit passes.
    """
    if timeout is None or timeout <= 0:
        return fn()
    message = f"no result within {timeout:g} s"
    if _alarm_available():

        def _alarm(signum: int, frame: Any) -> None:
            raise SymbolicTimeout(message)

        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return fn()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    box: queue.Queue = queue.Queue(maxsize=1)

    def _worker() -> None:
        try:
            box.put((True, fn()))
        except BaseException as exc:  # handed back to the caller below
            box.put((False, exc))

    threading.Thread(target=_worker, daemon=True, name="gradscape-sympy").start()
    try:
        ok, value = box.get(timeout=timeout)
    except queue.Empty:
        raise SymbolicTimeout(message) from None
    if not ok:
        raise value
    return value
