"""A small teaching pyramidal cell: the L5PC's lesson (NMDA makes a neuron deep) at a fraction of its cost.

Why this cell exists
--------------------
The Hay L5PC (:mod:`neurodepth_lib.cells.l5pc`) costs 8-16 s of one core per simulated second; a depth
sweep with several seeds per point needs hours of its data before any network is trained. The authors'
2025 tutorial showed the NMDA-versus-AMPA contrast in minutes on a ball-and-stick cell, so a small cell can
carry the lesson. This one keeps everything the lesson depends on and drops the rest:

* **the same synapses**: one excitatory (``SynAmpaNmda`` in condition ``"NMDA"``, ``SynAmpa`` in ``"AMPA"``)
  and one inhibitory (``SynGabaA``) point process on every dendritic segment, with the paper's kinetics
  and conductances (science/paper_facts.md 1.2), deterministic release, NetCon weight 1;
* **the same input generator**: :func:`neurodepth_lib.inputs.tree_input_settings`, the paper's
  instantaneous-rate scheme, with the paper's rate *densities* (spikes per um of adjusted length per
  100 ms; adjusted length = segment length + 10 um) carried over from the Hay cell and rescaled to this
  cell's size, times ``rate_scale`` (4: a small tree has less membrane to charge and fewer inputs to sum, so it
  needs more input per um to fire at a few Hz; the NMDA condition then fires about 3.6 Hz and makes NMDA
  plateaus in about 1 % of thin-dendrite samples). In condition AMPA the paper's higher AMPA ranges apply,
  times ``ampa_rate_scale``; with the default 1.5 the AMPA cell still fires less (about 1 Hz);
* **a Hay soma** (``L5PCbiophys3`` somatic densities: NaTa_t, Nap_Et2, K_Pst, K_Tst, SKv3_1, SK_E2, Ca_HVA,
  Ca_LVAst, Ih, calcium shell) with a passive two-section axon stub, so it fires real action potentials
  with Hay's adaptation; spikes are detected exactly as for the L5PC (peaks above -25 mV);
* **the same input-channel order** and segment table: basal segments first, then apical (trunk and
  obliques are ``"oblique"``, the tuft ``"tuft"``); excitatory channels ``0..n-1``, inhibitory ``n..2n-1``.

What it drops, and why:

* **morphology**: a hand-made tree (:class:`TeachingCellParams`): three basal stems that each fork into
  two thin (0.6 um) 150-um branches, a 400-um apical trunk tapering 3 -> 1.5 um with two thin obliques, and
  a tuft of three thin 200-um branches, cut into segments of at most 50 um: 52 segments (104 inputs)
  instead of 639 (1,278).
  NMDA spikes need high input impedance and many coincident inputs on one branch: thin, long, sealed-end
  branches give that with a few tens of synapses;
* **dendritic channels**: the dendrites are passive plus a uniform Ih (Hay's basal density); no Ca hot
  zone, no dendritic Na. The NMDA nonlinearity is the only regenerative dendritic event, so the NMDA/AMPA
  contrast isolates what the paper attributes the depth to ("the interaction between NMDA receptors and
  dendritic morphology");
* **input grouping** (the one change to the input statistics): the paper draws one coarse rate per tree
  (basal, apical); here, with ``input_grouping="branches"`` (the default), every branch subtree draws its
  own coarse rate, so some branches are driven hard while others are quiet: clustered drive, which is
  what makes NMDA spikes branch-specific events. ``input_grouping="trees"`` restores the paper's two groups.

Cost: one simulated second at the pipeline's settings (dt 0.05 ms, Crank-Nicolson) costs 1/26.4 of the Hay
cell's on the same machine (``benchmarks/bench_teaching_cell.py``, back to back: 0.21 against 5.4 CPU s per
simulated second; about half of the teaching cell's cost is its 104 synapses). ``segment_um`` is the lever for a
cheaper cell (70 um gives 42 segments and 84 inputs, a different cell).

Only one teaching cell lives in a process at a time (building a second destroys the first), as for the
L5PC: NEURON simulates every section that exists.

>>> from neurodepth_lib.cells.teaching import TeachingCell
>>> cell = TeachingCell("NMDA")                     # doctest: +SKIP
>>> cell.n_segments, cell.n_inputs                  # doctest: +SKIP
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from ..inputs import hay_rates_for_tree
from . import synapses
from .l5pc import SegmentTable
from .synaptic_cell import SynapticCell
from .mechanisms import HAY_CHANNELS, SYNAPSES, import_neuron

h = import_neuron()  # NEURON, imported away from a stray x86_64/ in the working directory

__all__ = ["TeachingCell", "TeachingCellParams", "CONDITIONS"]

CONDITIONS = ("NMDA", "AMPA")


@dataclass(frozen=True)
class TeachingCellParams(synapses.SynapseParams):
    """Every number of the teaching cell. Lengths and diameters in um, densities in S/cm2."""

    # --- geometry ---------------------------------------------------------------------------------
    soma_L_um: float = 20.0
    soma_diam_um: float = 20.0
    axon_n_sections: int = 2
    axon_length_um: float = 30.0
    axon_diam_um: float = 1.0
    n_basal_stems: int = 3
    basal_stem_L_um: float = 20.0
    basal_stem_diam_um: float = 1.5
    basal_branch_L_um: float = 150.0      # each stem forks into two of these
    basal_branch_diam_um: float = 0.6
    trunk_L_um: float = 400.0             # two sections of half this length
    trunk_diam_um: tuple = (3.0, 1.5)     # proximal, distal
    n_obliques: int = 2                   # alternately at the end of the proximal trunk half and mid-distal half
    oblique_L_um: float = 150.0
    oblique_diam_um: float = 0.6
    n_tuft_branches: int = 3
    tuft_L_um: float = 200.0
    tuft_diam_um: float = 0.6
    segment_um: float = 50.0              # nseg: the odd number >= L / segment_um (coarse: cost ~ segments)

    # --- passive ------------------------------------------------------------------------------------
    Ra_ohm_cm: float = 100.0
    cm_uF_cm2: float = 1.0
    cm_dend_uF_cm2: float = 2.0           # spine correction, as in Hay
    e_pas_mV: float = -90.0
    g_pas_soma_S_cm2: float = 3.38e-5
    g_pas_axon_S_cm2: float = 3.25e-5
    g_pas_dend_S_cm2: float = 5.89e-5
    ih_dend_S_cm2: float = 0.0            # optional uniform dendritic Ih (Hay basal: 2e-4); off: it costs a state per segment
    ek_mV: float = -85.0
    ena_mV: float = 50.0
    celsius_degC: float = 6.3             # as the paper's runs (only E_Ca depends on it)

    # --- the Hay (biophys3) soma --------------------------------------------------------------------
    soma_channels_S_cm2: tuple = (
        ("NaTa_t", 2.04), ("Nap_Et2", 0.00172), ("K_Pst", 0.00223), ("K_Tst", 0.0812), ("SKv3_1", 0.693),
        ("SK_E2", 0.0441), ("Ca_HVA", 0.000992), ("Ca_LVAst", 0.00343), ("Ih", 2e-4))
    soma_ca_gamma: float = 0.000501
    soma_ca_decay_ms: float = 460.0

    # --- synapses: the fields of SynapseParams (paper_facts 1.2) -----------------------------------------

    # --- inputs -----------------------------------------------------------------------------------------
    input_grouping: str = "branches"      # "branches": one coarse rate per branch subtree; "trees": the paper's
    rate_scale: float = 4.0               # times the paper's rate densities (this small tree needs more per um)
    ampa_rate_scale: float = 1.5          # AMPA condition: a further factor, so it fires about as often as NMDA

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"TeachingCellParams.{f.name} must be finite, got {v}")
        for name in ("soma_L_um", "soma_diam_um", "axon_length_um", "axon_diam_um", "basal_stem_L_um",
                     "basal_stem_diam_um", "basal_branch_L_um", "basal_branch_diam_um", "trunk_L_um",
                     "oblique_L_um", "oblique_diam_um", "tuft_L_um", "tuft_diam_um", "segment_um", "Ra_ohm_cm",
                     "cm_uF_cm2", "cm_dend_uF_cm2", "rate_scale", "ampa_rate_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"TeachingCellParams.{name} must be positive, got {getattr(self, name)}")
        for name in ("axon_n_sections", "n_basal_stems", "n_tuft_branches"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TeachingCellParams.{name} must be >= 1, got {getattr(self, name)}")
        if int(self.n_obliques) < 0:
            raise ValueError(f"TeachingCellParams.n_obliques must be >= 0, got {self.n_obliques}")
        if len(self.trunk_diam_um) != 2 or min(self.trunk_diam_um) <= 0:
            raise ValueError(f"TeachingCellParams.trunk_diam_um must be (proximal, distal) > 0, got "
                             f"{self.trunk_diam_um}")
        if self.input_grouping not in ("branches", "trees"):
            raise ValueError(f"TeachingCellParams.input_grouping must be 'branches' or 'trees', got "
                             f"{self.input_grouping!r}")



def _check_condition(condition) -> None:
    if condition == "AMPA_SK":
        raise ValueError("AMPA_SK is not a condition of the teaching cell (it has no SK_E2 in its dendrites); "
                         "use AMPA")
    if condition not in CONDITIONS:
        raise ValueError(f"unknown condition {condition!r} for the teaching cell; choose one of "
                         f"{', '.join(CONDITIONS)}")


class TeachingCell(SynapticCell):
    """The teaching cell with one excitatory and one inhibitory synapse per dendritic segment.

    Same interface as :class:`~neurodepth_lib.cells.L5PC` where the pipeline needs it (``soma``,
    ``nexus``, ``segments``, ``synapses``, ``netcons``, ``dendritic_segments``, ``n_segments``, ``n_inputs``,
    ``condition``, ``set_condition``, ``input_trees``, ``input_settings``, ``morphology_points``,
    ``destroy``), so :func:`neurodepth_lib.cells.simulation.simulate_trial` runs it unchanged.

    Attributes
    ----------
    branch_of_segment : (n_segments,) int, which input group (branch subtree) each segment belongs to
    branch_names : names of those groups, e.g. ``basal0``, ``trunk``, ``oblique1``, ``tuft2``
    """

    conditions = CONDITIONS  # the names set_condition accepts

    params_class = TeachingCellParams
    mechanisms = (HAY_CHANNELS, SYNAPSES)  # the soma's channels and the dendrites' Ih are the Hay cell's (order: L5PC)

    @classmethod
    def _check_condition(cls, condition) -> None:
        _check_condition(condition)

    # ---------------------------------------------------------------------------------------------------
    def _section(self, name, L, diam, parent, x=1.0, kind="dend"):
        sec = h.Section(name=name, cell=self)
        sec.L = L
        if isinstance(diam, tuple):  # taper: set per segment below
            sec.diam = diam[0]
        else:
            sec.diam = diam
        n = max(1, int(math.ceil(L / self.params.segment_um)))
        sec.nseg = n if n % 2 else n + 1
        if isinstance(diam, tuple):
            for seg in sec:
                seg.diam = diam[0] + (diam[1] - diam[0]) * seg.x
        if parent is not None:
            sec.connect(parent(x))
        return sec

    def _build(self):
        p = self.params
        self.soma = self._section("soma", p.soma_L_um, p.soma_diam_um, None)
        self.soma.nseg = 1
        self.axon = []
        parent = self.soma
        for i in range(p.axon_n_sections):
            sec = self._section(f"axon[{i}]", p.axon_length_um, p.axon_diam_um, None)
            sec.nseg = 1
            sec.connect(parent(0.5 if i == 0 else 1.0))
            parent = sec
            self.axon.append(sec)
        # (section, region, group) in channel order: basal first, then apical
        layout = []
        self.dend = []
        for i in range(p.n_basal_stems):
            stem = self._section(f"dend[{len(self.dend)}]", p.basal_stem_L_um, p.basal_stem_diam_um, self.soma, 0.5)
            self.dend.append(stem)
            layout.append((stem, "basal", f"basal{i}"))
            for _ in range(2):
                br = self._section(f"dend[{len(self.dend)}]", p.basal_branch_L_um, p.basal_branch_diam_um, stem)
                self.dend.append(br)
                layout.append((br, "basal", f"basal{i}"))
        d0, d1 = p.trunk_diam_um
        mid = (d0 + d1) / 2
        self.apic = []
        trunk0 = self._section("apic[0]", p.trunk_L_um / 2, (d0, mid), self.soma, 1.0)
        trunk1 = self._section("apic[1]", p.trunk_L_um / 2, (mid, d1), trunk0)
        self.apic += [trunk0, trunk1]
        layout += [(trunk0, "oblique", "trunk"), (trunk1, "oblique", "trunk")]
        for i in range(p.n_obliques):
            where = trunk0 if i % 2 == 0 else trunk1
            ob = self._section(f"apic[{len(self.apic)}]", p.oblique_L_um, p.oblique_diam_um, where, 0.5 + 0.5 * (i % 2 == 0))
            self.apic.append(ob)
            layout.append((ob, "oblique", f"oblique{i}"))
        for i in range(p.n_tuft_branches):
            tb = self._section(f"apic[{len(self.apic)}]", p.tuft_L_um, p.tuft_diam_um, trunk1)
            self.apic.append(tb)
            layout.append((tb, "tuft", f"tuft{i}"))
        self.all = [self.soma, *self.axon, *self.dend, *self.apic]
        self.nexus = trunk1(0.9)

        # biophysics
        h.celsius = p.celsius_degC
        for sec in self.all:
            sec.Ra = p.Ra_ohm_cm
            sec.insert("pas")
            is_dend = sec in self.dend or sec in self.apic
            sec.cm = p.cm_dend_uF_cm2 if is_dend else p.cm_uF_cm2
            g = p.g_pas_dend_S_cm2 if is_dend else (p.g_pas_axon_S_cm2 if sec in self.axon else p.g_pas_soma_S_cm2)
            if is_dend and p.ih_dend_S_cm2 > 0:
                sec.insert("Ih")
            for seg in sec:
                seg.pas.g = g
                seg.pas.e = p.e_pas_mV
                if is_dend and p.ih_dend_S_cm2 > 0:
                    seg.Ih.gbar = p.ih_dend_S_cm2
        for mech, _ in p.soma_channels_S_cm2:
            self.soma.insert(mech)
        self.soma.insert("CaDynamics_E2")
        for mech, gbar in p.soma_channels_S_cm2:
            setattr(getattr(self.soma(0.5), mech), "gbar", gbar)
        self.soma(0.5).CaDynamics_E2.gamma = p.soma_ca_gamma
        self.soma(0.5).CaDynamics_E2.decay = p.soma_ca_decay_ms
        self.soma.ek = p.ek_mV
        self.soma.ena = p.ena_mV

        # segment table in channel order
        origin = self.soma(0.5)
        rows, self._segment_objects, groups = [], [], []
        names = {id(s): n for s, n in [(s, f"dend[{i}]") for i, s in enumerate(self.dend)]
                 + [(s, f"apic[{i}]") for i, s in enumerate(self.apic)]}
        self.branch_names = list(dict.fromkeys(g for _, _, g in layout))
        for index, (sec, region, group) in enumerate(layout):
            for seg in sec:
                rows.append((names[id(sec)], index, seg.x, sec.L / sec.nseg, h.distance(origin, seg), seg.diam,
                             region))
                self._segment_objects.append(seg)
                groups.append(self.branch_names.index(group))
        cols = list(zip(*rows))
        self.segments = SegmentTable(
            section_name=np.array(cols[0]), section_index=np.array(cols[1], dtype=np.int32),
            x=np.array(cols[2]), length_um=np.array(cols[3]), path_distance_um=np.array(cols[4]),
            diam_um=np.array(cols[5]), region=np.array(cols[6]))
        self.branch_of_segment = np.array(groups, dtype=np.int32)
        self._layout = layout

    def input_trees(self, grouping: str | None = None) -> dict:
        """Input groups for :func:`~neurodepth_lib.inputs.tree_input_settings`: ``{name: (segments,
        adjusted_lengths_um)}``, per branch subtree (default) or per tree (``grouping="trees"``)."""
        grouping = self.params.input_grouping if grouping is None else grouping
        adjusted = self.segments.length_um + 10.0
        if grouping == "trees":
            masks = {"basal": self.segments.is_basal, "apical": self.segments.is_apical}
        elif grouping == "branches":
            masks = {name: self.branch_of_segment == k for k, name in enumerate(self.branch_names)}
        else:
            raise ValueError(f"grouping must be 'branches' or 'trees', got {grouping!r}")
        return {name: (np.flatnonzero(m), adjusted[np.flatnonzero(m)]) for name, m in masks.items()}

    def rate_ranges(self, condition: str | None = None, grouping: str | None = None) -> dict:
        """The paper's coarse rate ranges for ``condition``, rescaled to each group's adjusted length.

        A group in the basal (apical) tree gets the Hay basal (apical) tree's range times
        ``rate_scale x adjusted length of the group / adjusted length of the Hay tree``: the same input per um
        of dendrite as in the paper, times ``rate_scale`` (and ``ampa_rate_scale`` in condition AMPA, as the
        paper raised its AMPA ranges to keep the firing comparable).
        """
        condition = self.condition if condition is None else condition
        _check_condition(condition)
        ampa = self.params.ampa_rate_scale if condition == "AMPA" else 1.0
        return {name: hay_rates_for_tree(condition, float(adjusted.sum()),
                                         like="basal" if self.segments.is_basal[seg[0]] else "apical",
                                         factor=self.params.rate_scale, condition_factor=ampa)
                for name, (seg, adjusted) in self.input_trees(grouping).items()}

    def morphology_points(self) -> list:
        """``[(section_name, region, xyz (n, 3) um, diam (n,) um), ...]`` for drawing (a 2-D layout)."""
        self._check_alive()
        h.define_shape()
        region_of = {name: self.segments.region[k] for k, name in enumerate(self.segments.section_name)}
        out = []
        named = [("soma[0]", self.soma)] + [(f"dend[{i}]", s) for i, s in enumerate(self.dend)] + \
            [(f"apic[{i}]", s) for i, s in enumerate(self.apic)]
        for name, sec in named:
            n = int(sec.n3d())
            xyz = np.array([[sec.x3d(i), sec.y3d(i), sec.z3d(i)] for i in range(n)]).reshape(n, 3)
            out.append((name, region_of.get(name, "soma"), xyz, np.array([sec.diam3d(i) for i in range(n)])))
        return out
