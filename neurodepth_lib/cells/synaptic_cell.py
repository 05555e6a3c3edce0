"""What every NEURON cell of the collection shares: one excitatory and one inhibitory synapse per dendritic
segment in channel order, conditions, and a life cycle of one live cell per class.

:class:`SynapticCell` is the base of :class:`~neurodepth_lib.cells.L5PC` and
:class:`~neurodepth_lib.cells.teaching.TeachingCell`, and the template for a cell of your own. A subclass sets
``conditions``, ``params_class`` and ``mechanisms`` (default: our synapses only; a cell that inserts our Hay
channels declares ``("hay_channels", "synapses")``, as the L5PC does) and implements ``_build()``, which creates the sections and sets
``soma`` (a section), ``nexus`` (a segment), ``segments`` (a :class:`~neurodepth_lib.cells.l5pc.SegmentTable`),
``_segment_objects`` (the NEURON segments in channel order) and the section lists ``all``, ``dend``,
``apic``, ``axon``. The base class then places the paper's synapses (:mod:`.synapses`):

* input channel ``k < n_segments`` drives the excitatory synapse (AMPA+NMDA in condition ``"NMDA"``, AMPA
  otherwise) on segment ``k``; channel ``n_segments + k`` the inhibitory synapse on the same segment;
* each synapse receives events through a ``NetCon(None, syn)`` with weight 1 (``netcons[channel]``).

Only one cell of a class lives in a process: building a new one destroys the previous one (its sections,
synapses and NetCons are deleted), because NEURON simulates every section that exists and a forgotten cell
would silently double the cost of each trial. ``type(cell).live()`` is the live one.
"""
from __future__ import annotations

import weakref

from .. import inputs
from . import synapses
from .mechanisms import SYNAPSES, ensure_cell_mechanisms, import_neuron

h = import_neuron()  # NEURON, imported away from a stray x86_64/ in the working directory

__all__ = ["SynapticCell"]


