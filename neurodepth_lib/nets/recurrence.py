"""The ELM's time-stepping kernels (see :mod:`.elm` for the model and its equations): the leaky synaptic
trace, computed in chunks as matrix products, and the memory recurrence, a TorchScript loop with a
hand-written back-propagation through time (tested against :func:`memory_recurrence_reference`, the same
recurrence written plainly with autograd).
"""
from __future__ import annotations

import warnings
from typing import List, Tuple

import torch
from torch.nn import functional as F

from . import sparse as _sparse

__all__ = ["LECUN_TANH_SCALE", "lecun_tanh", "leaky_trace", "memory_recurrence", "memory_recurrence_reference"]

LECUN_TANH_SCALE = 1.7159  # lecun_tanh(a) = 1.7159 tanh(2 a / 3): slope ~1 at 0, |value| < 1.7159
_TANH_SLOPE = 2.0 / 3.0


def lecun_tanh(a: torch.Tensor) -> torch.Tensor:
    """``1.7159 tanh(2 a / 3)``, the bounded nonlinearity of the memory update."""
    return LECUN_TANH_SCALE * torch.tanh(_TANH_SLOPE * a)


# ---- the leaky trace --------------------------------------------------------------------------------
_TRACE_CHUNK = 32


def leaky_trace(z: torch.Tensor, rate: torch.Tensor, s0: torch.Tensor | None = None) -> torch.Tensor:
    """``s_t = exp(-rate) s_{t-1} + z_t`` along the last axis of ``z`` (batch, channels, time), from
    ``s_{-1} = s0`` (default zeros), differentiable in ``z``, ``rate`` and ``s0``.

    ``rate`` (``dt / tau``) is a scalar or one value per channel. Computed in chunks of 32 steps: inside a
    chunk as a product with the (32 x 32) matrix of decays ``exp(-rate (i - j))``, ``i >= j`` (no negative
    powers, so no overflow), then one carry per chunk.
    """
    n_b, n_c, n_t = z.shape
    length = min(_TRACE_CHUNK, n_t)
    n_chunks = -(-n_t // length)
    zp = F.pad(z, (0, n_chunks * length - n_t)).reshape(n_b, n_c, n_chunks, length)
    i = torch.arange(length, device=z.device, dtype=z.dtype)
    lag = i[:, None] - i[None, :]
    rate = rate.to(z.dtype)
    per_channel = rate.dim() > 0 and rate.numel() > 1
    r = rate.reshape(-1, 1, 1) if per_channel else rate.reshape(1, 1)
    decay = torch.exp(-r * lag.clamp(min=0)) * (lag >= 0)  # (C, L, L) or (L, L)
    if per_channel:
        local = torch.einsum("cij,bcnj->bcni", decay, zp)
        carry_decay = torch.exp(-rate.reshape(-1, 1) * (i + 1))  # (C, L)
    else:
        local = zp @ decay.t()
        carry_decay = torch.exp(-r.reshape(1) * (i + 1))  # (L,)
    carry = s0 if s0 is not None else z.new_zeros(n_b, n_c)
    blocks = []
    for k in range(n_chunks):
        block = local[:, :, k] + carry[..., None] * carry_decay
        blocks.append(block)
        carry = block[..., -1]
    return torch.stack(blocks, dim=2).reshape(n_b, n_c, n_chunks * length)[..., :n_t]


# ---- the memory recurrence --------------------------------------------------------------------------
def _memory_forward(u: torch.Tensor, m0: torch.Tensor, kappa: torch.Tensor, gain: float, w_mem: torch.Tensor,
                    hidden_w: List[torch.Tensor], hidden_b: List[torch.Tensor], w_out: torch.Tensor,
                    b_out: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor], torch.Tensor]:
    """The loop of :func:`memory_recurrence`, without autograd: returns every ``m_t`` (T, B, M), every hidden
    layer's activity (T, B, H) and every ``tanh`` (T, B, M) for the backward pass. Each step writes into
    those buffers directly (``out=``): the loop is a handful of small operations per step."""
    n_t, n_b = u.shape[0], u.shape[1]
    n_m = m0.shape[1]
    c = gain * (1.0 - kappa) * 1.7159
    w_mem_t = w_mem.t().contiguous()
    w_out_t = (w_out * 0.6666666666666666).t().contiguous()  # tanh(2 a / 3): the 2/3 folded into the weights
    b_out_s = b_out * 0.6666666666666666
    hidden_t = [w.t().contiguous() for w in hidden_w]
    ms = u.new_empty(n_t, n_b, n_m)
    ths = u.new_empty(n_t, n_b, n_m)
    hs = [u.new_empty(u.shape) for _ in range(len(hidden_w) + 1)]
    mk = u.new_empty(n_b, n_m)
    m = m0
    for t in range(n_t):
        torch.mul(m, kappa, out=mk)
        h = hs[0][t]
        torch.addmm(u[t], mk, w_mem_t, out=h)
        h.relu_()
        for layer in range(len(hidden_t)):
            h_next = hs[layer + 1][t]
            torch.addmm(hidden_b[layer], h, hidden_t[layer], out=h_next)
            h_next.relu_()
            h = h_next
        th = ths[t]
        torch.tanh(torch.addmm(b_out_s, h, w_out_t), out=th)
        m = ms[t]
        torch.addcmul(mk, c, th, out=m)
    return ms, hs, ths


