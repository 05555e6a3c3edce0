COMMENT
Ca_HVA: high-voltage-activated calcium current (Reuveni et al. 1993), as used in Hay et al. (2011).
Written for neurodepth from science/paper_facts.md section 4.3. No temperature factor.

    i = gbar * m^2 * h * (v - eca)     (eca from the Nernst equation, cai dynamic)
    alpha_m = 0.055 (-27-v) / (exp((-27-v)/3.8) - 1),  beta_m = 0.94 exp((-75-v)/17)
    alpha_h = 0.000457 exp((-13-v)/50),                beta_h = 0.0065 / (exp((-v-15)/28) + 1)
    x_inf = alpha/(alpha+beta),  tau_x = 1/(alpha+beta)

The singular voltage v = -27 mV is nudged by +1e-4 mV.
ENDCOMMENT

NEURON {
    SUFFIX Ca_HVA
    USEION ca READ eca WRITE ica
    RANGE gbar, g
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 0.00001 (S/cm2)
}

ASSIGNED {
    v (mV)
    eca (mV)
    ica (mA/cm2)
    g (S/cm2)
    mInf
    mTau (ms)
    hInf
    hTau (ms)
}

STATE {
    m
    h
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*m*m*h
    ica = g*(v - eca)
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m)/mTau
    h' = (hInf - h)/hTau
}

INITIAL {
    rates(v)
    m = mInf
    h = hInf
}

UNITSOFF
PROCEDURE rates(vm) {
    LOCAL vv, a, b
    vv = vm
    if (vv == -27) { vv = vv + 0.0001 }
    a = 0.055*(-27 - vv)/(exp((-27 - vv)/3.8) - 1)
    b = 0.94*exp((-75 - vv)/17)
    mInf = a/(a + b)
    mTau = 1/(a + b)

    a = 0.000457*exp((-13 - vm)/50)
    b = 0.0065/(exp((-vm - 15)/28) + 1)
    hInf = a/(a + b)
    hTau = 1/(a + b)
}
UNITSON
