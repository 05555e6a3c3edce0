import numpy as np
import pytest

from neurodepth_lib import inputs
import neurodepth_lib as nd
from neurodepth_lib.cells.iaf import IAFParams


def single_input(channel, t0, n=100, duration=300):
    x = np.zeros((n, duration), dtype=np.uint8)
    x[channel, t0] = 1
    return x


def test_single_psp_has_2mV_peak_and_20ms_decay():
    r = nd.cells.iaf.simulate(single_input(0, 50))
    v = r.v_mV[0] - (-75.0)
    assert v[49] == 0 and v[50] == pytest.approx(2.0)
    assert v[70] == pytest.approx(2.0 / np.e)
    assert v[50 + 141] == 0  # kernel truncated after 141 samples
    inhibitory = nd.cells.iaf.simulate(single_input(90, 50)).v_mV[0] + 75.0
    assert inhibitory[50] == pytest.approx(-2.0)
    assert not r.spikes.any()


def test_subthreshold_superposition():
    a, b = single_input(0, 30), single_input(5, 80)
    va = nd.cells.iaf.simulate(a).v_mV + 75
    vb = nd.cells.iaf.simulate(b).v_mV + 75
    vab = nd.cells.iaf.simulate(a + b).v_mV + 75
    assert np.allclose(vab, va + vb)


def test_threshold_crossing_spikes_and_resets_to_v_reset():
    x = np.zeros((100, 200), dtype=np.uint8)
    x[:11, 20] = 1  # 11 coincident EPSPs: 22 mV > 20 mV to threshold
    r = nd.cells.iaf.simulate(x)
    assert r.spikes[0].nonzero()[0].tolist() == [20]
    assert r.v_mV[0, 20] == pytest.approx(-75 + 22)
    assert r.v_mV[0, 21] == pytest.approx(-75.0)  # reset exactly to V_reset
    assert np.all(r.v_mV[0, 22:150] == pytest.approx(-75.0))  # free PSP and reset cancel
    x[:10, 20] = 1
    x[10, 20] = 0  # 10 EPSPs: exactly 20 mV, not above threshold
    assert not nd.cells.iaf.simulate(x).spikes.any()


def test_vectorised_trials_equal_one_at_a_time_and_a_literal_reference():
    s = inputs.iaf_input_settings()
    events = inputs.generate_many(s, 3000, range(4))
    together = nd.cells.iaf.simulate(events)
    assert together.spike_counts.sum() > 0
    for i, ev in enumerate(events):
        alone = nd.cells.iaf.simulate(ev)
        assert np.array_equal(alone.spikes[0], together.spikes[i])
        # literal restatement: V = V_reset + drive - sum_spikes (V_pre(t_s+1) - V_reset) k(t - t_s - 1)
        drive = nd.cells.iaf.synaptic_drive_mV(ev)[0]
        k = IAFParams().psp_kernel()
        v = -75.0 + drive.copy()
        for t_s in np.nonzero(alone.spikes[0])[0]:
            if t_s + 1 < v.size:
                seg = v[t_s + 1: t_s + 1 + k.size]
                seg -= (v[t_s + 1] + 75.0) * k[: seg.size]
        assert np.allclose(v, alone.v_mV[0])


def test_voltage_target_is_clipped_below_threshold():
    x = np.zeros((100, 100), dtype=np.uint8)
    x[:15, 10] = 1
    r = nd.cells.iaf.simulate(x)
    assert r.voltage_target_mV().max() == pytest.approx(-54.9)


def test_true_filter():
    f = IAFParams().true_filter_mV(80)
    assert f.shape == (100, 80)
    assert f[0, 0] == 2.0 and f[99, 0] == -2.0 and f[0, 20] == pytest.approx(2 / np.e)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 99, 10)), "99 channels"),
    (np.zeros(10), "shape"),
    (-np.ones((100, 10)), "non-negative"),
])
def test_bad_inputs_are_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        nd.cells.iaf.simulate(bad)


def test_bad_params_are_rejected():
    with pytest.raises(ValueError, match="above v_reset"):
        IAFParams(v_threshold_mV=-80)
    with pytest.raises(ValueError, match="tau_ms"):
        IAFParams(tau_ms=0)
