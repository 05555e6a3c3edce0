"""The cell contract: what generation and simulation need from a NEURON cell, written down once.

Two levels, each a type you can read:

* :class:`NeuronCell` (this module) is what one *built* NEURON cell offers to
  :func:`neurodepth_lib.cells.simulation.simulate_trial` and to the adapter that drives it in generation
  workers. :class:`~neurodepth_lib.cells.L5PC`, :class:`~neurodepth_lib.cells.TeachingCell` and the cells made
  from a published model by :func:`neurodepth_lib.cells.from_neuron_model` implement it (through
  :class:`~neurodepth_lib.cells.SynapticCell`); ``isinstance(cell, NeuronCell)`` checks the names.
* :class:`~neurodepth_lib.cells.registry.CellModel` is what :mod:`neurodepth_lib.data.generation` asks for:
  picklable functions that describe, feed and simulate a cell in any process. Generation knows no specific
  cell: it only calls a ``CellModel``. :func:`~neurodepth_lib.cells.neuron_adapter.neuron_cell_model` makes
  one from a cell class, :func:`~neurodepth_lib.cells.from_neuron_model` from a published model's files.

Input channels (one excitatory and one inhibitory synapse per dendritic segment)
--------------------------------------------------------------------------------
With ``n = n_segments`` dendritic segments, listed in ``segments`` (basal trees first, then apical):

* channel ``k`` in ``0 .. n-1`` drives the excitatory synapse on segment ``k`` (AMPA+NMDA in a condition
  with NMDA, AMPA only otherwise);
* channel ``n + k`` in ``n .. 2n-1`` drives the inhibitory (GABA_A) synapse on the same segment;
* ``netcons[c]`` is the ``NetCon(None, synapse)`` (weight 1, delay 0) of channel ``c``; an input event at
  ``t`` ms is ``netcons[c].event(t)``.

The synapses are the paper's, made by :mod:`neurodepth_lib.cells.synapses` after our ``"synapses"`` library
is loaded (:class:`SynapticCell` does both).

Mechanisms: what a cell needs loaded
------------------------------------
NEURON holds one mechanism per name in a process and cannot unload a library, so a cell declares which
mechanisms it needs (``mechanisms``) and nothing else is loaded for it
(:func:`~neurodepth_lib.cells.mechanisms.ensure_cell_mechanisms`):

* ``"synapses"``: the paper's ``SynAmpa``, ``SynAmpaNmda``, ``SynGabaA``; every cell;
* ``"hay_channels"``: our Hay et al. (2011) channels (``NaTa_t``, ``Ih``, ``CaDynamics_E2``, ...): the
  :class:`~neurodepth_lib.cells.L5PC` and the :class:`~neurodepth_lib.cells.TeachingCell`;
* a directory of ``.mod`` files: a published model's own (:func:`~neurodepth_lib.cells.from_neuron_model`
  declares ``("synapses", mod_dir)``), which may reuse the Hay names with other contents.

A process that built an L5PC holds our Hay channels; a published model defining ``Ih`` differently then
cannot be loaded in it (a :class:`~neurodepth_lib.cells.mechanisms.MechanismClashError` says so and what to do),
and the reverse. Generation's spawn and Dask workers are fresh processes and build only their cell.

Units: lengths and distances in um, voltages in mV, times in ms, conductances in uS (synapses) and S/cm2
(membrane densities), rates in spikes per 100 ms per input group (:mod:`neurodepth_lib.inputs`).
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["NeuronCell", "SYNAPSE_KINDS"]

# What a condition does to the excitatory synapses: "NMDA" = AMPA+NMDA, "AMPA" = AMPA only. A cell's own
# condition names map onto these (the L5PC's "AMPA_SK" is an "AMPA" condition with less SK in the tree).
SYNAPSE_KINDS = ("NMDA", "AMPA")


@runtime_checkable
class NeuronCell(Protocol):
    """One built NEURON cell, as simulation and generation use it.

    Attributes
    ----------
    conditions : tuple of str
        The cell's own condition names (e.g. ``("NMDA", "AMPA")``, ``("control", "APV")``).
    condition : str
        The condition the synapses are set up for now.
    params : frozen dataclass
        Every number of the cell (compared to decide whether a worker's live cell can be reused); extends
        :class:`~neurodepth_lib.cells.synapses.SynapseParams`.
    soma : NEURON Section
        The soma; the output is ``soma(0.5)``'s voltage, a spike a peak above the threshold (-25 mV).
    nexus : NEURON Segment
        A dendritic recording site (``sec(x)``, not a section), recorded as ``nexus_1ms``; for a pyramidal
        cell the main bifurcation of the apical trunk (the Hay cell: ``apic[50](0.9)``).
    segments : SegmentTable
        One row per dendritic segment in channel order: section name, x, length (um), path distance from
        soma(0.5) (um), diameter (um), region (``"basal"`` or an apical region).
    dendritic_segments : list of NEURON Segments
        The same segments as NEURON objects (row ``k`` of ``segments`` is ``dendritic_segments[k]``).
    n_segments, n_inputs : int
        ``len(segments)`` and ``2 * n_segments`` (input channels).
    netcons : list of NetCon
        ``n_inputs`` NetCons in channel order (see the module notes).
    mechanisms : tuple of str
        What NEURON must hold before the cell is built, loaded in order (see the module notes): names of our
        libraries (``"synapses"``, ``"hay_channels"``) and directories of a model's ``.mod`` files.
    """

    conditions: tuple
    condition: Any
    params: Any
    soma: Any
    nexus: Any
    segments: Any
    netcons: list
    mechanisms: tuple

    @property
    def dendritic_segments(self) -> list: ...

    @property
    def n_segments(self) -> int: ...

    @property
    def n_inputs(self) -> int: ...

    def set_condition(self, condition: str) -> None:
        """Switch the synapses to ``condition`` in place (one of :attr:`conditions`)."""

    def input_settings(self, condition: str | None = None):
        """The paper's inputs for this cell (:class:`neurodepth_lib.inputs.InputSettings`) in ``condition``."""

    def destroy(self) -> None:
        """Delete the cell's sections, synapses and NetCons from NEURON (idempotent)."""
