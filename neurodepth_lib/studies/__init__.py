"""Studies built from the layers below: architecture sweeps (:mod:`.sweeps`), how deep a cell needs to be
(:mod:`.depth`) and what its first layer learned (:mod:`.filters`)."""
from .depth import *  # noqa: F403
from .filters import *  # noqa: F403
from .sweeps import *  # noqa: F403
