"""Session-wide test settings.

Intra-op threads: ``GRADSCAPE_TEST_THREADS`` (default 1). The networks under test are small and run
step by step, where a second OpenMP thread buys nothing and, on a loaded 2-core CI machine, costs up
to 100x in spin-waiting (measured: an ECG forward took 0.15 s with one thread and 17 s with two while
another process was busy). ``.ci/run`` runs the suite once with 1 and once with 2 threads, so no
assertion may depend on the thread count. Subprocesses the tests start inherit OMP_NUM_THREADS.
"""

import os

THREADS = int(os.environ.get("GRADSCAPE_TEST_THREADS", "1"))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
os.environ.setdefault("MKL_NUM_THREADS", str(THREADS))

import torch  # noqa: E402  (after the environment: OpenMP reads it when torch loads)

torch.set_num_threads(THREADS)
