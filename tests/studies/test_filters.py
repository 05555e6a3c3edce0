"""First-layer filter maps (paper_facts 3.5): time flip, smoothing, 40-ms cut, E/I split, sign rule."""
from __future__ import annotations

import numpy as np
import pytest

import neurodepth_lib as nd


def test_filter_maps_follow_the_papers_recipe():
    regions = np.array(["basal", "basal", "oblique", "tuft"])
    n_taps = 50
    k = np.zeros((2, 8, n_taps))
    # filter 0: excitation on the tuft synapse (row 3) at lag 2 ms (a kernel given as numpy is lag-first)
    k[0, 3, 2] = 3.0
    # filter 1: the same but negative, with inhibition: it must be flipped
    k[1, 3, 2] = -3.0
    k[1, 4 + 0, 5] = 1.0
    maps = nd.studies.filter_maps(k, regions, smooth_taps=1, last_ms=40)
    assert maps.exc.shape == (2, 4, 40) and maps.inh.shape == (2, 4, 40)
    assert maps.exc[0, 3, 2] == 3.0 and not maps.flipped[0]
    assert maps.flipped[1] and maps.exc[1, 3, 2] == 3.0 and maps.inh[1, 0, 5] == -1.0
    np.testing.assert_allclose(maps.profiles["tuft"][0][0, 2], 3.0)
    np.testing.assert_allclose(maps.profiles["basal"][1][1, 5], -0.5)
    # smoothing spreads the peak over 3 taps and keeps its sum
    smooth = nd.studies.filter_maps(k, regions, smooth_taps=3)
    np.testing.assert_allclose(smooth.exc[0, 3, 1:4], [1.0, 1.0, 1.0])
    assert maps.strongest(1) == [0] or maps.strongest(1) == [1]
    with pytest.raises(ValueError, match="inputs"):
        nd.studies.filter_maps(k, regions[:3])


def test_first_layer_kernel_of_a_tcn_is_time_flipped():
    torch = pytest.importorskip("torch")
    from neurodepth_lib.nets import TCN, TCNConfig

    model = TCN(TCNConfig(n_inputs=4, kernel_sizes=(5,), widths=1, n_dendritic=0))
    with torch.no_grad():
        model.hidden[0].conv.weight.zero_()
        model.hidden[0].conv.weight[0, 1, 4] = 1.0  # last tap = lag 0
    k = nd.studies.first_layer_kernel(model)
    assert k.shape == (1, 4, 5) and k[0, 1, 0] == 1.0
