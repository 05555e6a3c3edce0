"""Datasets: the on-disk format, reading, generation, training targets, input caches and the shipped assets.

Data flow through this layer: a cell (:mod:`neurodepth_lib.cells`) simulates trials, :mod:`.generation`
writes them as shards (:mod:`.shards`) into a dataset directory that :mod:`.store` reads; :mod:`.targets`
turns recorded outputs into training targets; :mod:`.input_cache` materialises many trials' input events
once; :mod:`.assets` finds (or downloads) the datasets and models this repository ships, and
:mod:`.asset_records` verifies them and remakes them from their provenance. Nothing here imports torch.
"""
from . import asset_records, assets  # noqa: F401  (nd.data.assets, nd.data.asset_records)
from .generation import *  # noqa: F403
from .input_cache import *  # noqa: F403
from .shards import *  # noqa: F403
from .store import *  # noqa: F403
from .targets import *  # noqa: F403
