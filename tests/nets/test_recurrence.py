"""The ELM's time-stepping kernels (nd.nets.recurrence): the leaky synaptic trace against its recursion, and the
hand-written back-propagation through time of the memory loop against autograd."""
from __future__ import annotations

import pytest
import torch

from neurodepth_lib.nets import recurrence


def test_the_synaptic_trace_is_a_leaky_integral():
    # one spike: exp(-t / tau_s) after it, for a 5-ms and a per-channel 2/50-ms timescale, across chunk borders
    z = torch.zeros(1, 2, 100)
    z[0, :, 10] = 1.0
    for rates in (torch.tensor(1 / 5.0), torch.tensor([1 / 2.0, 1 / 50.0])):
        s = recurrence.leaky_trace(z, rates)
        t = torch.arange(100.0) - 10
        expected = torch.where(t >= 0, torch.exp(-t.clamp(min=0) * rates.reshape(-1, 1)), torch.tensor(0.0))
        torch.testing.assert_close(s[0], expected.expand(2, 100), rtol=1e-5, atol=1e-7)
    # the recursion itself, from a state, for a length that is not a whole number of chunks
    g = torch.Generator().manual_seed(0)
    z = torch.rand(3, 4, 77, generator=g, dtype=torch.float64)
    rate = torch.rand(4, generator=g, dtype=torch.float64)
    s0 = torch.rand(3, 4, generator=g, dtype=torch.float64)
    s, prev, ref = recurrence.leaky_trace(z, rate, s0), s0, []
    for k in range(77):
        prev = torch.exp(-rate) * prev + z[..., k]
        ref.append(prev)
    torch.testing.assert_close(s, torch.stack(ref, -1))


@pytest.mark.parametrize("n_hidden_layers", [0, 1])
def test_the_hand_written_backward_pass_is_autograds(n_hidden_layers):
    g = torch.Generator().manual_seed(n_hidden_layers)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()

    n_t, n_b, n_h, n_m = 9, 3, 5, 4
    u, m0, w_mem, w_out, b_out = rand(n_t, n_b, n_h), rand(n_b, n_m), rand(n_h, n_m), rand(n_m, n_h), rand(n_m)
    kappa = torch.exp(-1 / (1 + 20 * torch.rand(n_m, generator=g, dtype=torch.float64))).requires_grad_()
    hw = [rand(n_h, n_h) for _ in range(n_hidden_layers)]
    hb = [rand(n_h) for _ in range(n_hidden_layers)]
    args = [u, m0, kappa, w_mem, w_out, b_out, *hw, *hb]
    ours = recurrence.memory_recurrence(u, m0, kappa, 5.0, w_mem, w_out, b_out, hw, hb)
    reference = recurrence.memory_recurrence_reference(u, m0, kappa, 5.0, w_mem, w_out, b_out, hw, hb)
    torch.testing.assert_close(ours, reference)
    weights = torch.randn(ours.shape, generator=g, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad((ours * weights).sum(), args),
                    torch.autograd.grad((reference * weights).sum(), args)):
        torch.testing.assert_close(a, b)
