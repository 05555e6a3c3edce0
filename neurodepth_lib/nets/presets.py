"""Named architectures: the paper's (``large``, ``small``, ``fit_cnn``, the one-unit network), small teaching
ones, and the ELM family of Spieler et al. (``elm``, ``branch_elm``).
"""
from __future__ import annotations

import math

import numpy as np

from .elm import ELMConfig
from .tcn import TCNConfig

__all__ = ["one_unit_config", "paper_configs", "TEACHING_ARCHITECTURES", "ELM_ARCHITECTURES", "elm_config",
           "architecture_names", "make_architecture"]


def one_unit_config(n_inputs: int = 100, kernel_ms: int = 80) -> TCNConfig:
    """The paper's Figure-1 network for the integrate-and-fire neuron (paper_facts 1.8).

    One causal convolution with a single filter of ``kernel_ms`` ms, linear, no BatchNorm; kernel
    initialised from a truncated normal with std 0.25, bias 0.1; spike head bias -2.5.
    """
    return TCNConfig(n_inputs=n_inputs, kernel_sizes=(kernel_ms,), widths=1, activation="linear",
                     batch_norm=False, n_dendritic=0, hidden_init_std=0.25, hidden_bias_init=0.1,
                     spike_bias_init=-2.5)


def paper_configs(n_inputs: int = 1278, n_dendritic: int = 0) -> dict[str, TCNConfig]:
    """Architectures named in the paper's code (paper_facts 2.1), keyed by a short name.

    - ``"large"``: ``TCN__DxWxT_7x128x153``, the large NMDA model of the figures. Its per-layer kernels
      are not in the code; we use 45 then six of 19 (one of the two splits that give T = 153).
    - ``"small"``: ``FCN__DxWxT_1x128x43``, the small models (one layer, 128 filters of 43 ms).
    - ``"fit_cnn"``: ``TCN__DxWxT_3x64x100``, the default of ``fit_CNN.py`` (kernels 54, 24, 24).

    ``n_dendritic``: channels of the dendritic head (paper: 20 for NMDA, 30 for AMPA; 0 = no head).
    """
    common = dict(n_inputs=n_inputs, n_dendritic=n_dendritic)
    return {
        "large": TCNConfig(kernel_sizes=(45,) + (19,) * 6, widths=128, **common),
        "small": TCNConfig(kernel_sizes=(43,), widths=128, **common),
        "fit_cnn": TCNConfig(kernel_sizes=(54, 24, 24), widths=64, **common),
    }


# Small teaching architectures next to the paper's (models.paper_configs): (kernels in ms, width)
TEACHING_ARCHITECTURES = {
    "tiny": ((15, 9), 8),          # T = 23 ms, ~155 k parameters on 1,278 inputs: tests and quick scale
    "lab": ((35, 15, 15, 15), 32),  # T = 77 ms, ~1.5 M parameters: minutes of training on 2 cores
}


# The ELM family (Spieler et al., ICLR 2024; nets.elm): 20 memory units and an MLP of 40, as the paper's
# 8k-parameter Branch-ELM; "branch_elm" groups the inputs into 45 overlapping branches of 100 (NeuronIO).
ELM_ARCHITECTURES = {
    "elm": dict(n_memory=20),
    "branch_elm": dict(n_memory=20, n_branches=45, synapses_per_branch=100),
}
_PAPER_N_INPUTS = 1278  # the branch sizes above are the paper's for the L5PC's 1,278 inputs


def elm_config(name: str = "branch_elm", *, n_inputs: int = 1278, n_dendritic: int = 0, **overrides) -> ELMConfig:
    """An :class:`~neurodepth_lib.nets.ELMConfig` from :data:`ELM_ARCHITECTURES`, with ``overrides`` (any
    ELMConfig field, e.g. ``n_memory=8``). On other than 1,278 inputs the Branch-ELM keeps 45 branches (at
    most one per input) and scales the inputs per branch with the input count, keeping the paper's overlap
    (100 inputs per branch, 29 apart: each input on about 3.4 branches)."""
    if name not in ELM_ARCHITECTURES:
        raise ValueError(f"unknown ELM architecture {name!r}; choose one of {', '.join(sorted(ELM_ARCHITECTURES))}")
    fields = dict(ELM_ARCHITECTURES[name])
    if "n_branches" in fields and "n_branches" not in overrides:
        n = int(n_inputs)
        fields["n_branches"] = n_b = min(fields["n_branches"], n)
        if "synapses_per_branch" not in overrides:
            paper_width = fields["synapses_per_branch"] * n / _PAPER_N_INPUTS
            fields["synapses_per_branch"] = min(n, max(math.ceil(n / n_b), round(paper_width)))
    return ELMConfig(n_inputs=n_inputs, n_dendritic=n_dendritic, **{**fields, **overrides})


