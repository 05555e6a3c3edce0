COMMENT
CaDynamics_E2: free calcium in a submembrane shell (after Destexhe et al. 1994), as used in
Hay et al. (2011). Written for neurodepth from science/paper_facts.md section 4.3.

    dcai/dt = -10^4 * ica * gamma / (2 F depth) - (cai - minCai) / decay

ica in mA/cm2, depth in um, cai in mM, F the Faraday constant; the factor 10^4 makes the units come
out in mM/ms. gamma is the fraction of the calcium influx that stays free (not buffered).
cai starts from the calcium ion's initial value (NEURON's cai0_ca_ion), as nothing here sets it.
ENDCOMMENT

NEURON {
    SUFFIX CaDynamics_E2
    USEION ca READ ica WRITE cai
    RANGE decay, gamma, minCai, depth
}

UNITS {
    (mV) = (millivolt)
    (mA) = (milliamp)
    FARADAY = (faraday) (coulombs)
    (molar) = (1/liter)
    (mM) = (millimolar)
    (um) = (micron)
}

PARAMETER {
    gamma = 0.05
    decay = 80 (ms)
    depth = 0.1 (um)
    minCai = 1e-4 (mM)
}

ASSIGNED {
    ica (mA/cm2)
}

STATE {
    cai (mM)
}

BREAKPOINT {
    SOLVE states METHOD cnexp
}

UNITSOFF
DERIVATIVE states {
    cai' = -(10000)*(ica*gamma/(2*FARADAY*depth)) - (cai - minCai)/decay
}
UNITSON
