"""Cross-channel LRN as shifted slices: values and gradients equal PyTorch's reference formula."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from caffeconf.run.layers.vision import _lrn_across  # noqa: E402


@pytest.mark.parametrize("size,beta,channels", [(5, 0.75, 7), (3, 0.5, 4), (5, 0.75, 2), (1, 0.75, 3)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_values_and_gradients_match_the_reference(size, beta, channels, channels_last):
    x = torch.randn(2, channels, 3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours_input, reference_input = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = _lrn_across(ours_input, size, 0.01, beta, 2.0)
    reference = F.local_response_norm(reference_input, size, 0.01, beta, 2.0)
    torch.testing.assert_close(ours, reference)
    weights = torch.randn(ours.shape, dtype=torch.float64)
    (ours * weights).sum().backward()
    (reference * weights).sum().backward()
    torch.testing.assert_close(ours_input.grad, reference_input.grad)
    with torch.no_grad():  # the in-place path without autograd
        torch.testing.assert_close(_lrn_across(x, size, 0.01, beta, 2.0), reference.detach())
