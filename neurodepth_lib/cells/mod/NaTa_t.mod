COMMENT
NaTa_t: fast inactivating (transient) sodium current.
Kinetics of Colbert & Pan (2002) as used in Hay et al. (2011); the form used by the L5PC of
Beniaguev, Segev & London (2021). Written for neurodepth from the equations in
science/paper_facts.md section 4.3.

    i = gbar * m^3 * h * (v - ena)
    m: alpha = 0.182 (v+38) / (1 - exp(-(v+38)/6)),  beta = 0.124 (-v-38) / (1 - exp(-(-v-38)/6))
    h: alpha = -0.015 (v+66) / (1 - exp((v+66)/6)),  beta = -0.015 (-v-66) / (1 - exp((-v-66)/6))
    x_inf = alpha/(alpha+beta),  tau_x = 1 / ((alpha+beta) qt),  qt = 2.3^((34-21)/10)

The temperature factor is fixed at 34 degC on purpose: the mechanism never reads celsius.
At the removable singularities (v = -38, v = -66 mV) the voltage is nudged by +1e-4 mV.
ENDCOMMENT

NEURON {
    SUFFIX NaTa_t
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

    vv = vm
    if (vv == -38) { vv = vv + 0.0001 }
    a = 0.182*(vv + 38)/(1 - exp(-(vv + 38)/6))
    b = 0.124*(-vv - 38)/(1 - exp(-(-vv - 38)/6))
    mInf = a/(a + b)
    mTau = 1/((a + b)*qt)

    vv = vm
    if (vv == -66) { vv = vv + 0.0001 }
    a = -0.015*(vv + 66)/(1 - exp((vv + 66)/6))
    b = -0.015*(-vv - 66)/(1 - exp((-vv - 66)/6))
    hInf = a/(a + b)
    hTau = 1/((a + b)*qt)
}
UNITSON
