"""Session-wide test settings.

One intra-op thread: the networks under test are small and run step by step, where a second
OpenMP thread buys nothing and, on a loaded 2-core CI machine, costs up to 100x in spin-waiting
(measured: an ECG forward took 0.15 s with one thread and 17 s with two while another process was
busy). Subprocesses the tests start inherit OMP_NUM_THREADS.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import torch

torch.set_num_threads(1)
