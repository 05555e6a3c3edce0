"""Presynaptic input: sparse events and the paper's "instantaneous-rate" generator.

Four modules, in the order they build on each other, all re-exported here (``nd.inputs.generate_inputs``):

- :mod:`.events`: the container, :class:`InputEvents`: one event per (channel, whole millisecond), sorted by
  time and then channel;
- :mod:`.ood`: the out-of-distribution variants of the inputs (:class:`OODOptions`): clustered, synchronous,
  inhibition-free and above-training-rate input, and the spatial clusters of a cell's segments;
- :mod:`.settings`: what the generator draws from (:class:`InputSettings`, :func:`tree_input_settings`,
  :func:`ood_settings`, :func:`cell_ood_settings`);
- :mod:`.generator`: the generator itself (:func:`generate_inputs`).
"""
from .events import *  # noqa: F403
from .generator import *  # noqa: F403
from .ood import *  # noqa: F403
from .settings import *  # noqa: F403
