"""The protocol refuses what is not a probability (it would silently score logits or a bug)."""
import numpy as np
import pytest

import neurodepth_lib as nd


def _arrays(p):
    rng = np.random.default_rng(0)
    y = (rng.random((3, 800)) < 0.01).astype(np.uint8)
    v = rng.normal(-70, 1, (3, 800))
    return p, y, v, v


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan")])
def test_probabilities_outside_zero_one_are_refused(value):
    p = np.full((3, 800), 0.1)
    p[1, 600] = value
    with pytest.raises(ValueError, match=r"spike_probability (must hold probabilities in \[0, 1\]|contains NaN)"):
        nd.scoring.evaluate(*_arrays(p), nd.scoring.EvaluationConfig(spike_count_range=None, n_subsets=0))
