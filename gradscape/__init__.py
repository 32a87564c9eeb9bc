"""gradscape: why a recurrent spiking network trains fast or slowly.

Three subsystems share one model core:

* :mod:`gradscape.models`: neurons (one pure step function each), surrogate gradients, recurrent
  networks, datasets, training and checkpoints.
* :mod:`gradscape.gradflow`: the gradient transition matrix ``J_t = ds_t/ds_{t-1}`` and its spectral
  radius, symbolically and numerically.
* :mod:`gradscape.landscape`: error surfaces around trained weights and their smoothness/convexity.
"""

__version__ = "0.1.0"
