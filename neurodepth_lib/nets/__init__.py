"""Networks: the paper's TCN family, its sparse first layer, the ELM family (Spieler et al.), named presets,
model files and prediction.

Nothing here imports NEURON: a network sees input events as a ``(batch, channels, time)`` tensor, or, through
:func:`predict_events`, as the trials' event lists themselves (what NEURON's NetCons are given), with no
dense array built.
:mod:`.kinds` knows every family; its ``count_parameters`` and ``macs_per_ms`` (exported here) accept a TCN
or an ELM and their configs.
"""
from .elm import *  # noqa: F403
from .files import *  # noqa: F403
from .predict import *  # noqa: F403
from .presets import *  # noqa: F403
from .sparse import *  # noqa: F403
from .tcn import *  # noqa: F403
from .kinds import *  # noqa: F403,E402  (last: its count_parameters / macs_per_ms take every family)