def _memory_backward(g_ms: torch.Tensor, m0: torch.Tensor, ms: torch.Tensor, hs: List[torch.Tensor],
                     ths: torch.Tensor, kappa: torch.Tensor, gain: float, w_mem: torch.Tensor,
                     hidden_w: List[torch.Tensor], w_out: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """Back-propagation through time for :func:`_memory_forward`. ``g_ms`` (T, B, M) is the gradient of the
    loss with respect to every ``m_t``. Returns the gradient for ``u`` and the list ``[g_m0, g_kappa,
    g_w_mem, g_w_out, g_b_out, g_hidden_w..., g_hidden_b...]``.

    The loop carries only the chain rule through the memory; everything that does not depend on the carried
    gradient (the tanh and ReLU derivatives) is computed for all steps before it, and the weight and timescale
    gradients are sums over steps computed after it as a few large products."""
    n_t, n_b, n_m = g_ms.shape
    n_hidden = len(hidden_w)
    c = gain * (1.0 - kappa) * 1.7159
    w_mem = w_mem.contiguous()  # a column slice of the first layer: strided, and read at every step
    w_out = w_out.contiguous()
    hidden_w = [w.contiguous() for w in hidden_w]
    # d m_t / d (MLP output) for every step, and the ReLU masks
    slope = (1.0 - ths * ths) * (c * 0.6666666666666666)
    masks = [(h > 0).to(h.dtype) for h in hs]
    g_u = torch.empty_like(hs[0])  # d loss / d u_t: the first layer's pre-activation
    g_o = torch.empty_like(ths)  # ... / d MLP output
    g_m = torch.empty_like(ths)  # ... / d m_t (all paths)
    g_mk = torch.empty_like(ths)  # ... / d (kappa m_{t-1})
    g_as = [torch.empty_like(hs[0]) for _ in range(n_hidden)]
    carry = torch.zeros_like(m0)
    for t in range(n_t - 1, -1, -1):
        gm = g_m[t]
        torch.add(g_ms[t], carry, out=gm)
        go = g_o[t]
        torch.mul(gm, slope[t], out=go)
        gh = go.mm(w_out)
        for layer in range(n_hidden - 1, -1, -1):
            ga = g_as[layer][t]
            torch.mul(gh, masks[layer + 1][t], out=ga)
            gh = ga.mm(hidden_w[layer])
        ga1 = g_u[t]
        torch.mul(gh, masks[0][t], out=ga1)
        gmk = g_mk[t]
        torch.addmm(gm, ga1, w_mem, out=gmk)
        carry = gmk * kappa
    m_prev_all = torch.cat([m0.unsqueeze(0), ms[:-1]], dim=0)
    # kappa enters through kappa * m_{t-1} (the leak and the MLP input) and through c = gain (1 - kappa)
    g_kappa = (g_mk * m_prev_all).sum((0, 1)) - (g_m * ths).sum((0, 1)) * (gain * 1.7159)
    flat_u = g_u.reshape(n_t * n_b, -1)
    g_w_mem = flat_u.t().mm((m_prev_all * kappa).reshape(n_t * n_b, n_m))
    flat_o = g_o.reshape(n_t * n_b, n_m)
    g_w_out = flat_o.t().mm(hs[n_hidden].reshape(n_t * n_b, -1))
    g_b_out = flat_o.sum(0)
    grads = [carry, g_kappa, g_w_mem, g_w_out, g_b_out]
    g_hidden_b: List[torch.Tensor] = []
    for layer in range(n_hidden):
        flat = g_as[layer].reshape(n_t * n_b, -1)
        grads.append(flat.t().mm(hs[layer].reshape(n_t * n_b, -1)))
        g_hidden_b.append(flat.sum(0))
    return g_u, grads + g_hidden_b


_COMPILED: dict = {}


def _compiled(name: str):
    """The TorchScript version of ``_memory_forward`` / ``_memory_backward``, compiled on first use (TorchScript
    removes most of the Python overhead of the loop's small per-step operations: measured about 2x on the
    training step); the interpreted function when TorchScript is not available."""
    fn = _COMPILED.get(name)
    if fn is None:
        plain = {"forward": _memory_forward, "backward": _memory_backward}[name]
        try:
            with warnings.catch_warnings():  # torch 2.x marks TorchScript deprecated; it still runs, and faster
                warnings.simplefilter("ignore")
                fn = torch.jit.script(plain)
        except Exception:  # pragma: no cover - TorchScript unavailable: the same function, interpreted
            fn = plain
        _COMPILED[name] = fn
    return fn


def _one_thread():
    """Run the block on one intra-op thread. The loop's operations touch a few hundred numbers each; handing
    them to a second thread costs more than the operation (measured on our shared 2-core machine under load:
    a 320-element tanh took 1.7 ms on two threads, 1.5 us on one)."""
    return _sparse.threads_for(0)  # no work is too small for one thread


class _MemoryRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, m0, kappa, gain, w_mem, w_out, b_out, *hidden):
        n = len(hidden) // 2
        hidden_w, hidden_b = list(hidden[:n]), list(hidden[n:])
        with _one_thread():
            ms, hs, ths = _compiled("forward")(u, m0, kappa, float(gain), w_mem, hidden_w, hidden_b, w_out, b_out)
        ctx.gain = float(gain)
        ctx.n_hidden = n
        ctx.save_for_backward(m0, ms, ths, kappa, w_mem, w_out, *hidden_w, *hs)
        return ms

    @staticmethod
    def backward(ctx, g_ms):
        saved = ctx.saved_tensors
        m0, ms, ths, kappa, w_mem, w_out = saved[:6]
        n = ctx.n_hidden
        hidden_w = list(saved[6:6 + n])
        hs = list(saved[6 + n:])
        with _one_thread():
            g_u, g = _compiled("backward")(g_ms.contiguous(), m0, ms, hs, ths, kappa, ctx.gain, w_mem, hidden_w,
                                           w_out)
        g_m0, g_kappa, g_w_mem, g_w_out, g_b_out = g[:5]
        rest = g[5:]
        return (g_u, g_m0, g_kappa, None, g_w_mem, g_w_out, g_b_out, *rest)


