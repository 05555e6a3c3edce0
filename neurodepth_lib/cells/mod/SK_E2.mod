COMMENT
SK_E2: small-conductance calcium-activated potassium current (Koehler et al. 1996), as used in
Hay et al. (2011). Written for neurodepth from science/paper_facts.md section 4.3.

    i = gbar * z * (v - ek)
    z_inf = 1 / (1 + (0.00043 mM / cai)^4.8),   tau_z = 1 ms
    (1e-7 mM is added to cai when cai < 1e-7 mM, so that z_inf stays defined at cai = 0.)
ENDCOMMENT

NEURON {
    SUFFIX SK_E2
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gbar, g
    RANGE zInf
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
    (mM) = (milli/liter)
}

PARAMETER {
    gbar = 0.000001 (S/cm2)
    zTau = 1 (ms)
}

ASSIGNED {
    v (mV)
    ek (mV)
    ik (mA/cm2)
    cai (mM)
    g (S/cm2)
    zInf
}

STATE {
    z
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*z
    ik = g*(v - ek)
}

DERIVATIVE states {
    rates(cai)
    z' = (zInf - z)/zTau
}

INITIAL {
    rates(cai)
    z = zInf
}

UNITSOFF
PROCEDURE rates(ca) {
    LOCAL c
    c = ca
    if (c < 1e-7) { c = c + 1e-7 }
    zInf = 1/(1 + (0.00043/c)^4.8)
}
UNITSON
