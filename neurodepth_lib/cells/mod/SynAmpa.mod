COMMENT
SynAmpa: deterministic AMPA-only excitatory synapse (the paper's AMPA condition) (neurodepth).
Kinetics from science/paper_facts.md section 1.2: one difference of exponentials normalised so that a
single event of weight w peaks at w * gmax,

    g(t) = gmax * sum_k w_k * f * (exp(-(t-t_k)/tau_d) - exp(-(t-t_k)/tau_r)),   i = g (v - e)
    f = 1 / (exp(-t_peak/tau_d) - exp(-t_peak/tau_r)),  t_peak = tau_r tau_d / (tau_d - tau_r) ln(tau_d/tau_r)

Defaults: tau_r 0.3 ms, tau_d 3 ms, gmax 0.0004 uS, e 0 mV. Every event is transmitted (release
probability 1); there is no state an event at t = 0 could poison. Requires tau_r < tau_d.
ENDCOMMENT

NEURON {
    POINT_PROCESS SynAmpa
    RANGE tau_r, tau_d, gmax, e, g, factor
    NONSPECIFIC_CURRENT i
}

UNITS {
    (nA) = (nanoamp)
    (mV) = (millivolt)
    (uS) = (microsiemens)
}

PARAMETER {
    tau_r = 0.3 (ms)
    tau_d = 3 (ms)
    gmax = 0.0004 (uS)
    e = 0 (mV)
}

ASSIGNED {
    v (mV)
    i (nA)
    g (uS)
    factor
}

STATE {
    A
    B
}

INITIAL {
    A = 0
    B = 0
    factor = peak_factor(tau_r, tau_d)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gmax*(B - A)
    i = g*(v - e)
}

DERIVATIVE states {
    A' = -A/tau_r
    B' = -B/tau_d
}

UNITSOFF
FUNCTION peak_factor(tr, td) {
    LOCAL tp
    tp = (tr*td)/(td - tr)*log(td/tr)
    peak_factor = 1/(exp(-tp/td) - exp(-tp/tr))
}
UNITSON

NET_RECEIVE (weight) {
    A = A + weight*factor
    B = B + weight*factor
}
