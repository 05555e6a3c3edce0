"""What every figure module shares: an axes to draw on, and a legend outside it."""
import matplotlib.pyplot as plt


def axes_or_new(ax=None, figsize=(8, 3)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def legend_outside(ax, **kwargs):
    """A legend to the right of the axes, where it cannot hide data (rasters and traces fill their axes)."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False,
                     **{"fontsize": 8, **kwargs})
