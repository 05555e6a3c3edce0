COMMENT
Ca_LVAst: low-voltage-activated (T-type) calcium current. Steady states of Avery & Johnston (1996),
time constants of Randall (1997), shifted by -10 mV as in Hay et al. (2011). Written for neurodepth
from science/paper_facts.md section 4.3.

    i = gbar * m^2 * h * (v - eca);   with u = v + 10 (the shift):
    m_inf = 1 / (1 + exp(-(u+30)/6)),     tau_m = (5 + 20 / (1 + exp((u+25)/5))) / qt
    h_inf = 1 / (1 + exp((u+80)/6.4)),    tau_h = (20 + 50 / (1 + exp((u+40)/7))) / qt
    qt = 2.3^((34-21)/10)
ENDCOMMENT

NEURON {
    SUFFIX Ca_LVAst
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
    LOCAL qt, u
    qt = 2.3^((34 - 21)/10)
    u = vm + 10
    mInf = 1/(1 + exp(-(u + 30)/6))
    mTau = (5 + 20/(1 + exp((u + 25)/5)))/qt
    hInf = 1/(1 + exp((u + 80)/6.4))
    hTau = (20 + 50/(1 + exp((u + 40)/7)))/qt
}
UNITSON
