# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Fusion modules (paper §3.3.3, eq. 7): shapes, initial behaviour, top-down pyramid."""

import pytest
import torch
import torch.nn.functional as F

from stal_ros.config import FUSION_KINDS, FusionConfig
from stal_ros.net.fusion import (AverageFusion, build_fusion, ConcatFusion, NoFusion,
                                 PyramidFusion, SumFusion)

CHANNELS = (8, 16, 8, 4, 4, 4)
SIZES = (12, 6, 3, 2, 1, 1)


def _maps(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, c, s, s, generator=g) for c, s in zip(CHANNELS, SIZES)]


@pytest.mark.parametrize('kind', FUSION_KINDS)
def test_shapes_preserved_and_gradients(kind):
    fusion = build_fusion(FusionConfig(kind=kind), CHANNELS)
    rgb = [m.requires_grad_() for m in _maps(0)]
    flow = [m.requires_grad_() for m in _maps(1)]
    out = fusion(rgb, flow)
    assert [o.shape for o in out] == [m.shape for m in rgb]
    assert fusion.out_channels == CHANNELS
    sum(o.sum() for o in out).backward()
    assert all(m.grad is not None for m in rgb)
    if kind == 'none':
        assert not fusion.needs_flow and all(m.grad is None for m in flow)
    else:
        assert fusion.needs_flow and all(m.grad.abs().sum() > 0 for m in flow)


def test_initial_combinations():
    rgb, flow = _maps(0), _maps(1)
    for got, a, b in zip(ConcatFusion(CHANNELS)(rgb, flow), rgb, flow):
        assert torch.allclose(got, (a + b) / 2, atol=1e-6)
    for got, a, b in zip(SumFusion(CHANNELS)(rgb, flow), rgb, flow):
        assert torch.allclose(got, a + b, atol=1e-6)
    for got, a, b in zip(AverageFusion(CHANNELS)(rgb, flow), rgb, flow):
        assert torch.allclose(got, (a + b) / 2, atol=1e-6)
    for got, a in zip(NoFusion(CHANNELS)(rgb, None), rgb):
        assert got is a


def test_concat_is_a_1x1_conv_over_both_inputs():
    fusion = ConcatFusion(CHANNELS)
    torch.nn.init.normal_(fusion.convs[0].weight)
    rgb, flow = _maps(0), _maps(1)
    w, b = fusion.convs[0].weight, fusion.convs[0].bias
    expected = F.conv2d(torch.cat([rgb[0], flow[0]], 1), w, b)
    assert torch.allclose(fusion(rgb, flow)[0], expected, atol=1e-5)
    assert w.shape == (8, 16, 1, 1)


def test_stfp_equation_7_top_down():
    torch.manual_seed(0)
    fusion = PyramidFusion(CHANNELS)
    rgb, flow = _maps(0), _maps(1)
    out = fusion(rgb, flow)
    assert torch.allclose(out[-1], rgb[-1] + flow[-1])
    for level in range(len(CHANNELS) - 2, -1, -1):
        up = F.interpolate(out[level + 1], size=rgb[level].shape[-2:], mode='bilinear',
                           align_corners=False)
        expected = rgb[level] + flow[level] + fusion.laterals[level](up)
        assert torch.allclose(out[level], expected, atol=1e-5)
    # Top-down only: a change at the coarsest level reaches the finest, not the reverse.
    changed = [m.clone() for m in rgb]
    changed[-1] += 1.0
    out2 = fusion(changed, flow)
    assert not torch.allclose(out2[0], out[0])
    changed = [m.clone() for m in rgb]
    changed[0] += 1.0
    out3 = fusion(changed, flow)
    assert all(torch.equal(a, b) for a, b in zip(out3[1:], out[1:]))
