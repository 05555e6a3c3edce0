"""Fitting: the paper's schedule, the one training loop with checkpoints, training windows, and
:func:`train_on_dataset` (a dataset directory in, a model file out)."""
from .loop import *  # noqa: F403
from .on_dataset import *  # noqa: F403
from .schedule import *  # noqa: F403
from .spec import *  # noqa: F403
from .windows import *  # noqa: F403
