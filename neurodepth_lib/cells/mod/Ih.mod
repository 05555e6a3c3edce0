COMMENT
Ih: hyperpolarisation-activated cation current (HCN; Kole, Hallermann & Stuart 2006), as used in
Hay et al. (2011). Written for neurodepth from science/paper_facts.md section 4.3. No temperature factor.

    i = gbar * m * (v - ehcn),  ehcn = -45 mV (non-specific cation current)
    alpha = 0.00643 (u+154.9) / (exp((u+154.9)/11.9) - 1),  beta = 0.193 exp(u/33.1),  u = v - vshift
    m_inf = alpha/(alpha+beta),  tau_m = 1/(alpha+beta)

vshift moves both curves along the voltage axis (+vshift: to more depolarised voltages); it is 0 in
all of the paper's runs. The singular voltage u = -154.9 mV is nudged by +1e-4 mV.
ENDCOMMENT

NEURON {
    SUFFIX Ih
    NONSPECIFIC_CURRENT ihcn
    RANGE gbar, g, ehcn, vshift
    RANGE mInf, mTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 0.00001 (S/cm2)
    ehcn = -45 (mV)
    vshift = 0 (mV)
}

ASSIGNED {
    v (mV)
    ihcn (mA/cm2)
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
    ihcn = g*(v - ehcn)
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
    LOCAL u, a, b
    u = vm - vshift
    if (u == -154.9) { u = u + 0.0001 }
    a = 0.00643*(u + 154.9)/(exp((u + 154.9)/11.9) - 1)
    b = 0.193*exp(u/33.1)
    mInf = a/(a + b)
    mTau = 1/(a + b)
}
UNITSON
