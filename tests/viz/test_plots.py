"""Figures that draw a study's numbers: what is drawn is the numbers given, on labelled axes."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import neurodepth_lib as nd  # noqa: E402


def _rows():
    rows = []
    for n, lift in ((100, 0.0), (200, 0.01), (400, 0.02)):
        for depth, base in ((1, 0.90), (2, 0.93), (4, 0.931)):
            for seed, jitter in ((0, -0.002), (1, 0.002)):
                rows.append({"condition": "NMDA", "n_train_trials": n, "train_hours": n / 600, "depth": depth,
                             "width": 16, "receptive_field_ms": 77, "seed": seed, "auc": base + lift + jitter})
    return rows


def test_scaling_curves_draw_one_line_per_depth_at_the_means_and_ring_the_depth_needed():
    entries = nd.studies.depth_by_size(_rows())
    ax = nd.viz.plot_scaling_curves(entries, "NMDA")
    try:
        lines = {c.get_label(): c.lines[0] for c in ax.containers}  # errorbar: (data line, caps, bars)
        assert sorted(lines) == ["1 layer", "2 layers", "4 layers"]
        assert "depth needed (within 0.005)" in [t.get_text() for t in ax.get_legend().get_texts()]
        np.testing.assert_allclose(lines["2 layers"].get_xdata(), [100 / 600, 200 / 600, 400 / 600])
        np.testing.assert_allclose(lines["1 layer"].get_ydata(), [0.90, 0.91, 0.92])
        np.testing.assert_allclose(lines["4 layers"].get_ydata(), [0.931, 0.941, 0.951])
        # depth 2 is within 0.005 of the best (depth 4) at every size: the rings sit on the depth-2 means
        rings = [line for line in ax.get_lines() if str(line.get_markerfacecolor()) == "none" and len(line.get_xdata())]
        assert sorted(float(r.get_ydata()[0]) for r in rings) == pytest.approx([0.93, 0.94, 0.95])
        assert ax.get_xscale() == "log"
        assert "hours" in ax.get_xlabel() and "AUC" in ax.get_ylabel()
    finally:
        plt.close(ax.figure)


def test_scaling_curves_name_the_conditions_they_have():
    with pytest.raises(ValueError, match="no entries for condition 'AMPA'.*NMDA"):
        nd.viz.plot_scaling_curves(nd.studies.depth_by_size(_rows()), "AMPA")
    plt.close("all")
