"""The TCN family of the paper (paper_facts 2.1): causal convolutions from synaptic inputs to output spikes,
somatic voltage and (optionally) dendritic components, one prediction per millisecond.

Architecture
------------
Input ``x`` of shape ``(batch, n_inputs, time)``: 1 where a synapse received a spike in that 1-ms bin.
Each hidden layer ``k`` is a causal 1-D convolution (``kernel_sizes[k]`` taps, ``widths[k]`` filters,
stride 1, no dilation, ``kernel - 1`` zeros padded on the left) followed by the activation and then
BatchNorm: conv -> ReLU -> BN, the order of the paper's Keras code (ReLU inside the conv layer). Three
1x1 convolutions ("heads") read the last hidden layer:

- spike head, 1 channel. :class:`TCN` returns its *logit*; ``sigmoid(logit)`` is the spike probability
  (train with ``BCEWithLogits``, which is the numerically stable form of the paper's sigmoid + BCE);
- soma head, 1 channel, linear: the clipped and shifted somatic voltage (mV);
- dendritic head, ``n_dendritic`` channels, linear: whitened PCA components of the dendritic voltages
  (absent when ``n_dendritic == 0``).

The temporal receptive field is ``T = sum_k (kernel_k - 1) + 1`` ms: the output at time ``t`` depends on
inputs at ``t - T + 1 .. t`` and never on the future.

The one-unit linear network of the paper's Figure 1 is the same class with
:func:`~neurodepth_lib.nets.presets.one_unit_config`; :func:`~neurodepth_lib.nets.presets.paper_configs` holds the architectures named in the paper's code.

First layer on sparse inputs
----------------------------
Synaptic inputs are sparse (about 1 % of the L5PC's 1,278 inputs fire in a millisecond), and the first
convolution holds most of a dense network's arithmetic (80 % for the 7x128x153 TCN). ``TCNConfig.first_layer``
chooses how the first layer is computed: ``"dense"`` (``conv1d``), ``"sparse"``
(:func:`neurodepth_lib.nets.sparse.sparse_causal_conv1d`, whose cost follows the number of input events, forward
and weight gradient alike) or ``"auto"`` (the default: sparse on the CPU when at most
:data:`neurodepth_lib.nets.sparse.SPARSE_MAX_DENSITY` of the input bins are non-zero, dense otherwise and on GPUs).
The two paths give the same outputs and gradients up to float rounding; the choice never changes the model's
parameters, name or files. With a sparse-capable mode the first layer's kernel is stored tap-major in memory
(same shape and values; see :func:`neurodepth_lib.nets.sparse.tap_major_`); model files are always written
contiguous.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._checks import finite_float, non_negative_float, positive_int
from . import sparse as _sparse

__all__ = ["ACTIVATIONS", "TCNConfig", "TCNOutput", "spike_probability",
           "TCN", "count_parameters", "macs_per_ms"]


ACTIVATIONS = ("relu", "linear")


@dataclass(frozen=True)
class TCNConfig:
    """Everything that defines a TCN: layer sizes, activation, BatchNorm, heads and initialisation.

    The defaults are the depth-3 network of the paper's ``fit_CNN.py`` (kernels 54, 24, 24; 64 filters;
    T = 100 ms) on the L5PC's 1,278 inputs, with the paper's initialisations.

    Parameters
    ----------
    n_inputs : number of input channels (synapses).
    kernel_sizes : temporal kernel of each hidden layer, in ms (1-ms bins); its length is the depth.
    widths : number of filters of each hidden layer; one int means the same width for every layer.
    activation : ``"relu"`` (the TCNs) or ``"linear"`` (the one-unit I&F network).
    batch_norm : BatchNorm after each hidden layer's activation (conv -> ReLU -> BN, as in the paper).
    n_dendritic : channels of the dendritic head (20 for NMDA, 30 for AMPA in the paper); 0 = no head.
    hidden_init_std, hidden_bias_init : hidden kernels ~ truncated normal(0, std), cut at
        ``init_truncation_std`` standard deviations (Keras' TruncatedNormal); biases constant.
    spike_init_std, spike_bias_init : spike head (paper: std 0.001, bias -2.0, i.e. p ~ 0.12 at start).
    soma_init_std, soma_bias_init : soma head (paper: std 0.03, bias 0).
    dendritic_init_std : dendritic head (paper: std 0.05, bias 0).
    bn_momentum, bn_eps : BatchNorm running-statistics momentum (PyTorch convention: weight of the new
        batch) and epsilon. Keras used momentum 0.01 in this convention and eps 1e-3; we keep Keras' eps
        and PyTorch's 0.1 momentum so that short teaching runs end with usable running statistics.
    first_layer : how the first convolution is computed (not what it computes): ``"auto"`` (sparse on the
        CPU for sparse inputs, dense otherwise), ``"dense"`` or ``"sparse"``; see the module notes. Left
        out of :meth:`to_dict` when ``"auto"``, so cards and checkpoints from before it existed still match.
    """

    n_inputs: int = 1278
    kernel_sizes: tuple[int, ...] = (54, 24, 24)
    widths: tuple[int, ...] | int = 64
    activation: str = "relu"
    batch_norm: bool = True
    n_dendritic: int = 0
    hidden_init_std: float = 0.002
    hidden_bias_init: float = 0.0
    init_truncation_std: float = 2.0
    spike_init_std: float = 0.001
    spike_bias_init: float = -2.0
    soma_init_std: float = 0.03
    soma_bias_init: float = 0.0
    dendritic_init_std: float = 0.05
    bn_momentum: float = 0.1
    bn_eps: float = 1e-3
    first_layer: str = "auto"

    def __post_init__(self):
        positive_int(self.n_inputs, "n_inputs")
        object.__setattr__(self, "n_inputs", int(self.n_inputs))
        kernels = self.kernel_sizes
        if isinstance(kernels, (int, np.integer)) and not isinstance(kernels, bool):
            kernels = (kernels,)
        try:
            kernels = tuple(kernels)
        except TypeError:
            raise ValueError(f"kernel_sizes must be a sequence of positive integers, got {self.kernel_sizes!r}") \
                from None
        if not kernels:
            raise ValueError("kernel_sizes must hold at least one layer, got ()")
        for i, k in enumerate(kernels):
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or int(k) < 1:
                raise ValueError(f"kernel_sizes[{i}] must be an integer >= 1 (ms), got {k!r}")
        kernels = tuple(int(k) for k in kernels)
        object.__setattr__(self, "kernel_sizes", kernels)

        widths = self.widths
        if isinstance(widths, (int, np.integer)) and not isinstance(widths, bool):
            widths = (int(widths),) * len(kernels)
        try:
            widths = tuple(widths)
        except TypeError:
            raise ValueError(f"widths must be an int or a sequence of ints, got {self.widths!r}") from None
        if len(widths) != len(kernels):
            raise ValueError(f"widths has {len(widths)} entries but kernel_sizes has {len(kernels)}: "
                             f"give one width per layer (or a single int), got widths={self.widths!r}")
        for i, w in enumerate(widths):
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or int(w) < 1:
                raise ValueError(f"widths[{i}] must be an integer >= 1, got {w!r}")
        object.__setattr__(self, "widths", tuple(int(w) for w in widths))

        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if not isinstance(self.batch_norm, (bool, np.bool_)):
            raise ValueError(f"batch_norm must be True or False, got {self.batch_norm!r}")
        object.__setattr__(self, "batch_norm", bool(self.batch_norm))
        if isinstance(self.n_dendritic, bool) or not isinstance(self.n_dendritic, (int, np.integer)) \
                or self.n_dendritic < 0:
            raise ValueError(f"n_dendritic must be an integer >= 0, got {self.n_dendritic!r}")
        object.__setattr__(self, "n_dendritic", int(self.n_dendritic))
        for name in ("hidden_init_std", "spike_init_std", "soma_init_std", "dendritic_init_std"):
            object.__setattr__(self, name, non_negative_float(getattr(self, name), name))
        for name in ("hidden_bias_init", "spike_bias_init", "soma_bias_init"):
            object.__setattr__(self, name, finite_float(getattr(self, name), name))
        if finite_float(self.init_truncation_std, "init_truncation_std") <= 0:
            raise ValueError(f"init_truncation_std must be positive, got {self.init_truncation_std!r}")
        object.__setattr__(self, "init_truncation_std", float(self.init_truncation_std))
        if not 0.0 <= finite_float(self.bn_momentum, "bn_momentum") <= 1.0:
            raise ValueError(f"bn_momentum must lie in [0, 1], got {self.bn_momentum!r}")
        if finite_float(self.bn_eps, "bn_eps") <= 0:
            raise ValueError(f"bn_eps must be positive, got {self.bn_eps!r}")
        object.__setattr__(self, "bn_momentum", float(self.bn_momentum))
        object.__setattr__(self, "bn_eps", float(self.bn_eps))
        if self.first_layer not in _sparse.FIRST_LAYER_MODES:
            raise ValueError(f"first_layer must be one of {_sparse.FIRST_LAYER_MODES}, got {self.first_layer!r}")

    # ---- derived properties -------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.kernel_sizes)

    @property
    def receptive_field_ms(self) -> int:
        """``T = sum_k (kernel_k - 1) + 1``: how many ms of input one output sees."""
        return sum(k - 1 for k in self.kernel_sizes) + 1

    @property
    def mean_width(self) -> int:
        """Mean number of filters per hidden layer, rounded (the "W" of the paper's model names)."""
        return int(round(sum(self.widths) / len(self.widths)))

    @property
    def is_fcn(self) -> bool:
        """True when the temporal filtering all happens in the first layer (depth 1, or every later kernel
        is 1): the paper calls these "FCN"; the rest of the stack is then pointwise."""
        return self.depth == 1 or all(k == 1 for k in self.kernel_sizes[1:])

    @property
    def name(self) -> str:
        """The paper's model name without the condition prefix, e.g. ``"TCN__DxWxT_7x128x153"``."""
        kind = "FCN" if self.is_fcn else "TCN"
        return f"{kind}__DxWxT_{self.depth}x{self.mean_width}x{self.receptive_field_ms}"

    # ---- serialisation ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-able dict (tuples become lists) that :meth:`from_dict` turns back into this config."""
        d = asdict(self)
        d["kernel_sizes"] = list(self.kernel_sizes)
        d["widths"] = list(self.widths)
        if d["first_layer"] == "auto":  # the default; cards written before the field existed match
            del d["first_layer"]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TCNConfig":
        """Rebuild a config from :meth:`to_dict`'s output; unknown keys are an error (a typo or a card
        written by a newer version should not be silently ignored)."""
        if not isinstance(data, dict):
            raise TypeError(f"TCNConfig.from_dict needs a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown TCNConfig field(s) {unknown}; known fields: {sorted(known)}")
        kwargs = dict(data)
        for key in ("kernel_sizes", "widths"):
            if isinstance(kwargs.get(key), list):
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)

    def replace(self, **changes) -> "TCNConfig":
        """A copy with some fields changed (validated again)."""
        return type(self).from_dict({**self.to_dict(), **changes})

# ---- the network ------------------------------------------------------------------------------------
class TCNOutput(NamedTuple):
    """What :class:`TCN` returns: ``spike_logit`` (B, T), ``soma`` (B, T), ``dendritic`` (B, K, T) or None."""

    spike_logit: torch.Tensor
    soma: torch.Tensor
    dendritic: torch.Tensor | None


def spike_probability(spike_logit: torch.Tensor) -> torch.Tensor:
    """Spike probability per ms from the spike head's logit: ``sigmoid(logit)``."""
    return torch.sigmoid(spike_logit)


class _CausalBlock(nn.Module):
    """conv (left zero padding) -> activation -> optional BatchNorm.

    ``first_layer`` (the first block only): ``"auto"``, ``"dense"`` or ``"sparse"``, how the convolution is
    computed (see the module notes); None for the later blocks, whose inputs are dense activations.
    """

    def __init__(self, n_in: int, n_out: int, kernel_ms: int, activation: str, batch_norm: bool,
                 bn_momentum: float, bn_eps: float, first_layer: str | None = None):
        super().__init__()
        self.kernel_ms = int(kernel_ms)
        self.conv = nn.Conv1d(n_in, n_out, kernel_size=self.kernel_ms)
        self.activation = activation
        self.bn = nn.BatchNorm1d(n_out, momentum=bn_momentum, eps=bn_eps) if batch_norm else None
        self.first_layer = first_layer
        # "sparse" (events found in a dense x), "dense" or "events" (x given as SparseEvents): what the last
        # forward used (for tests and benchmarks)
        self.last_path = None
        if first_layer not in (None, "dense"):
            _sparse.tap_major_(self.conv)

    def _convolve(self, x: torch.Tensor | _sparse.SparseEvents) -> torch.Tensor:
        weight, bias = self.conv.weight, self.conv.bias
        if isinstance(x, _sparse.SparseEvents):  # input events given as such: no dense array exists
            self.last_path = "events"
            return _sparse.sparse_causal_conv1d(x, weight, bias)
        mode = self.first_layer
        if mode in ("auto", "sparse"):
            events = None
            if mode == "auto":
                # sparse on the CPU for sparse inputs that need no gradient (an input gradient is dense)
                if x.device.type == "cpu" and not x.requires_grad:
                    events = _sparse.find_events(x, max_density=_sparse.SPARSE_MAX_DENSITY)
            else:
                events = _sparse.find_events(x)
            if events is not None:
                self.last_path = "sparse"
                return _sparse.sparse_causal_conv1d(x, weight, bias, events=events)
        self.last_path = "dense"
        # left padding only: output t sees inputs t - k + 1 .. t (causal), and keeps the length
        return F.conv1d(F.pad(x.to(weight.dtype), (self.kernel_ms - 1, 0)), weight, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._convolve(x)
        if self.activation == "relu":
            h = torch.relu(h)
        if self.bn is not None:
            h = self.bn(h)
        return h



def check_network_input(x, n_inputs: int) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``x`` is a tensor ``(batch, n_inputs, time)`` with at least one trial
    and one ms, or the :class:`~neurodepth_lib.nets.sparse.SparseEvents` of one: the input every network of the
    library takes."""
    if isinstance(x, _sparse.SparseEvents):
        if x.shape[1] != n_inputs:
            raise ValueError(f"the input events have {x.shape[1]} channels but the model expects "
                             f"n_inputs={n_inputs} (shape {tuple(x.shape)})")
        return
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (batch, {n_inputs}, time), got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"x must have shape (batch, channels, time), got shape {tuple(x.shape)}")
    if x.shape[1] != n_inputs:
        raise ValueError(f"x has {x.shape[1]} channels but the model expects "
                         f"n_inputs={n_inputs} (shape {tuple(x.shape)}; is the time axis last?)")
    if x.shape[2] < 1 or x.shape[0] < 1:
        raise ValueError(f"x must hold at least one trial and one ms, got shape {tuple(x.shape)}")


class TCN(nn.Module):
    """Causal temporal convolutional network with spike, soma and optional dendritic heads.

    Parameters
    ----------
    config : the architecture; default :class:`TCNConfig` ().

    ``forward(x)`` takes ``x`` of shape ``(batch, n_inputs, time)`` (any numeric or bool dtype; cast to the
    weights' dtype) and returns a :class:`TCNOutput` with ``spike_logit`` (B, T), ``soma`` (B, T) and
    ``dendritic`` (B, K, T) or None. The output at time ``t`` depends only on inputs at times ``<= t``.
    ``x`` may also be the :class:`~neurodepth_lib.nets.sparse.SparseEvents` of such an input
    (:func:`~neurodepth_lib.nets.sparse.trial_events`): the first layer then runs on those events whatever
    ``first_layer`` says (``first_layer`` chooses how a dense ``x`` is computed), and no dense array is built.
    """

    def __init__(self, config: TCNConfig | None = None):
        super().__init__()
        config = TCNConfig() if config is None else config
        if not isinstance(config, TCNConfig):
            raise TypeError(f"config must be a TCNConfig, got {type(config).__name__}")
        self.config = config
        blocks = []
        n_in = config.n_inputs
        for i, (k, w) in enumerate(zip(config.kernel_sizes, config.widths)):
            blocks.append(_CausalBlock(n_in, w, k, config.activation, config.batch_norm,
                                       config.bn_momentum, config.bn_eps,
                                       first_layer=config.first_layer if i == 0 else None))
            n_in = w
        self.hidden = nn.ModuleList(blocks)
        self.spike_head = nn.Conv1d(n_in, 1, kernel_size=1)
        self.soma_head = nn.Conv1d(n_in, 1, kernel_size=1)
        self.dendritic_head = nn.Conv1d(n_in, config.n_dendritic, kernel_size=1) \
            if config.n_dendritic > 0 else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re-)initialise every weight as the paper does; draws from torch's global RNG."""
        c = self.config

        def trunc(weight, std):
            if std == 0:
                nn.init.zeros_(weight)
            else:
                cut = c.init_truncation_std * std
                # drawn in the standard layout and copied, so that a seed gives the same values whatever
                # the memory layout of the weight (the first layer's may be tap-major)
                values = torch.empty(weight.shape, dtype=weight.dtype, device=weight.device)
                nn.init.trunc_normal_(values, mean=0.0, std=std, a=-cut, b=cut)
                with torch.no_grad():
                    weight.copy_(values)

        for block in self.hidden:
            trunc(block.conv.weight, c.hidden_init_std)
            nn.init.constant_(block.conv.bias, c.hidden_bias_init)
            if block.bn is not None:
                block.bn.reset_parameters()
        trunc(self.spike_head.weight, c.spike_init_std)
        nn.init.constant_(self.spike_head.bias, c.spike_bias_init)
        trunc(self.soma_head.weight, c.soma_init_std)
        nn.init.constant_(self.soma_head.bias, c.soma_bias_init)
        if self.dendritic_head is not None:
            trunc(self.dendritic_head.weight, c.dendritic_init_std)
            nn.init.zeros_(self.dendritic_head.bias)

    def l2_weights(self) -> list[torch.Tensor]:
        """The kernels the paper's L2 penalty (1e-8 per layer) applies to: every hidden convolution and
        the spike head. Biases, BatchNorm and the soma/dendritic heads carry no penalty in the paper."""
        return [b.conv.weight for b in self.hidden] + [self.spike_head.weight]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(batch, n_inputs, time)`` with time >= 1."""
        check_network_input(x, self.config.n_inputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden layer, ``(batch, widths[-1], time)``."""
        self.check_input(x)
        h = x  # the first block casts (the sparse path reads the events of x as they are)
        for block in self.hidden:
            h = block(h)
        return h

    def first_layer_path(self, x: torch.Tensor) -> str:
        """``"sparse"`` or ``"dense"``: how the first layer would compute ``x`` under ``config.first_layer``
        (``"auto"``: sparse on the CPU when at most :data:`neurodepth_lib.nets.sparse.SPARSE_MAX_DENSITY` of the
        input bins are non-zero and no input gradient is needed); ``"events"`` for a ``SparseEvents`` input."""
        self.check_input(x)
        if isinstance(x, _sparse.SparseEvents):
            return "events"
        mode = self.config.first_layer
        if mode == "auto" and x.requires_grad:
            return "dense"
        return _sparse.choose_path(x, mode)

    def set_first_layer(self, mode: str) -> "TCN":
        """Switch how the first layer is computed (``"auto"``, ``"dense"``, ``"sparse"``); the weights are
        kept. Returns the model."""
        self.config = self.config.replace(first_layer=mode)
        block = self.hidden[0]
        block.first_layer = mode
        if mode != "dense":
            _sparse.tap_major_(block.conv)
        elif not block.conv.weight.is_contiguous():  # the layout conv1d reads without a copy
            with torch.no_grad():
                block.conv.weight.data = block.conv.weight.data.contiguous()
        return self

    def forward(self, x: torch.Tensor) -> TCNOutput:
        h = self.features(x)
        # the three 1x1 heads as one matrix product over (batch, time) rows: the same arithmetic as the
        # 1x1 convolutions (whose modules hold the parameters), without a convolution's set-up costs, which
        # dominate a small network's training step
        heads = [self.spike_head, self.soma_head] + ([self.dendritic_head] if self.dendritic_head is not None else [])
        weight = torch.cat([head.weight[:, :, 0] for head in heads])
        bias = torch.cat([head.bias for head in heads])
        y = F.linear(h.transpose(1, 2), weight, bias)  # (B, T, 2 + K)
        dend = y[..., 2:].transpose(1, 2) if self.dendritic_head is not None else None
        return TCNOutput(y[..., 0], y[..., 1], dend)

    def extra_repr(self) -> str:
        return f"name={self.config.name}, receptive_field_ms={self.config.receptive_field_ms}"


# ---- counting ---------------------------------------------------------------------------------------
def count_parameters(model_or_config: nn.Module | TCNConfig, trainable_only: bool = True) -> int:
    """Number of parameters of a model, or of the model a config would build.

    For a config the formula is (paper_facts 2.1): per hidden layer ``n_in * width * kernel + width``
    (biases) ``+ 2 * width`` with BatchNorm (scale and shift; running statistics are buffers, not
    parameters), plus the heads ``(width_last + 1) * (2 + n_dendritic)``.
    """
    if isinstance(model_or_config, TCNConfig):
        c = model_or_config
        total, n_in = 0, c.n_inputs
        for k, w in zip(c.kernel_sizes, c.widths):
            total += n_in * w * k + w + (2 * w if c.batch_norm else 0)
            n_in = w
        return total + (n_in + 1) * (2 + c.n_dendritic)
    if isinstance(model_or_config, nn.Module):
        return sum(p.numel() for p in model_or_config.parameters() if p.requires_grad or not trainable_only)
    raise TypeError(f"count_parameters needs a TCNConfig or an nn.Module, got {type(model_or_config).__name__}")


def macs_per_ms(config: TCNConfig | nn.Module) -> int:
    """Multiply-accumulates needed for one 1-ms output step: ``sum_k n_in * width * kernel`` over the hidden
    layers plus ``width_last * (2 + n_dendritic)`` for the heads (biases, ReLU and BatchNorm, which cost
    one operation per channel, are left out). About 9.23 M for the 7x128x153 model, 80 % of it in the
    dense 1,278-input first layer."""
    c = config.config if isinstance(config, TCN) else config
    if not isinstance(c, TCNConfig):
        raise TypeError(f"macs_per_ms needs a TCNConfig or a TCN, got {type(config).__name__}")
    total, n_in = 0, c.n_inputs
    for k, w in zip(c.kernel_sizes, c.widths):
        total += n_in * w * k
        n_in = w
    return total + n_in * (2 + c.n_dendritic)

