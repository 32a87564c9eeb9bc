"""The model core: neurons, surrogates, recurrent networks, data, training and checkpoints.

Nothing here knows about :mod:`gradscape.gradflow` or :mod:`gradscape.landscape`.
"""

from gradscape.models.network import NetParams, NetState, RecurrentNetwork, RunOutput, network_step
from gradscape.models.neurons import (
    ALIF,
    LIF,
    LSTM,
    NEURONS,
    RF_VARIANTS,
    Constant,
    Neuron,
    Normal,
    Uniform,
    get_neuron,
)
from gradscape.models.ops import SympyOps, TorchOps
from gradscape.models.surrogates import SURROGATES, DoubleGaussian, Surrogate, get_surrogate

__all__ = [
    "ALIF", "LIF", "LSTM", "NEURONS", "RF_VARIANTS", "Constant", "Neuron", "Normal", "Uniform",
    "get_neuron", "NetParams", "NetState", "RecurrentNetwork", "RunOutput", "network_step",
    "SympyOps", "TorchOps", "SURROGATES", "DoubleGaussian", "Surrogate", "get_surrogate",
]  # fmt: skip