def architecture_names() -> list[str]:
    """Names :func:`make_architecture` knows: the paper's (``large``, ``small``, ``fit_cnn``), ours (``lab``,
    ``tiny``) and the ELM family's (``elm``, ``branch_elm``)."""
    return sorted(set(paper_configs(n_inputs=1)) | set(TEACHING_ARCHITECTURES) | set(ELM_ARCHITECTURES))


def make_architecture(name: str = "fit_cnn", *, n_inputs: int = 1278, n_dendritic: int = 0,
                      kernel_sizes=None, depth: int | None = None, kernel_ms: int | None = None,
                      first_kernel_ms: int | None = None, widths=None, **overrides) -> TCNConfig | ELMConfig:
    """A :class:`~neurodepth_lib.nets.TCNConfig` from a preset name, optionally reshaped (or an
    :class:`~neurodepth_lib.nets.ELMConfig` for ``elm`` and ``branch_elm``, see :func:`elm_config`).

    Parameters
    ----------
    name : ``"large"`` (7x128x153), ``"small"`` (1x128x43), ``"fit_cnn"`` (3x64x100; the paper's
        ``fit_CNN.py`` default), ``"lab"`` (4x32, kernels 35/15/15/15, T = 77 ms) or ``"tiny"`` (2x8, T = 23 ms).
    n_inputs, n_dendritic : input channels and dendritic-head channels (0 = no dendritic head).
    kernel_sizes : every layer's kernel (ms); overrides the preset's and ``depth``.
    depth, kernel_ms, first_kernel_ms : or build the kernels as ``(first_kernel_ms,) + (kernel_ms,) *
        (depth - 1)``. ``kernel_ms`` alone sets every layer's kernel (the first too); what is not given
        comes from the preset.
    widths : one int for every layer, or one per layer (a one-element list is one int for every layer, as
        ``--width 128`` on the command line); default the preset's width.
    overrides : any other :class:`TCNConfig` field (e.g. ``spike_bias_init``); for an ELM preset, any
        :class:`ELMConfig` field (e.g. ``n_memory``). The TCN reshaping options do not apply to an ELM.
    """
    if name in ELM_ARCHITECTURES:
        given = {"kernel_sizes": kernel_sizes, "depth": depth, "kernel_ms": kernel_ms,
                 "first_kernel_ms": first_kernel_ms, "widths": widths}
        given = [k for k, v in given.items() if v is not None]
        if given:
            raise ValueError(f"{given[0]} reshapes a TCN preset, and {name!r} is an ELM (no kernels or layers): "
                             f"change its ELMConfig fields instead (n_memory, mlp_hidden, n_branches, ...)")
        return elm_config(name, n_inputs=n_inputs, n_dendritic=n_dendritic, **overrides)
    presets = paper_configs(n_inputs=n_inputs, n_dendritic=n_dendritic)
    if name in presets:
        base = presets[name]
    elif name in TEACHING_ARCHITECTURES:
        k, w = TEACHING_ARCHITECTURES[name]
        base = TCNConfig(n_inputs=n_inputs, kernel_sizes=k, widths=w, n_dendritic=n_dendritic)
    else:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(architecture_names())} "
                         f"(and reshape a TCN with kernel_sizes / depth / widths)")
    if widths is not None and not isinstance(widths, (int, np.integer)) and len(widths) == 1:
        widths = widths[0]
    kernels = base.kernel_sizes
    if kernel_sizes is not None:
        if isinstance(kernel_sizes, (int, np.integer)):
            kernel_sizes = (int(kernel_sizes),) * (depth or 1)
        kernels = tuple(kernel_sizes)
        if depth is not None and len(kernels) != depth:
            raise ValueError(f"kernel_sizes has {len(kernels)} layers but depth={depth}")
    elif depth is not None or kernel_ms is not None or first_kernel_ms is not None:
        d = base.depth if depth is None else depth
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise ValueError(f"depth must be a positive integer, got {depth!r}")
        later = kernel_ms if kernel_ms is not None else (base.kernel_sizes[1] if base.depth > 1
                                                          else base.kernel_sizes[0])
        first = first_kernel_ms if first_kernel_ms is not None else (
            base.kernel_sizes[0] if kernel_ms is None or base.depth == 1 else kernel_ms)
        kernels = (first,) + (later,) * (int(d) - 1)
    if widths is None:
        widths = base.widths[0] if len(set(base.widths)) == 1 else base.widths
        if not isinstance(widths, int) and len(widths) != len(kernels):
            raise ValueError(f"preset {name!r} has per-layer widths {widths}; give widths for "
                             f"{len(kernels)} layers")
    return base.replace(kernel_sizes=tuple(kernels), widths=widths if isinstance(widths, int) else tuple(widths),
                        **overrides)
