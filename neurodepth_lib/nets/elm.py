"""The Expressive Leaky Memory (ELM) neuron and its Branch variant (Spieler, Rahaman, Martius, Schölkopf and
Levina, ICLR 2024, arXiv 2306.16922): a small recurrent model of a whole neuron, written here from the paper's
equations and trained by our one training loop with the TCNs' targets.

The equations (one step per 1-ms bin, ``dt = 1 ms``)
----------------------------------------------------
Input ``x_t`` (``n_inputs`` synapses, 1 where a synapse received a spike in bin ``t``). Synapses, branches,
memory and read-out::

    s_t      = kappa_s * s_{t-1} + w_s * x_t                     synaptic traces, kappa_s = exp(-dt / tau_s)
    b_t      = sum of s_t over the synapses of each branch       dendritic branches (ELM: one per synapse)
    dm_t     = lecun_tanh(MLP([b_t, kappa_m * m_{t-1}]))         integration mechanism
    m_t      = kappa_m * m_{t-1} + lambda * (1 - kappa_m) * dm_t  leaky memory, kappa_m = exp(-dt / tau_m)
    y_t      = W_y m_t + b_y                                      read-out

``w_s >= 0`` (a ReLU of the stored weight: the MLP's first layer gives each branch its sign);
``lecun_tanh(a) = 1.7159 tanh(2 a / 3)``; the MLP has ``mlp_layers`` ReLU hidden layers of ``mlp_hidden``
units and a linear output of ``n_memory`` units. ``|dm| < 1.7159`` keeps every memory unit within
``+-1.7159 lambda``: ``m_t`` is a leaky average of the updates with timescale ``tau_m``. The memory timescales
start log-spaced between ``tau_m_min_ms`` and ``tau_m_max_ms`` and, when learned, stay inside that range (a
scaled sigmoid of the stored value); the synaptic timescale starts at ``tau_s_ms``.

The read-out ``y_t`` has the TCN's heads: row 0 is the spike logit (``sigmoid`` gives the spike probability),
row 1 the soma target (mV), rows ``2 ..`` the dendritic components. :class:`ELM` returns the same
:class:`~neurodepth_lib.nets.tcn.TCNOutput` as :class:`~neurodepth_lib.nets.tcn.TCN`, so the training loop,
prediction and scoring treat both alike.

The Branch-ELM (``n_branches`` set) gives every branch ``synapses_per_branch`` neighbouring inputs (windows
of the input order, spaced ``ceil(n_inputs / n_branches)`` apart, so that wide windows overlap) and feeds the
MLP the ``n_branches`` branch sums instead of every synapse: the MLP's first layer shrinks from
``(n_inputs + n_memory) x mlp_hidden`` to ``(n_branches + n_memory) x mlp_hidden`` weights. A synapse is an
(input, branch) pair with its own weight. With ``routing="interleave"`` the input order first interleaves
the two halves of the channels (the L5PC's channels ``k`` and ``639 + k`` are the excitatory and the
inhibitory synapse of segment ``k``), so that a branch holds both kinds of input of neighbouring segments.
The paper's NeuronIO models used 45 branches of 100 synapses on the same channel layout.

How it is computed
------------------
Everything before the MLP's nonlinearity is linear in ``x`` and runs for a whole window at once:

- with one fixed synaptic timescale (``learn_tau_s=False``, the paper's setting), the synaptic part of the
  first MLP layer is ``U_t = trace(E x)_t`` with ``E = W_in,syn @ A`` (``A`` routes inputs to branches with
  the weights ``w_s``): one product of the input with an ``(mlp_hidden, n_inputs)`` matrix, computed from
  the input *events* on the CPU (:func:`neurodepth_lib.nets.sparse.sparse_causal_conv1d` with one tap; about
  1 % of the L5PC's input bins are events), followed by one leaky trace on ``mlp_hidden`` channels;
- with learned per-branch synaptic timescales, the branch inputs ``A x`` (from events for the Branch-ELM)
  are traced per branch and then multiplied by ``W_in,syn``.

Only the small memory state is recurrent: a loop over time with ``mlp_layers + 2`` small matrix products per step
(in :mod:`.recurrence`, beside the leaky trace), compiled with TorchScript, and a hand-written backward pass
(back-propagation through time, tested against autograd) that keeps the per-step work to the chain rule and does
the weight gradients as a few large matrix products afterwards. The loop runs on one intra-op thread (its
operations are too small to share) and is compiled on first use (a few seconds). Measured on our shared 2-core
machine (one thread, load about 10, 2026-12-05; minimum of 10 steps): a training step on 16 windows of 500 ms of
the I&F's 100 inputs takes 75 ms for the 20-unit ELM (11 ms for the one-unit network); on 8 windows of 400 ms of
the L5PC's 1,278 inputs, 86 ms for the 7.8k-parameter Branch-ELM, 140 ms for the 4 x 32 TCN and 1.24 s for the 7 x
128 x 153 TCN. The recurrence costs the same per millisecond whatever the input, so the ELM's step time grows with
the window, not with the number of synapses.

Edges and warm-up
-----------------
The model starts every window from zero traces and zero memory, as the TCN sees zeros before a window.
It has no finite receptive field: the output depends on all earlier input through the memory. For the
checks that ask for one, ``receptive_field_ms`` is the *memory horizon* ``ceil(3 tau_m_max_ms)``, after
which the leak alone has shrunk the slowest unit's initial state to ``e^-3`` (5 %) (a convention, not a
bound: the integration can hold information longer). The paper's 400-ms training windows still work (the
loop only requires a window to cover a TCN's receptive field); the scoring protocol starts at 500 ms.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from .._checks import finite_float, positive_float, positive_int
from . import sparse as _sparse
from .recurrence import LECUN_TANH_SCALE, lecun_tanh, leaky_trace, memory_recurrence
from .tcn import TCNOutput, check_network_input

__all__ = ["ELMConfig", "ELM", "ELMState", "ROUTINGS", "SYNAPSE_PATHS", "LECUN_TANH_SCALE", "lecun_tanh",
           "branch_routing", "leaky_trace", "memory_recurrence"]

ROUTINGS = ("interleave", "contiguous")
SYNAPSE_PATHS = _sparse.FIRST_LAYER_MODES  # ("auto", "dense", "sparse"): how the input product is computed
_DT_MS = 1.0  # one step per 1-ms bin, the data's resolution


# ---- configuration ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ELMConfig:
    """Everything that defines an ELM or Branch-ELM neuron.

    Parameters
    ----------
    n_inputs : number of input channels (synapses of the modelled cell).
    n_memory : memory units ``d_m`` (paper: 1 to 100; 20 in the 8k-parameter Branch-ELM).
    mlp_hidden : units per hidden layer of the integration MLP (None = ``2 * n_memory``, the paper's).
    mlp_layers : hidden layers of the MLP (paper: 1).
    n_branches : None = the ELM (every input is its own synapse and branch); a number = the Branch-ELM.
    synapses_per_branch : Branch-ELM only: inputs per branch (None = ``ceil(n_inputs / n_branches)``, no
        overlap; the paper's NeuronIO models: 100, i.e. windows overlapping about 3.4 times).
    routing : Branch-ELM only: ``"interleave"`` (default; see the module notes) or ``"contiguous"``.
    memory_gain : ``lambda``, the scale of the memory update (paper: 5).
    tau_m_min_ms, tau_m_max_ms : range of the memory timescales (paper: 1 and 150 ms for NeuronIO); they
        start log-spaced over it.
    learn_tau_m : learn the memory timescales (within the range). The paper's NeuronIO models kept them fixed.
    tau_s_ms : synaptic timescale (paper: 5 ms). learn_tau_s : learn one per branch (per synapse for the ELM);
        the paper kept it fixed, which also lets the input product run on ``mlp_hidden`` channels.
    w_s_init : initial synaptic weight (paper: 0.5).
    n_dendritic : channels of the dendritic read-out (0 = none), as the TCN's dendritic head.
    spike_bias_init, soma_bias_init : initial read-out biases of the spike logit and the soma.
    synapse_path : how the input product is computed (not what): ``"auto"`` (from events on the CPU when at
        most :data:`neurodepth_lib.nets.sparse.SPARSE_MAX_DENSITY` of the input bins are non-zero),
        ``"dense"`` or ``"sparse"``. Left out of :meth:`to_dict` when ``"auto"``.
    """

    n_inputs: int = 1278
    n_memory: int = 20
    mlp_hidden: int | None = None
    mlp_layers: int = 1
    n_branches: int | None = None
    synapses_per_branch: int | None = None
    routing: str = "interleave"
    memory_gain: float = 5.0
    tau_m_min_ms: float = 1.0
    tau_m_max_ms: float = 150.0
    learn_tau_m: bool = True
    tau_s_ms: float = 5.0
    learn_tau_s: bool = False
    w_s_init: float = 0.5
    n_dendritic: int = 0
    spike_bias_init: float = -2.0
    soma_bias_init: float = 0.0
    synapse_path: str = "auto"

    kind = "elm"  # a class attribute, not a field: what model files call this family

    def __post_init__(self):
        def set_(name, value):
            object.__setattr__(self, name, value)

        for name in ("n_inputs", "n_memory", "mlp_layers"):
            set_(name, positive_int(getattr(self, name), name))
        if self.mlp_hidden is not None:
            set_("mlp_hidden", positive_int(self.mlp_hidden, "mlp_hidden"))
        if self.n_branches is None:
            if self.synapses_per_branch is not None:
                raise ValueError("synapses_per_branch belongs to the Branch-ELM: give n_branches too "
                                 f"(got synapses_per_branch={self.synapses_per_branch!r}, n_branches=None)")
        else:
            set_("n_branches", positive_int(self.n_branches, "n_branches"))
            if self.n_branches > self.n_inputs:
                raise ValueError(f"n_branches={self.n_branches} exceeds n_inputs={self.n_inputs}: a branch "
                                 f"would hold no input")
            if self.synapses_per_branch is not None:
                set_("synapses_per_branch", positive_int(self.synapses_per_branch, "synapses_per_branch"))
                if self.synapses_per_branch > self.n_inputs:
                    raise ValueError(f"synapses_per_branch={self.synapses_per_branch} exceeds n_inputs="
                                     f"{self.n_inputs}")
        if self.routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {ROUTINGS}, got {self.routing!r}")
        set_("memory_gain", positive_float(self.memory_gain, "memory_gain"))
        set_("tau_m_min_ms", positive_float(self.tau_m_min_ms, "tau_m_min_ms"))
        set_("tau_m_max_ms", positive_float(self.tau_m_max_ms, "tau_m_max_ms"))
        if not self.tau_m_max_ms > self.tau_m_min_ms:
            raise ValueError(f"tau_m_max_ms ({self.tau_m_max_ms}) must exceed tau_m_min_ms ({self.tau_m_min_ms})")
        set_("tau_s_ms", positive_float(self.tau_s_ms, "tau_s_ms"))
        set_("w_s_init", finite_float(self.w_s_init, "w_s_init"))
        for name in ("learn_tau_m", "learn_tau_s"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
            set_(name, bool(getattr(self, name)))
        n_dend = self.n_dendritic
        if isinstance(n_dend, bool) or not isinstance(n_dend, (int, np.integer)) or n_dend < 0:
            raise ValueError(f"n_dendritic must be an integer >= 0, got {n_dend!r}")
        set_("n_dendritic", int(n_dend))
        for name in ("spike_bias_init", "soma_bias_init"):
            set_(name, finite_float(getattr(self, name), name))
        if self.synapse_path not in SYNAPSE_PATHS:
            raise ValueError(f"synapse_path must be one of {SYNAPSE_PATHS}, got {self.synapse_path!r}")

    # ---- derived properties -------------------------------------------------------------------------
    @property
    def is_branch(self) -> bool:
        """True for the Branch-ELM."""
        return self.n_branches is not None

    @property
    def hidden(self) -> int:
        """Units per hidden MLP layer (``mlp_hidden`` or ``2 * n_memory``)."""
        return self.mlp_hidden if self.mlp_hidden is not None else 2 * self.n_memory

    @property
    def branches(self) -> int:
        """Inputs to the MLP from the synapses: ``n_branches``, or ``n_inputs`` for the ELM."""
        return self.n_branches if self.is_branch else self.n_inputs

    @property
    def branch_width(self) -> int:
        """Inputs per branch (1 for the ELM)."""
        if not self.is_branch:
            return 1
        if self.synapses_per_branch is not None:
            return self.synapses_per_branch
        return math.ceil(self.n_inputs / self.n_branches)

    @property
    def n_synapses(self) -> int:
        """(input, branch) pairs, each with its own weight ``w_s``."""
        return int(branch_routing(self)[0].size)

    @property
    def n_outputs(self) -> int:
        """Read-out rows: spike, soma and the dendritic components."""
        return 2 + self.n_dendritic

    @property
    def memory_horizon_ms(self) -> int:
        """``ceil(3 tau_m_max_ms)``: after it the leak alone has shrunk the slowest memory unit's initial state
        to ``e^-3`` (5 %). A convention for warm-ups and edge checks, not a bound (see the module notes)."""
        return int(math.ceil(3.0 * self.tau_m_max_ms))

    @property
    def receptive_field_ms(self) -> int:
        """The memory horizon: what the receptive-field checks of prediction and scoring use for a recurrent
        model (its output depends on all earlier input)."""
        return self.memory_horizon_ms

    @property
    def recurrent(self) -> bool:
        """Always True: training windows need not cover ``receptive_field_ms``."""
        return True

    @property
    def name(self) -> str:
        """E.g. ``"ELM__MxH_20x40"`` or ``"BranchELM__MxHxBxS_20x40x45x100"`` (memory units, MLP width,
        branches, inputs per branch; ``xL2`` appended for two hidden MLP layers)."""
        layers = f"xL{self.mlp_layers}" if self.mlp_layers != 1 else ""
        if self.is_branch:
            return f"BranchELM__MxHxBxS_{self.n_memory}x{self.hidden}x{self.n_branches}x{self.branch_width}{layers}"
        return f"ELM__MxH_{self.n_memory}x{self.hidden}{layers}"

    def describe(self) -> str:
        """One line for logs: name, memory, MLP, branches, timescales."""
        branch = (f", {self.n_branches} branches of {self.branch_width} inputs ({self.n_synapses} synapses, "
                  f"{self.routing})" if self.is_branch else f", {self.n_inputs} synapses")
        return (f"{self.name} ({self.n_memory} memory units, tau_m {self.tau_m_min_ms:g}-{self.tau_m_max_ms:g} ms"
                f"{' learned' if self.learn_tau_m else ''}, MLP {self.mlp_layers}x{self.hidden}{branch}, "
                f"tau_s {self.tau_s_ms:g} ms{' learned' if self.learn_tau_s else ''}"
                f"{', dendritic read-out ' + str(self.n_dendritic) if self.n_dendritic else ''})")

    # ---- counting -----------------------------------------------------------------------------------
    def count_parameters(self) -> int:
        """Trainable parameters: synaptic weights (one per synapse), learned timescales (one per memory unit
        and one per branch when learned), the MLP (``(branches + n_memory + 1) * hidden`` for the first
        layer, ``(hidden + 1) * hidden`` per further layer, ``(hidden + 1) * n_memory`` for the output) and
        the read-out ``(n_memory + 1) * (2 + n_dendritic)``."""
        h = self.hidden
        total = self.n_synapses
        total += self.n_memory if self.learn_tau_m else 0
        total += self.branches if self.learn_tau_s else 0
        total += (self.branches + self.n_memory + 1) * h + (self.mlp_layers - 1) * (h + 1) * h + (h + 1) * self.n_memory
        return total + (self.n_memory + 1) * self.n_outputs

    def macs_per_ms(self) -> int:
        """Multiply-accumulates of one 1-ms step of the equations as written, dense (every synapse updated):
        ``2 n_synapses`` (trace decay and weighted input) + the MLP's weights + ``2 n_memory`` (memory decay
        and update) + the read-out ``n_memory * (2 + n_dendritic)``. Nonlinearities, biases and the branch
        sums (additions) are left out, as :func:`neurodepth_lib.nets.tcn.macs_per_ms` leaves out biases and
        BatchNorm. With sparse input the weighted-input term costs only for the synapses that fired."""
        h = self.hidden
        mlp = (self.branches + self.n_memory) * h + (self.mlp_layers - 1) * h * h + h * self.n_memory
        return 2 * self.n_synapses + mlp + 2 * self.n_memory + self.n_memory * self.n_outputs

    # ---- serialisation ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """A JSON-able dict with ``"kind": "elm"`` that :meth:`from_dict` turns back into this config."""
        d = {"kind": self.kind, **asdict(self)}
        if d["synapse_path"] == "auto":
            del d["synapse_path"]
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "ELMConfig":
        """Rebuild a config from :meth:`to_dict`'s output; unknown keys are an error."""
        if not isinstance(data, dict):
            raise TypeError(f"ELMConfig.from_dict needs a dict, got {type(data).__name__}")
        kwargs = dict(data)
        kind = kwargs.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ValueError(f"not an ELM configuration (kind {kind!r})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown ELMConfig field(s) {unknown}; known fields: {sorted(known)}")
        return cls(**kwargs)

    def replace(self, **changes) -> "ELMConfig":
        """A copy with some fields changed (validated again)."""
        return type(self).from_dict({**self.to_dict(), **changes})


def _input_order(n: int, routing: str) -> np.ndarray:
    """Channel indices in branch order: ``interleave`` alternates the first and second half of the channels
    (``0, h, 1, h + 1, ...`` with ``h = ceil(n / 2)``), ``contiguous`` keeps them as they are."""
    if routing == "contiguous" or n == 1:
        return np.arange(n)
    h = (n + 1) // 2
    order = np.empty(n, dtype=np.int64)
    order[0::2] = np.arange(h)
    order[1::2] = np.arange(h, n)
    return order


def branch_routing(config: ELMConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(input_index, branch_index)`` of every synapse, sorted by branch.

    ELM: synapse ``i`` is input ``i`` on branch ``i``. Branch-ELM: branch ``j`` takes the positions
    ``j * stride ... j * stride + synapses_per_branch - 1`` (those below ``n_inputs``) of the input order,
    ``stride = ceil(n_inputs / n_branches)``; every input is on at least one branch.
    """
    n = config.n_inputs
    if not config.is_branch:
        idx = np.arange(n)
        return idx, idx.copy()
    stride = math.ceil(n / config.n_branches)
    order = _input_order(n, config.routing)
    inputs, branches = [], []
    for j in range(config.n_branches):
        pos = np.arange(j * stride, min(n, j * stride + config.branch_width))
        inputs.append(order[pos])
        branches.append(np.full(pos.size, j))
    return np.concatenate(inputs).astype(np.int64), np.concatenate(branches).astype(np.int64)


# ---- the network ------------------------------------------------------------------------------------
class ELMState(NamedTuple):
    """Where a run stopped: ``trace`` (the synaptic trace state: (B, mlp_hidden) with a fixed synaptic
    timescale, (B, branches) with learned ones) and ``memory`` (B, n_memory). :meth:`ELM.run` continues from it."""

    trace: torch.Tensor
    memory: torch.Tensor


def _scaled_sigmoid_inverse(value: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    frac = ((value - lo) / (hi - lo)).clamp(1e-6, 1 - 1e-6)
    return torch.log(frac / (1 - frac))


class ELM(nn.Module):
    """The Expressive Leaky Memory neuron (and the Branch-ELM), see the module notes.

    Parameters
    ----------
    config : an :class:`ELMConfig` (default ``ELMConfig()``: the ELM on the L5PC's 1,278 inputs).

    ``forward(x)`` takes ``x`` of shape ``(batch, n_inputs, time)`` (any numeric or bool dtype) and returns a
    :class:`~neurodepth_lib.nets.tcn.TCNOutput` (``spike_logit`` (B, T), ``soma`` (B, T), ``dendritic``
    (B, K, T) or None), starting from zero state. The output at time ``t`` depends only on inputs at times
    ``<= t``. :meth:`run` also takes and returns the state, to continue a trace in pieces. ``x`` may also be
    the :class:`~neurodepth_lib.nets.sparse.SparseEvents` of such an input
    (:func:`~neurodepth_lib.nets.sparse.trial_events`): the input product then runs on those events whatever
    ``synapse_path`` says, and no dense array is built (except for the per-synapse traces of an ELM with
    learned synaptic timescales, which are dense by nature).
    """

    def __init__(self, config: ELMConfig | None = None):
        super().__init__()
        config = ELMConfig() if config is None else config
        if not isinstance(config, ELMConfig):
            raise TypeError(f"config must be an ELMConfig, got {type(config).__name__}")
        self.config = config
        c = config
        inputs, branches = branch_routing(c)
        self.register_buffer("synapse_input", torch.as_tensor(inputs), persistent=False)
        self.register_buffer("synapse_branch", torch.as_tensor(branches), persistent=False)
        self.w_s_raw = nn.Parameter(torch.empty(len(inputs)))
        tau_m_raw = torch.empty(c.n_memory)
        if c.learn_tau_m:
            self.tau_m_raw = nn.Parameter(tau_m_raw)
        else:
            self.register_buffer("tau_m_raw", tau_m_raw)
        log_tau_s = torch.empty(c.branches if c.learn_tau_s else 1)
        if c.learn_tau_s:
            self.log_tau_s = nn.Parameter(log_tau_s)
        else:
            self.register_buffer("log_tau_s", log_tau_s)
        h = c.hidden
        self.mlp_in = nn.Linear(c.branches + c.n_memory, h)
        self.mlp_hidden = nn.ModuleList(nn.Linear(h, h) for _ in range(c.mlp_layers - 1))
        self.mlp_out = nn.Linear(h, c.n_memory)
        self.readout = nn.Linear(c.n_memory, c.n_outputs)
        # "sparse" (events found in a dense x), "dense", "events" (x given as SparseEvents) or "elementwise":
        # how the last forward computed the input
        self.last_path = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """(Re-)initialise: ``w_s = w_s_init``, memory timescales log-spaced over their range, ``tau_s``,
        PyTorch's default for the MLP and read-out weights, the read-out biases from the config; draws from
        torch's global RNG."""
        c = self.config
        with torch.no_grad():
            self.w_s_raw.fill_(c.w_s_init)
            tau = torch.logspace(math.log10(c.tau_m_min_ms), math.log10(c.tau_m_max_ms), c.n_memory,
                                 dtype=torch.float64) if c.n_memory > 1 else \
                torch.tensor([math.sqrt(c.tau_m_min_ms * c.tau_m_max_ms)], dtype=torch.float64)
            self.tau_m_raw.copy_(_scaled_sigmoid_inverse(tau, c.tau_m_min_ms, c.tau_m_max_ms))
            self.log_tau_s.fill_(math.log(c.tau_s_ms))
        for layer in [self.mlp_in, *self.mlp_hidden, self.mlp_out, self.readout]:
            layer.reset_parameters()
        with torch.no_grad():
            self.readout.bias.zero_()
            self.readout.bias[0] = c.spike_bias_init
            self.readout.bias[1] = c.soma_bias_init

    # ---- the model's quantities ---------------------------------------------------------------------
    @property
    def tau_m(self) -> torch.Tensor:
        """Memory timescales (ms), inside ``[tau_m_min_ms, tau_m_max_ms]``."""
        c = self.config
        return c.tau_m_min_ms + (c.tau_m_max_ms - c.tau_m_min_ms) * torch.sigmoid(self.tau_m_raw)

    @property
    def tau_s(self) -> torch.Tensor:
        """Synaptic timescale(s) (ms): one, or one per branch when learned."""
        return torch.exp(self.log_tau_s)

    @property
    def w_s(self) -> torch.Tensor:
        """Synaptic weights (>= 0), one per synapse in :func:`branch_routing` order."""
        return torch.relu(self.w_s_raw)

    def l2_weights(self) -> list[torch.Tensor]:
        """What the loop's L2 penalty applies to (as the TCN's hidden kernels and spike head): the MLP's
        weight matrices and the spike read-out row."""
        return [self.mlp_in.weight, *(m.weight for m in self.mlp_hidden), self.mlp_out.weight,
                self.readout.weight[:1]]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``(batch, n_inputs, time)`` with time >= 1."""
        check_network_input(x, self.config.n_inputs)

    def routing_matrix(self) -> torch.Tensor:
        """``A`` (branches, n_inputs): ``A[j, i]`` is the weight of input ``i``'s synapse on branch ``j``."""
        c = self.config
        a = self.w_s.new_zeros(c.branches, c.n_inputs)
        return a.index_put((self.synapse_branch, self.synapse_input), self.w_s, accumulate=True)

    def _project(self, x: torch.Tensor | _sparse.SparseEvents, weight: torch.Tensor) -> torch.Tensor:
        """``weight @ x`` over the channel axis: (K, C) x (B, C, T) -> (B, K, T), from the input events when
        ``synapse_path`` says so, or when ``x`` is given as events."""
        if isinstance(x, _sparse.SparseEvents):
            self.last_path = "events"
            return _sparse.sparse_causal_conv1d(x, weight.unsqueeze(-1), None)
        mode = self.config.synapse_path
        events = None
        if mode == "sparse" or (mode == "auto" and x.device.type == "cpu" and not x.requires_grad):
            events = _sparse.find_events(x, max_density=None if mode == "sparse" else _sparse.SPARSE_MAX_DENSITY)
        if events is not None:
            self.last_path = "sparse"
            return _sparse.sparse_causal_conv1d(x, weight.unsqueeze(-1), None, events=events)
        self.last_path = "dense"
        return torch.einsum("kc,bct->bkt", weight, x.to(weight.dtype))

    def run(self, x: torch.Tensor, state: ELMState | None = None) -> tuple[TCNOutput, ELMState]:
        """The outputs for ``x`` (batch, n_inputs, time) from ``state`` (None = zeros), and the state after
        the last step: running a trace in pieces, each from the state the last one left, gives the outputs
        of one run."""
        self.check_input(x)
        c = self.config
        n_b = x.shape[0]
        w_in = self.mlp_in.weight
        w_syn, w_mem = w_in[:, :c.branches], w_in[:, c.branches:]
        rate_s = _DT_MS / self.tau_s
        if state is not None:
            trace0, m0 = state
        else:
            trace0 = None
            m0 = w_in.new_zeros(n_b, c.n_memory)
        if not c.learn_tau_s:
            # one synaptic timescale: trace(W_syn A x) = W_syn trace(A x); the product runs on hidden channels
            if c.is_branch:
                e = w_syn @ self.routing_matrix()
            else:
                e = w_syn * self.w_s
            trace = leaky_trace(self._project(x, e), rate_s.reshape(()), trace0)  # (B, H, T)
            trace_last = trace[..., -1]
            u = trace.permute(2, 0, 1) + self.mlp_in.bias
        else:
            if c.is_branch:
                z = self._project(x, self.routing_matrix())
            else:
                self.last_path = "elementwise"
                # every synapse keeps its own trace: (B, n_inputs, T) numbers whatever the input's form
                dense = x.to_dense(w_in.dtype) if isinstance(x, _sparse.SparseEvents) else x.to(w_in.dtype)
                z = dense * self.w_s[:, None]
            trace = leaky_trace(z, rate_s, trace0)  # (B, branches, T)
            trace_last = trace[..., -1]
            u = torch.einsum("hk,bkt->tbh", w_syn, trace) + self.mlp_in.bias
        kappa = torch.exp(-_DT_MS / self.tau_m)
        ms = memory_recurrence(u, m0, kappa, c.memory_gain, w_mem, self.mlp_out.weight, self.mlp_out.bias,
                               [m.weight for m in self.mlp_hidden], [m.bias for m in self.mlp_hidden])
        y = self.readout(ms)  # (T, B, 2 + K)
        dend = y[..., 2:].permute(1, 2, 0) if c.n_dendritic else None
        out = TCNOutput(y[..., 0].t(), y[..., 1].t(), dend)
        return out, ELMState(trace_last, ms[-1])

    def forward(self, x: torch.Tensor) -> TCNOutput:
        return self.run(x)[0]

    def extra_repr(self) -> str:
        return f"name={self.config.name}, memory_horizon_ms={self.config.memory_horizon_ms}"
