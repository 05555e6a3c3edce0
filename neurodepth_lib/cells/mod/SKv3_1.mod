COMMENT
SKv3_1: fast non-inactivating Kv3.1 potassium current (Rettig et al. 1992), as used in Hay et al. (2011).
Written for neurodepth from science/paper_facts.md section 4.3. No temperature factor.

    i = gbar * m * (v - ek)
    m_inf = 1 / (1 + exp((v - 18.7)/(-9.7))),   tau_m = 4 / (1 + exp((v + 46.56)/(-44.14)))
ENDCOMMENT

NEURON {
    SUFFIX SKv3_1
    USEION k READ ek WRITE ik
    RANGE gbar, g
    RANGE mInf, mTau
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
    ek (mV)
    ik (mA/cm2)
    g (S/cm2)
    mInf
    mTau (ms)
}

STATE {
    m
}

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*m
    ik = g*(v - ek)
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m)/mTau
}

INITIAL {
    rates(v)
    m = mInf
}

UNITSOFF
PROCEDURE rates(vm) {
    mInf = 1/(1 + exp((vm - 18.7)/(-9.7)))
    mTau = 4/(1 + exp((vm + 46.56)/(-44.14)))
}
UNITSON
