"""The paper's deterministic synapses, built the same way on every cell (paper_facts 1.2).

``params`` is a :class:`SynapseParams` (the L5PC's and the teaching cell's parameter classes extend it).
Each synapse receives its input through a ``NetCon(None, syn)`` with weight 1 and delay 0.
"""
from __future__ import annotations

from dataclasses import dataclass

from .mechanisms import import_neuron

h = import_neuron()  # NEURON, imported away from a stray x86_64/ in the working directory


@dataclass(frozen=True)
class SynapseParams:
    """Kinetics of the paper's synapses (paper_facts 1.2): AMPA and NMDA difference-of-exponentials, each
    normalised to peak ``gmax``; Mg block ``1 / (1 + exp(-mg_slope * v) * mg / mg_scale)``; GABA_A."""

    ampa_tau_rise_ms: float = 0.3
    ampa_tau_decay_ms: float = 3.0
    nmda_tau_rise_ms: float = 2.0
    nmda_tau_decay_ms: float = 70.0
    ampa_gmax_uS: float = 0.0004
    nmda_gmax_uS: float = 0.0004
    exc_e_rev_mV: float = 0.0
    mg_mM: float = 1.0
    mg_slope_per_mV: float = 0.08
    mg_scale_mM: float = 3.57
    gaba_tau_rise_ms: float = 0.2
    gaba_tau_decay_ms: float = 8.0
    gaba_gmax_uS: float = 0.001
    gaba_e_rev_mV: float = -80.0


def make_excitatory(seg, condition: str, params):
    """An AMPA+NMDA synapse (``condition == "NMDA"``) or an AMPA-only synapse on ``seg``."""
    p = params
    if condition == "NMDA":
        syn = h.SynAmpaNmda(seg)
        syn.tau_r_AMPA, syn.tau_d_AMPA = p.ampa_tau_rise_ms, p.ampa_tau_decay_ms
        syn.tau_r_NMDA, syn.tau_d_NMDA = p.nmda_tau_rise_ms, p.nmda_tau_decay_ms
        syn.gmax_AMPA, syn.gmax_NMDA = p.ampa_gmax_uS, p.nmda_gmax_uS
        syn.mg, syn.mg_slope, syn.mg_scale = p.mg_mM, p.mg_slope_per_mV, p.mg_scale_mM
    else:
        syn = h.SynAmpa(seg)
        syn.tau_r, syn.tau_d, syn.gmax = p.ampa_tau_rise_ms, p.ampa_tau_decay_ms, p.ampa_gmax_uS
    syn.e = p.exc_e_rev_mV
    return syn


def make_inhibitory(seg, params):
    """A GABA_A synapse on ``seg``."""
    p = params
    syn = h.SynGabaA(seg)
    syn.tau_r, syn.tau_d, syn.gmax, syn.e = (p.gaba_tau_rise_ms, p.gaba_tau_decay_ms, p.gaba_gmax_uS,
                                             p.gaba_e_rev_mV)
    return syn


def connect(syn):
    """The NetCon through which input events reach ``syn`` (weight 1, delay 0)."""
    nc = h.NetCon(None, syn)
    nc.weight[0] = 1.0
    nc.delay = 0.0
    return nc
