"""The Hay et al. (2011) layer-5b pyramidal cell as used by Beniaguev, Segev & London (2021).

Morphology ``cell1`` (vendored, see ``morphologies/ATTRIBUTION.md``), the ``L5PCbiophys5b`` channel
densities (science/paper_facts.md section 4.2), our own mechanisms (``mod/``: the libraries ``"synapses"`` and
``"hay_channels"``, loaded when the cell is built) and one excitatory plus one
inhibitory synapse on every dendritic segment:

* 639 dendritic segments, basal sections first, then apical sections, increasing x within a section;
* input channels ``0..638`` are the excitatory synapses on those segments, ``639..1277`` the inhibitory ones;
* conditions ``"NMDA"`` (AMPA+NMDA synapses), ``"AMPA"`` (AMPA only) and ``"AMPA_SK"`` (AMPA only, SK_E2
  x 0.1 in soma, axon and apical tree).

Example
-------
>>> from neurodepth_lib.cells import L5PC
>>> cell = L5PC("NMDA")
>>> cell.segments.path_distance_um[:3]        # doctest: +SKIP
>>> print(cell.params)                          # every default, with units

Only one L5PC lives in a process at a time: building a new one destroys the previous one (its sections,
synapses and NetCons are deleted), because NEURON simulates every section that exists and a forgotten cell
would silently double the cost of each trial.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from . import synapses
from .morphology import DEFAULT_MORPHOLOGY, READERS, load_morphology
from .synaptic_cell import SynapticCell
from .mechanisms import HAY_CHANNELS, SYNAPSES, import_neuron

h = import_neuron()  # NEURON, imported away from a stray x86_64/ in the working directory

__all__ = ["CONDITIONS", "L5PC", "L5PCParams", "SegmentTable"]

CONDITIONS = ("NMDA", "AMPA", "AMPA_SK")
REGIONS = ("basal", "oblique", "tuft")


@dataclass(frozen=True)
class L5PCParams(synapses.SynapseParams):
    """Every number that defines the cell (defaults: Hay cell1 with ``L5PCbiophys5b``).

    Densities are in S/cm2, written as ``((mechanism, gbar), ...)`` per region; every channel mechanism
    names its peak conductance density ``gbar``. The apical Ih and Ca_LVAst densities depend on the path
    distance d from the soma and are given by their own fields.
    """

    # --- geometry ---------------------------------------------------------------------------------
    morphology: str = str(DEFAULT_MORPHOLOGY)
    axon_n_sections: int = 2            # the reconstructed axon is replaced by this many sections
    axon_length_um: float = 30.0        # ... each this long
    axon_diam_um: float = 1.0
    nseg_per_um: float = 1 / 40         # nseg = 1 + 2 * int(L * nseg_per_um)

    # --- passive properties -------------------------------------------------------------------------
    Ra_ohm_cm: float = 100.0
    cm_uF_cm2: float = 1.0              # soma and axon
    cm_dend_uF_cm2: float = 2.0         # basal and apical dendrites (spine correction)
    e_pas_mV: float = -90.0
    g_pas_soma_S_cm2: float = 3e-5
    g_pas_axon_S_cm2: float = 3e-5
    g_pas_basal_S_cm2: float = 6e-5
    g_pas_apical_S_cm2: float = 6e-5
    ek_mV: float = -85.0
    ena_mV: float = 50.0
    # No channel reads the temperature (their Q10 factors are fixed at 34 degC); celsius only enters the
    # Nernst potential of calcium. The paper's script never set it, so NEURON's default 6.3 applies.
    celsius_degC: float = 6.3

    # --- channel densities (S/cm2) --------------------------------------------------------------------
    soma_channels_S_cm2: tuple = (
        ("NaTs2_t", 0.998912), ("SKv3_1", 0.338029), ("SK_E2", 0.09965), ("Ca_HVA", 6.44e-4),
        ("Ca_LVAst", 5.57e-4), ("Im", 8e-6), ("Ih", 7.5e-5))
    axon_channels_S_cm2: tuple = (
        ("NaTa_t", 3.89618), ("Nap_Et2", 0.005834), ("K_Tst", 0.077274), ("K_Pst", 0.188851),
        ("SKv3_1", 0.473799), ("SK_E2", 4.7e-5), ("Ca_HVA", 2.22e-4), ("Ca_LVAst", 8.13e-4),
        ("Im", 0.013322), ("Ih", 5e-5))
    apical_channels_S_cm2: tuple = (
        ("NaTs2_t", 0.021489), ("SKv3_1", 0.001808), ("SK_E2", 2e-6), ("Ca_HVA", 7.01e-4), ("Im", 9.9e-4))
    basal_channels_S_cm2: tuple = (("Ih", 5e-5),)
    # calcium shell (CaDynamics_E2): free fraction gamma and decay time constant per region
    soma_ca_gamma: float = 0.000509
    soma_ca_decay_ms: float = 294.7
    axon_ca_gamma: float = 0.000525
    axon_ca_decay_ms: float = 277.3
    apical_ca_gamma: float = 0.000637
    apical_ca_decay_ms: float = 35.7

    # apical Ih: gbar(d) = base * (a + b * exp(k * min(d / d_max, cap))), d_max = the longest apical path
    ih_apical_base_S_cm2: float = 1e-4
    ih_apical_profile_abk: tuple = (-0.8696, 2.0870, 3.6161)
    ih_apical_x_cap: float = 0.65
    ih_vshift_mV: float = 0.0
    # apical Ca_LVAst: base * in_factor inside the hot zone (strictly between the limits), base * out_factor elsewhere
    ca_lva_apical_base_S_cm2: float = 0.141954
    ca_lva_hot_zone_um: tuple = (685.0, 885.0)
    ca_lva_hot_zone_factor: float = 1.6
    ca_lva_outside_factor: float = 0.016
    # How the distance-dependent densities are evaluated. The reference model measures path distances
    # from the soma centre and assigns each section's last segment the value at the section's far end
    # (hoc's for(x) loop writes x = 1 last); both choices are reproduced here. See _distribution_distances.
    distribution_origin_soma_x: float = 0.5
    distribution_last_segment_at_end: bool = True

    # --- conditions -----------------------------------------------------------------------------------
    ampa_sk_sk_factor: float = 0.1      # AMPA_SK: SK_E2 in soma, axon and apical tree times this

    # --- synapses: the fields of SynapseParams (paper_facts 1.2) -----------------------------------------

    # --- landmarks of cell1 (indices into the apical section list) ----------------------------------------
    nexus_apic_index: int = 50          # the "nexus" recording site: apic[50](0.9), about 678 um from the soma
    nexus_x: float = 0.9
    tuft_root_apic_index: int = 36      # the tuft is the subtree rooted here; other apical sections are "oblique"

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"L5PCParams.{f.name} must be finite, got {value}")
        for name in ("axon_length_um", "axon_diam_um", "nseg_per_um", "Ra_ohm_cm", "cm_uF_cm2",
                     "cm_dend_uF_cm2"):
            if getattr(self, name) <= 0:
                raise ValueError(f"L5PCParams.{name} must be positive, got {getattr(self, name)}")
        if self.axon_n_sections < 1:
            raise ValueError(f"L5PCParams.axon_n_sections must be >= 1, got {self.axon_n_sections}")
        for prefix in ("ampa", "nmda", "gaba"):
            tr, td = getattr(self, f"{prefix}_tau_rise_ms"), getattr(self, f"{prefix}_tau_decay_ms")
            if not 0 < tr < td:
                raise ValueError(f"L5PCParams: {prefix} needs 0 < tau_rise < tau_decay, got {tr}, {td}")
        lo, hi = self.ca_lva_hot_zone_um
        if not lo < hi:
            raise ValueError(f"L5PCParams.ca_lva_hot_zone_um must be (low, high), got {self.ca_lva_hot_zone_um}")
        suffix = Path(self.morphology).suffix.lower()
        if suffix not in READERS:
            raise ValueError(f"L5PCParams.morphology {self.morphology!r}: unknown extension {suffix!r}; "
                             f"supported: {', '.join(sorted(READERS))}")
        if not 0 <= self.distribution_origin_soma_x <= 1 or not 0 <= self.nexus_x <= 1:
            raise ValueError("L5PCParams: distribution_origin_soma_x and nexus_x must lie in [0, 1]")


@dataclass(frozen=True, eq=False)
class SegmentTable:
    """The dendritic segments, one row per input site, in input-channel order (basal, then apical).

    All arrays have shape ``(n_segments,)``. ``path_distance_um`` is NEURON's path distance from soma(0.5)
    to the segment centre; ``length_um`` is ``L / nseg`` of its section.
    """

    section_name: np.ndarray      # str, e.g. "dend[0]", "apic[50]"
    section_index: np.ndarray     # int, index in the basal-then-apical section list (0..n_sections-1)
    x: np.ndarray                 # segment centre along its section, in (0, 1)
    length_um: np.ndarray
    path_distance_um: np.ndarray
    diam_um: np.ndarray
    region: np.ndarray            # str: "basal", "oblique" or "tuft"

    def __len__(self) -> int:
        return int(self.x.size)

    @property
    def is_basal(self) -> np.ndarray:
        return self.region == "basal"

    @property
    def is_apical(self) -> np.ndarray:
        return self.region != "basal"

    def indices(self, region: str) -> np.ndarray:
        """Segment indices whose region is ``region`` (``basal``, ``oblique``, ``tuft`` or ``apical``)."""
        if region == "apical":
            return np.flatnonzero(self.is_apical)
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; choose one of {', '.join(REGIONS)} or 'apical'")
        return np.flatnonzero(self.region == region)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}



class L5PC(SynapticCell):
    """The Hay L5PC with 1,278 deterministic synapses, ready for :func:`neurodepth_lib.cells.simulation.simulate_trial`.

    Parameters
    ----------
    condition : {"NMDA", "AMPA", "AMPA_SK"}
        Synapse type and SK_E2 scaling (science/paper_facts.md section 1.7); change later with
        :meth:`set_condition`.
    params : L5PCParams, optional
        Defaults reproduce the paper's cell.

    Attributes
    ----------
    soma, axon, dend, apic : sections (``dend`` are the basal dendrites)
    segments : SegmentTable, the 639 input sites in channel order
    synapses : list of 1,278 point processes (excitatory 0..638, then inhibitory)
    netcons : list of 1,278 ``NetCon(None, synapse)`` with weight 1 and delay 0
    n_segments, n_inputs : 639 and 1,278 for cell1
    """

    conditions = CONDITIONS  # the names set_condition accepts
    params_class = L5PCParams
    # our Hay channels and the paper's synapses, loaded in this order: NEURON sums the currents of a compartment
    # in the order the mechanism types were loaded, and this is the order of the single library of the past
    # (the channels' files sort before the synapses'), so voltages stay equal to the last bit
    mechanisms = (HAY_CHANNELS, SYNAPSES)

    def _check_params(self, params) -> None:
        if not Path(params.morphology).is_file():
            raise ValueError(f"morphology file {params.morphology!r} does not exist")

    def _build(self) -> None:
        self._build_sections()
        self._set_biophysics()
        self._build_segment_table()

    def _repr_extra(self) -> str:
        return f", morphology={Path(self.params.morphology).name!r}"



    # ----------------------------------------------------------------------------------------------------
    # construction
    # ----------------------------------------------------------------------------------------------------
    def _build_sections(self):
        p = self.params
        lists = load_morphology(p.morphology, self)
        if len(lists["soma"]) != 1:
            raise ValueError(f"expected one soma section, got {len(lists['soma'])} in {p.morphology}")
        for sec in lists["axon"]:
            h.delete_section(sec=sec)
        self.soma = lists["soma"][0]
        self.dend = lists["dend"]
        self.apic = lists["apic"]
        if not self.apic:
            raise ValueError(f"morphology {p.morphology} has no apical dendrite")
        self.axon = []
        parent = self.soma(0.5)
        for i in range(p.axon_n_sections):
            sec = h.Section(name=f"axon[{i}]", cell=self)
            sec.L = p.axon_length_um
            sec.diam = p.axon_diam_um
            sec.connect(parent)
            parent = sec(1)
            self.axon.append(sec)
        self.all = [self.soma, *self.dend, *self.apic, *self.axon]
        for sec in self.all:
            sec.nseg = 1 + 2 * int(sec.L * p.nseg_per_um)
        self.nexus = self.apic[p.nexus_apic_index](p.nexus_x)

    def _distribution_distances(self, sections) -> tuple[np.ndarray, list]:
        """Path distances used for distance-dependent densities, one per segment of ``sections``.

        The reference model's hoc code evaluates each density at every point of ``for (x)``, i.e. x = 0,
        the segment centres and x = 1, writing them in that order; the value written at x = 1 lands in the
        last segment. ``distribution_last_segment_at_end`` reproduces that; set it False for the
        segment-centre rule.
        """
        p = self.params
        origin = self.soma(p.distribution_origin_soma_x)
        dist, segs = [], []
        for sec in sections:
            sec_segs = list(sec)
            for k, seg in enumerate(sec_segs):
                at = sec(1.0) if (p.distribution_last_segment_at_end and k == len(sec_segs) - 1) else seg
                dist.append(h.distance(origin, at))
                segs.append(seg)
        return np.asarray(dist), segs

    def longest_apical_path_um(self) -> float:
        """Path distance from the distribution origin to the farthest tip of the apical tree."""
        origin = self.soma(self.params.distribution_origin_soma_x)
        tips = [sec for sec in self.apic if len(sec.children()) == 0]
        return max(h.distance(origin, sec(1.0)) for sec in tips)

    def ih_apical_gbar(self, distance_um) -> np.ndarray:
        """Apical Ih density (S/cm2) at path distance ``distance_um`` (the type-4 profile)."""
        p = self.params
        a, b, k = p.ih_apical_profile_abk
        xrel = np.minimum(np.asarray(distance_um, float) / self._longest_apical_um, p.ih_apical_x_cap)
        return p.ih_apical_base_S_cm2 * (a + b * np.exp(k * xrel))

    def ca_lva_apical_gbar(self, distance_um) -> np.ndarray:
        """Apical Ca_LVAst density (S/cm2) at path distance ``distance_um`` (the hot zone)."""
        p = self.params
        d = np.asarray(distance_um, float)
        lo, hi = p.ca_lva_hot_zone_um
        inside = (d > lo) & (d < hi)
        return p.ca_lva_apical_base_S_cm2 * np.where(inside, p.ca_lva_hot_zone_factor, p.ca_lva_outside_factor)

    def _set_biophysics(self):
        p = self.params
        h.celsius = p.celsius_degC
        regions = (
            ([self.soma], p.cm_uF_cm2, p.g_pas_soma_S_cm2, p.soma_channels_S_cm2,
             (p.soma_ca_gamma, p.soma_ca_decay_ms)),
            (self.axon, p.cm_uF_cm2, p.g_pas_axon_S_cm2, p.axon_channels_S_cm2,
             (p.axon_ca_gamma, p.axon_ca_decay_ms)),
            (self.dend, p.cm_dend_uF_cm2, p.g_pas_basal_S_cm2, p.basal_channels_S_cm2, None),
            (self.apic, p.cm_dend_uF_cm2, p.g_pas_apical_S_cm2,
             p.apical_channels_S_cm2 + (("Ih", None), ("Ca_LVAst", None)),
             (p.apical_ca_gamma, p.apical_ca_decay_ms)),
        )
        for sections, cm, g_pas, channels, ca_dyn in regions:
            for sec in sections:
                sec.Ra = p.Ra_ohm_cm
                sec.cm = cm
                sec.insert("pas")
                for mech, _ in channels:
                    sec.insert(mech)
                if ca_dyn is not None:
                    sec.insert("CaDynamics_E2")
                for seg in sec:
                    seg.pas.g = g_pas
                    seg.pas.e = p.e_pas_mV
                    for mech, gbar in channels:
                        if gbar is not None:
                            getattr(seg, mech).gbar = gbar
                    if ca_dyn is not None:
                        seg.CaDynamics_E2.gamma, seg.CaDynamics_E2.decay = ca_dyn
                    if h.ismembrane("Ih", sec=sec):
                        seg.Ih.vshift = p.ih_vshift_mV
                if h.ismembrane("k_ion", sec=sec):
                    sec.ek = p.ek_mV
                if h.ismembrane("na_ion", sec=sec):
                    sec.ena = p.ena_mV
        # distance-dependent apical densities
        self._longest_apical_um = self.longest_apical_path_um()
        dist, segs = self._distribution_distances(self.apic)
        for seg, g_ih, g_ca in zip(segs, self.ih_apical_gbar(dist), self.ca_lva_apical_gbar(dist)):
            seg.Ih.gbar = float(g_ih)
            seg.Ca_LVAst.gbar = float(g_ca)
        # the SK_E2 densities before any condition scales them
        self._sk_base = [(seg, seg.SK_E2.gbar) for sec in [self.soma, *self.axon, *self.apic]
                         if h.ismembrane("SK_E2", sec=sec) for seg in sec]

    def _build_segment_table(self):
        p = self.params
        tuft = set()
        stack = [self.apic[p.tuft_root_apic_index]]
        while stack:
            sec = stack.pop()
            tuft.add(sec)
            stack.extend(sec.children())
        origin = self.soma(0.5)
        rows = []
        self._segment_objects = []
        for index, (kind, sec) in enumerate([("dend", s) for s in self.dend] + [("apic", s) for s in self.apic]):
            local = (self.dend if kind == "dend" else self.apic).index(sec)
            region = "basal" if kind == "dend" else ("tuft" if sec in tuft else "oblique")
            for seg in sec:
                rows.append((f"{kind}[{local}]", index, seg.x, sec.L / sec.nseg, h.distance(origin, seg),
                             seg.diam, region))
                self._segment_objects.append(seg)
        cols = list(zip(*rows))
        self.segments = SegmentTable(
            section_name=np.array(cols[0]), section_index=np.array(cols[1], dtype=np.int32),
            x=np.array(cols[2]), length_um=np.array(cols[3]), path_distance_um=np.array(cols[4]),
            diam_um=np.array(cols[5]), region=np.array(cols[6]))

    def _after_synapses(self, condition) -> None:
        """SK_E2 scaled by ``ampa_sk_sk_factor`` in condition ``AMPA_SK``, restored otherwise."""
        factor = self.params.ampa_sk_sk_factor if condition == "AMPA_SK" else 1.0
        for seg, gbar in self._sk_base:
            seg.SK_E2.gbar = gbar * factor


    def _forget(self) -> None:
        self._sk_base = []

    def input_trees(self) -> dict:
        """The paper's input groups: ``{"basal": (segment_indices, adjusted_lengths_um), "apical": (...)}``.

        Adjusted length = segment length + 10 um (science/paper_facts.md 1.3); excitatory channel ``k`` is
        segment ``k`` and inhibitory channel ``n_segments + k`` the inhibitory synapse on it. This is the
        ``trees`` argument of :func:`neurodepth_lib.inputs.tree_input_settings`.
        """
        adjusted = self.segments.length_um + 10.0
        out = {}
        for name, mask in (("basal", self.segments.is_basal), ("apical", self.segments.is_apical)):
            idx = np.flatnonzero(mask)
            out[name] = (idx, adjusted[idx])
        return out

    def channel_densities(self) -> dict:
        """Peak conductance densities (S/cm2) of every mechanism on every dendritic segment, plus the soma.

        Returns ``{mechanism: array (n_segments,)}`` in segment order (0 where a mechanism is absent), and
        ``"soma"``: ``{mechanism: value}``.
        """
        self._check_alive()
        mechs = sorted({m for m, _ in self.params.soma_channels_S_cm2 + self.params.axon_channels_S_cm2
                        + self.params.apical_channels_S_cm2 + self.params.basal_channels_S_cm2}
                       | {"Ih", "Ca_LVAst"})
        out = {m: np.zeros(self.n_segments) for m in mechs}
        for k, seg in enumerate(self._segment_objects):
            for m in mechs:
                if h.ismembrane(m, sec=seg.sec):
                    out[m][k] = getattr(seg, m).gbar
        out["soma"] = {m: getattr(self.soma(0.5), m).gbar for m in mechs if h.ismembrane(m, sec=self.soma)}
        return out

    def morphology_points(self) -> list:
        """3-D points of every section: a list of ``(section_name, region, xyz (n, 3) um, diam (n,) um)``.

        ``region`` is ``soma``, ``axon``, ``basal``, ``oblique`` or ``tuft``. For drawing the cell.
        """
        self._check_alive()
        region_of = {}
        for k, name in enumerate(self.segments.section_name):
            region_of[name] = self.segments.region[k]
        out = []
        named = ([("soma[0]", self.soma)] + [(f"dend[{i}]", s) for i, s in enumerate(self.dend)]
                 + [(f"apic[{i}]", s) for i, s in enumerate(self.apic)])
        for name, sec in named:
            n = int(sec.n3d())
            xyz = np.array([[sec.x3d(i), sec.y3d(i), sec.z3d(i)] for i in range(n)]).reshape(n, 3)
            diam = np.array([sec.diam3d(i) for i in range(n)])
            out.append((name, region_of.get(name, "soma"), xyz, diam))
        return out

    def location_xyz_um(self, seg) -> np.ndarray:
        """3-D position (um) of a segment or any ``section(x)`` location, interpolated along its section."""
        self._check_alive()
        sec = seg.sec
        n = int(sec.n3d())
        arc = np.array([sec.arc3d(i) for i in range(n)])
        xyz = np.array([[sec.x3d(i), sec.y3d(i), sec.z3d(i)] for i in range(n)])
        return np.array([np.interp(seg.x * sec.L, arc, xyz[:, j]) for j in range(3)])
