COMMENT
Nap_Et2: persistent sodium current (Magistretti & Alonso 1999), as used in Hay et al. (2011).
Written for neurodepth from science/paper_facts.md section 4.3.

    i = gbar * m^3 * h * (v - ena)
    m_inf = 1 / (1 + exp(-(v+52.6)/4.6))
    tau_m = 6 / ((alpha_m + beta_m) qt), with the NaTa_t m rates:
            alpha_m = 0.182 (v+38) / (1 - exp(-(v+38)/6)), beta_m = 0.124 (-v-38) / (1 - exp(-(-v-38)/6))
    h_inf = 1 / (1 + exp((v+48.8)/10))
    alpha_h = -2.88e-6 (v+17) / (1 - exp((v+17)/4.63)), beta_h = 6.94e-6 (v+64.4) / (1 - exp(-(v+64.4)/2.63))
    tau_h = 1 / ((alpha_h + beta_h) qt),  qt = 2.3^((34-21)/10)

Singular voltages (-38, -17, -64.4 mV) are nudged by +1e-4 mV.
ENDCOMMENT

NEURON {
    SUFFIX Nap_Et2
    USEION na READ ena WRITE ina
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
    ena (mV)
    ina (mA/cm2)
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
    g = gbar*m*m*m*h
    ina = g*(v - ena)
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
    LOCAL qt, vv, a, b
    qt = 2.3^((34 - 21)/10)

    mInf = 1/(1 + exp(-(vm + 52.6)/4.6))
    vv = vm
    if (vv == -38) { vv = vv + 0.0001 }
    a = 0.182*(vv + 38)/(1 - exp(-(vv + 38)/6))
    b = 0.124*(-vv - 38)/(1 - exp(-(-vv - 38)/6))
    mTau = 6/((a + b)*qt)

    hInf = 1/(1 + exp((vm + 48.8)/10))
    vv = vm
    if (vv == -17) { vv = vv + 0.0001 }
    a = -2.88e-6*(vv + 17)/(1 - exp((vv + 17)/4.63))
    vv = vm
    if (vv == -64.4) { vv = vv + 0.0001 }
    b = 6.94e-6*(vv + 64.4)/(1 - exp(-(vv + 64.4)/2.63))
    hTau = 1/((a + b)*qt)
}
UNITSON
