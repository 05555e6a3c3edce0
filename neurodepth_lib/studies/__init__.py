"""Studies built from the layers below: architecture sweeps (:mod:`.sweeps`), how deep a cell needs to be
(:mod:`.depth`), what its first layer learned (:mod:`.filters`), and how a network of neurons with segregated
dendrites learns (:mod:`.segregated`, :mod:`.segregated_baselines`, on the digits of :mod:`.digits`), and
how the depth answer moves with the amount of data (:mod:`.scaling`)."""
from .depth import *  # noqa: F403
from .filters import *  # noqa: F403
from .scaling import *  # noqa: F403
from .sweeps import *  # noqa: F403
from .segregated import *  # noqa: F403
from .segregated_baselines import *  # noqa: F403