def memory_recurrence(u: torch.Tensor, m0: torch.Tensor, kappa: torch.Tensor, gain: float, w_mem: torch.Tensor,
                      w_out: torch.Tensor, b_out: torch.Tensor, hidden_w=(), hidden_b=()) -> torch.Tensor:
    """Run the memory over time; returns every ``m_t`` (T, B, M).

    ``u`` (T, B, H): the synaptic part of the first MLP layer plus its bias, for every step; ``m0`` (B, M)
    the initial memory; ``kappa`` (M,) the memory decays; ``gain`` ``lambda``; ``w_mem`` (H, M) the first
    layer's weights on ``kappa * m_{t-1}``; ``hidden_w``/``hidden_b`` the further hidden layers; ``w_out``
    (M, H) and ``b_out`` (M,) the MLP's output layer. Each step::

        h = relu(u_t + w_mem (kappa m_{t-1}))      (then relu(W h + b) per further layer)
        m_t = kappa m_{t-1} + lambda (1 - kappa) lecun_tanh(w_out h + b_out)

    Differentiable in every tensor argument through a hand-written back-propagation through time.
    """
    hidden_w, hidden_b = list(hidden_w), list(hidden_b)
    return _MemoryRecurrence.apply(u.contiguous(), m0.contiguous(), kappa, float(gain), w_mem, w_out, b_out,
                                   *hidden_w, *hidden_b)


def memory_recurrence_reference(u, m0, kappa, gain, w_mem, w_out, b_out, hidden_w=(), hidden_b=()):
    """The same recurrence written plainly with autograd (tests check the hand-written backward against it)."""
    m, out = m0, []
    for t in range(u.shape[0]):
        mk = kappa * m
        h = torch.relu(u[t] + mk @ w_mem.t())
        for w, b in zip(hidden_w, hidden_b):
            h = torch.relu(h @ w.t() + b)
        m = mk + gain * (1 - kappa) * lecun_tanh(h @ w_out.t() + b_out)
        out.append(m)
    return torch.stack(out)
