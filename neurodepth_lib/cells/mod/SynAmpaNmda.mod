COMMENT
SynAmpaNmda: deterministic excitatory synapse with an AMPA and an NMDA component (neurodepth).
Kinetics from science/paper_facts.md section 1.2 (the synapse of Beniaguev, Segev & London 2021):

    g_AMPA(t) = gmax_AMPA * sum_k w_k * f_AMPA * (exp(-(t-t_k)/tau_d_AMPA) - exp(-(t-t_k)/tau_r_AMPA))
    g_NMDA(t) = same with the NMDA time constants, times the Mg block
    B(v)      = 1 / (1 + exp(-mg_slope v) * mg / mg_scale)     (Jahr & Stevens form; 0.08 /mV, 3.57 mM)
    i         = g_AMPA (v - e) + g_NMDA B(v) (v - e)

f = 1 / (exp(-t_peak/tau_d) - exp(-t_peak/tau_r)) with t_peak = tau_r tau_d / (tau_d - tau_r) ln(tau_d/tau_r),
so one event of weight w peaks at w * gmax. Each difference of exponentials is kept as two decaying
states (B - A). Every event is transmitted (release probability 1) and the model has no state that an
event at t = 0 could poison: events simply add to A and B, whenever they arrive.
Requires tau_r < tau_d for each component.
ENDCOMMENT

NEURON {
    POINT_PROCESS SynAmpaNmda
    RANGE tau_r_AMPA, tau_d_AMPA, tau_r_NMDA, tau_d_NMDA
    RANGE gmax_AMPA, gmax_NMDA, e, mg, mg_slope, mg_scale
    RANGE g_AMPA, g_NMDA, i_AMPA, i_NMDA, mggate, factor_AMPA, factor_NMDA
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
    (mM) = (milli/liter)
}

PARAMETER {
    tau_r_AMPA = 0.3 (ms)
    tau_d_AMPA = 3 (ms)
    tau_r_NMDA = 2 (ms)
    tau_d_NMDA = 70 (ms)
    gmax_AMPA = 0.0004 (uS)
    gmax_NMDA = 0.0004 (uS)
    e = 0 (mV)
    mg = 1 (mM)
    mg_slope = 0.08 (/mV)
    mg_scale = 3.57 (mM)
}

ASSIGNED {
    v (mV)
    i (nA)
    i_AMPA (nA)
    i_NMDA (nA)
    g_AMPA (uS)
    g_NMDA (uS)
    mggate
    factor_AMPA
    factor_NMDA
}

STATE {
    A_AMPA
    B_AMPA
    A_NMDA
    B_NMDA
}

INITIAL {
    A_AMPA = 0
    B_AMPA = 0
    A_NMDA = 0
    B_NMDA = 0
    factor_AMPA = peak_factor(tau_r_AMPA, tau_d_AMPA)
    factor_NMDA = peak_factor(tau_r_NMDA, tau_d_NMDA)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    mggate = 1/(1 + exp(-mg_slope*v)*(mg/mg_scale))
    g_AMPA = gmax_AMPA*(B_AMPA - A_AMPA)
    g_NMDA = gmax_NMDA*(B_NMDA - A_NMDA)*mggate
    i_AMPA = g_AMPA*(v - e)
    i_NMDA = g_NMDA*(v - e)
    i = i_AMPA + i_NMDA
}

DERIVATIVE states {
    A_AMPA' = -A_AMPA/tau_r_AMPA
    B_AMPA' = -B_AMPA/tau_d_AMPA
    A_NMDA' = -A_NMDA/tau_r_NMDA
    B_NMDA' = -B_NMDA/tau_d_NMDA
}

UNITSOFF
FUNCTION peak_factor(tr, td) {
    LOCAL tp
    tp = (tr*td)/(td - tr)*log(td/tr)
    peak_factor = 1/(exp(-tp/td) - exp(-tp/tr))
}
UNITSON

NET_RECEIVE (weight) {
    A_AMPA = A_AMPA + weight*factor_AMPA
    B_AMPA = B_AMPA + weight*factor_AMPA
    A_NMDA = A_NMDA + weight*factor_NMDA
    B_NMDA = B_NMDA + weight*factor_NMDA
}
