COMMENT
Im: muscarinic (M-type) potassium current (Adams et al. 1982), as used in Hay et al. (2011).
Written for neurodepth from science/paper_facts.md section 4.3.

    i = gbar * m * (v - ek)
    alpha = 3.3e-3 exp(0.1 (v+35)),  beta = 3.3e-3 exp(-0.1 (v+35))
    m_inf = alpha/(alpha+beta),  tau_m = 1/((alpha+beta) qt),  qt = 2.3^((34-21)/10)
ENDCOMMENT

NEURON {
    SUFFIX Im
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
    LOCAL qt, a, b
    qt = 2.3^((34 - 21)/10)
    a = 3.3e-3*exp(0.1*(vm + 35))
    b = 3.3e-3*exp(-0.1*(vm + 35))
    mInf = a/(a + b)
    mTau = 1/((a + b)*qt)
}
UNITSON