class SynapticCell:
    """Base class of the NEURON cells (see the module notes), implementing
    :class:`~neurodepth_lib.cells.contract.NeuronCell`. Subclasses set :attr:`conditions` and
    :attr:`params_class` and implement :meth:`_build`."""

    conditions: tuple = ("NMDA", "AMPA")
    params_class: type = synapses.SynapseParams
    # what NEURON must hold before the cell is built (cells.contract.NeuronCell.mechanisms): our synapses; a
    # subclass adds "hay_channels" when it inserts the Hay channels, or a directory of its own .mod files
    mechanisms: tuple = (SYNAPSES,)
    _live_ref = None  # per subclass: a weak reference to the live cell

    def __init__(self, condition: str = "NMDA", params=None):
        cls = type(self)
        self._check_condition(condition)
        params = cls.params_class() if params is None else params
        if not isinstance(params, cls.params_class):
            raise TypeError(f"params must be {cls.params_class.__name__}, got {type(params).__name__}")
        self._check_params(params)
        ensure_cell_mechanisms(self.mechanisms)
        previous = cls.live()
        if previous is not None:
            previous.destroy()
        self.params = params
        self._alive = True
        self._name = f"{cls.__name__}_{id(self):x}"
        cls._live_ref = weakref.ref(self)
        try:
            self._build()
            self.condition = None
            self.synapses: list = []
            self.netcons: list = []
            self._build_synapses(condition)
        except ValueError as error:
            self.destroy()
            if "not a density mechanism name" not in str(error):
                raise
            # NEURON does not name the mechanism; the likely cause is one the class did not declare
            raise ValueError(f"building the {cls.__name__}: NEURON says {str(error).strip()!r}: a mechanism it "
                             f"inserts is not loaded. {cls.__name__}.mechanisms declares {self.mechanisms!r}; a "
                             f"cell that inserts our Hay channels declares ('hay_channels', 'synapses'), a cell "
                             f"with .mod files of its own adds their directory") from error
        except Exception:
            self.destroy()
            raise

    @classmethod
    def live(cls):
        """The cell of this class alive in this process, or None."""
        cell = cls._live_ref() if cls.__dict__.get("_live_ref") is not None else None
        return cell if cell is not None and getattr(cell, "_alive", False) else None

    # ---- what a subclass provides -------------------------------------------------------------------
    def _build(self) -> None:
        raise NotImplementedError

    def _check_params(self, params) -> None:
        """Checks of the parameters beyond their own dataclass's (e.g. a morphology file exists)."""

    @classmethod
    def _check_condition(cls, condition) -> None:
        if condition not in cls.conditions:
            raise ValueError(f"unknown condition {condition!r} for the {cls.__name__}; choose one of "
                             f"{', '.join(cls.conditions)}")

    def _after_synapses(self, condition) -> None:
        """Called whenever the condition is set (e.g. the L5PC scales SK_E2 for ``AMPA_SK``)."""

    def _forget(self) -> None:
        """Drop a subclass's own references to NEURON objects when the cell is destroyed."""

    # ---- synapses ---------------------------------------------------------------------------------------
    def synapse_kind(self, condition) -> str:
        """``"NMDA"`` (AMPA+NMDA excitatory synapses) or ``"AMPA"`` (AMPA only) for one of the cell's conditions
        (:data:`~neurodepth_lib.cells.contract.SYNAPSE_KINDS`); by default ``"NMDA"`` for the condition named so."""
        return "NMDA" if condition == "NMDA" else "AMPA"

    def _make_excitatory(self, seg, condition):
        return synapses.make_excitatory(seg, self.synapse_kind(condition), self.params)

    def _make_inhibitory(self, seg):
        return synapses.make_inhibitory(seg, self.params)

    _connect = staticmethod(synapses.connect)

    def _build_synapses(self, condition) -> None:
        exc = [self._make_excitatory(seg, condition) for seg in self._segment_objects]
        inh = [self._make_inhibitory(seg) for seg in self._segment_objects]
        self.synapses = exc + inh
        self.netcons = [self._connect(s) for s in self.synapses]
        self._after_synapses(condition)
        self.condition = condition

    def rate_ranges(self, condition: str | None = None) -> dict | None:
        """Input rate ranges per tree for ``condition`` (see :func:`neurodepth_lib.inputs.tree_input_settings`);
        None, the default, means the paper's Hay-cell ranges. Cells of other sizes scale them."""
        return None

    def input_settings(self, condition: str | None = None):
        """:class:`~neurodepth_lib.inputs.InputSettings`: the paper's generator on this cell's input trees
        (:meth:`input_trees`) at :meth:`rate_ranges` for ``condition`` (default: the cell's condition)."""
        condition = self.condition if condition is None else condition
        self._check_condition(condition)
        return inputs.tree_input_settings(self.input_trees(), condition, n_segments=self.n_segments,
                                          rate_ranges=self.rate_ranges(condition))

    def set_condition(self, condition: str) -> None:
        """Switch the condition in place (new excitatory synapses when NMDA comes or goes)."""
        self._check_condition(condition)
        self._check_alive()
        if condition == self.condition:
            return
        if self.synapse_kind(condition) != self.synapse_kind(self.condition):
            n = self.n_segments
            exc = [self._make_excitatory(seg, condition) for seg in self._segment_objects]
            self.netcons[:n] = [self._connect(s) for s in exc]
            self.synapses[:n] = exc
        self._after_synapses(condition)
        self.condition = condition

    # ---- what the pipeline reads --------------------------------------------------------------------
    def _check_alive(self) -> None:
        if not self._alive:
            raise RuntimeError(f"this {type(self).__name__} was destroyed (a newer one was built, or destroy() "
                               "was called)")

    @property
    def n_segments(self) -> int:
        return len(self.segments)

    @property
    def n_inputs(self) -> int:
        return 2 * len(self.segments)

    @property
    def excitatory_synapses(self) -> list:
        return self.synapses[: self.n_segments]

    @property
    def inhibitory_synapses(self) -> list:
        return self.synapses[self.n_segments:]

    @property
    def dendritic_segments(self) -> list:
        """NEURON segments in channel order (``segments`` row ``k`` is ``dendritic_segments[k]``)."""
        return list(self._segment_objects)

    def __str__(self) -> str:  # NEURON (and Import3d) prefix section names with this
        return self._name

    def _repr_extra(self) -> str:
        return ""

    def __repr__(self) -> str:
        name = type(self).__name__
        if not self._alive:
            return f"{name}(destroyed)"
        return (f"{name}(condition={self.condition!r}, n_segments={self.n_segments}, n_inputs={self.n_inputs}"
                f"{self._repr_extra()})")

    def destroy(self) -> None:
        """Delete this cell's NetCons, synapses and sections from NEURON (idempotent)."""
        if not getattr(self, "_alive", False):
            return
        self._alive = False
        self.netcons, self.synapses, self._segment_objects, self.nexus = [], [], [], None
        self._forget()
        sections = []
        for name in ("all", "soma", "dend", "apic", "axon"):
            value = self.__dict__.pop(name, None)
            sections += value if type(value) is list else ([] if value is None else [value])
        for sec in {id(sec): sec for sec in sections}.values():  # ``all`` lists the others again
            try:
                h.delete_section(sec=sec)
            except Exception:  # noqa: BLE001 - already deleted
                pass
        self.soma, self.dend, self.apic, self.axon, self.all = None, [], [], [], []
