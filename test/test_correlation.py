# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Pure-torch PWC-Net primitives: cost volume and backward warping."""

import pytest
import torch

from stal_ros.net.correlation import cost_volume, warp


def naive_cost_volume(f1, f2, d):
    """Loop over every pixel and displacement, zero outside the image."""
    n, c, h, w = f1.shape
    side = 2 * d + 1
    out = torch.zeros(n, side * side, h, w, dtype=f1.dtype)
    for b in range(n):
        for y in range(h):
            for x in range(w):
                for dy in range(-d, d + 1):
                    for dx in range(-d, d + 1):
                        k = (dy + d) * side + (dx + d)
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < h and 0 <= xx < w:
                            out[b, k, y, x] = (f1[b, :, y, x] * f2[b, :, yy, xx]).sum() / c
    return out


@pytest.mark.parametrize('d', [1, 2, 4])
def test_cost_volume_equals_naive_loop(d):
    torch.manual_seed(d)
    f1 = torch.randn(2, 5, 6, 7, dtype=torch.float64)
    f2 = torch.randn(2, 5, 6, 7, dtype=torch.float64)
    got = cost_volume(f1, f2, d)
    assert got.shape == (2, (2 * d + 1) ** 2, 6, 7)
    torch.testing.assert_close(got, naive_cost_volume(f1, f2, d), rtol=1e-12, atol=1e-12)


def test_cost_volume_literal_values():
    # One channel, f1 = 1 everywhere, f2 = its column index: the cost of displacement dx at
    # column x is x + dx inside the image and 0 outside.
    f1 = torch.ones(1, 1, 1, 3)
    f2 = torch.tensor([[[[0.0, 1.0, 2.0]]]])
    got = cost_volume(f1, f2, 1)            # 9 displacements, rows dy = -1, 0, 1
    assert torch.all(got[0, :3] == 0) and torch.all(got[0, 6:] == 0)
    expected = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 0.0]])
    torch.testing.assert_close(got[0, 3:6, 0], expected)


def test_cost_volume_peaks_at_true_displacement():
    torch.manual_seed(0)
    f2 = torch.randn(1, 16, 12, 12)
    f1 = torch.roll(f2, shifts=(-1, 2), dims=(2, 3))    # f1(y, x) = f2(y + 1, x - 2)
    best = cost_volume(f1, f2, 3)[0, :, 4:8, 4:8].argmax(0)
    assert torch.all(best == (1 + 3) * 7 + (-2 + 3))


def test_cost_volume_gradients_flow_to_both_inputs():
    f1 = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    f2 = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: cost_volume(a, b, 1), (f1, f2))


def test_warp_by_zero_flow_is_identity():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 11)
    torch.testing.assert_close(warp(x, torch.zeros(2, 2, 9, 11)), x, rtol=0, atol=1e-6)


def test_warp_integer_flow_shifts_and_masks_outside():
    x = torch.arange(20.0).view(1, 1, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0] = 2.0                          # out(y, x) = x(y, x + 2)
    flow[:, 1] = -1.0                         # and one row up
    out = warp(x, flow)
    expected = torch.zeros(1, 1, 4, 5)
    expected[0, 0, 1:, :3] = x[0, 0, :3, 2:]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_warp_half_pixel_interpolates_and_mask_option():
    x = torch.tensor([[[[0.0, 10.0, 20.0]]]])
    flow = torch.zeros(1, 2, 1, 3)
    flow[:, 0] = 0.5
    torch.testing.assert_close(warp(x, flow), torch.tensor([[[[5.0, 15.0, 0.0]]]]))
    # Without the mask, the last sample blends with zero padding.
    torch.testing.assert_close(warp(x, flow, mask=False), torch.tensor([[[[5.0, 15.0, 10.0]]]]))
