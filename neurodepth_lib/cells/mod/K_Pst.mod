COMMENT
K_Pst: slow, non-inactivating ("persistent") potassium current (Korngreen & Sakmann 2000), shifted by
-10 mV as in Hay et al. (2011). Written for neurodepth from science/paper_facts.md section 4.3.

    i = gbar * m^2 * h * (v - ek);   with u = v + 10 (the shift):
    m_inf = 1 / (1 + exp(-(u+1)/12))
    tau_m = (1.25 + 175.03 exp(0.026 u)) / qt   if u < -50 mV
            (1.25 + 13 exp(-0.026 u)) / qt      otherwise
    h_inf = 1 / (1 + exp((u+54)/11))
    tau_h = (360 + (1010 + 24 (u+55)) exp(-((u+75)/48)^2)) / qt,   qt = 2.3^((34-21)/10)
ENDCOMMENT

NEURON {
    SUFFIX K_Pst
    USEION k READ ek WRITE ik
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
    ek (mV)
    ik (mA/cm2)
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
    ik = g*(v - ek)
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
    mInf = 1/(1 + exp(-(u + 1)/12))
    if (u < -50) {
        mTau = (1.25 + 175.03*exp(0.026*u))/qt
    } else {
        mTau = (1.25 + 13*exp(-0.026*u))/qt
    }
    hInf = 1/(1 + exp((u + 54)/11))
    hTau = (360 + (1010 + 24*(u + 55))*exp(-((u + 75)/48)*((u + 75)/48)))/qt
}
UNITSON
