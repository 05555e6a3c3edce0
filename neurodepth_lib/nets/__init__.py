"""Networks: the paper's TCN family, its sparse first layer, named presets, model files and prediction.

Nothing here imports NEURON: a network sees input events as a ``(batch, channels, time)`` tensor.
"""
from .files import *  # noqa: F403
from .predict import *  # noqa: F403
from .presets import *  # noqa: F403
from .sparse import *  # noqa: F403
from .tcn import *  # noqa: F403
