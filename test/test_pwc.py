# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""PWC-Net in plain PyTorch: shapes, input checks, devices, and learning a known shift."""

import time

import pytest
import torch
import torch.nn.functional as F

from stal_ros.config import ConfigError, FlowConfig
from stal_ros.net.correlation import warp
from stal_ros.net.flow import build_flow_subnet, FlowSubnet
from stal_ros.net.flow_loss import endpoint_error, multiscale_flow_loss


def pwc(**fields):
    """Build the PWCNet that build_flow_subnet makes from a FlowConfig with these fields."""
    return build_flow_subnet(FlowConfig(**fields)).estimator


SMALL = {'pyramid_channels': (8, 16, 32), 'estimator_channels': (32, 32, 24, 16, 8),
         'context_channels': (32, 32, 32, 24, 16, 8)}


def test_default_pwc_shapes_and_levels():
    torch.manual_seed(0)
    net = pwc()                                  # paper: 6 levels, d = 4, context network
    assert net.num_levels == 6 and len(net.estimators) == 5 and net.context is not None
    flow, pyramid = net(torch.rand(1, 3, 64, 128), torch.rand(1, 3, 64, 128))
    assert [tuple(p.shape) for p in pyramid] == [(1, 2, 16, 32), (1, 2, 8, 16), (1, 2, 4, 8),
                                                 (1, 2, 2, 4), (1, 2, 1, 2)]
    assert flow is pyramid[0]
    assert torch.isfinite(flow).all()


def test_pwc_plain_estimator_without_context():
    net = pwc(pyramid_channels=(4, 8, 8), estimator_channels=(8, 8), dense=False,
              context_network=False, search_range=1)
    assert net.context is None and net.estimators[0].out_channels == 8
    dense = pwc(pyramid_channels=(4, 8, 8), estimator_channels=(8, 8), search_range=1)
    assert dense.estimators[0].out_channels == 9 + 8 + 8    # cost volume + both convs
    flow, pyramid = net(torch.rand(2, 3, 16, 24), torch.rand(2, 3, 16, 24))
    assert flow.shape == (2, 2, 4, 6) and len(pyramid) == 2


def test_pwc_gradients_reach_the_feature_pyramid():
    net = pwc(pyramid_channels=(4, 8, 8), estimator_channels=(8, 8), search_range=1,
              context_channels=(8, 4), context_dilations=(1, 2))
    _, pyramid = net(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    multiscale_flow_loss(pyramid, torch.ones(1, 2, 32, 32), (1.0, 1.0)).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert net.pyramid.levels[0][0][0].weight.grad.abs().sum() > 0


def test_pwc_config_is_checked_where_it_is_given():
    """Sizes and levels are checked once, in the config, not in every forward."""
    with pytest.raises(ConfigError, match=r'input_size = \(72, 64\): expected multiples of 16'):
        FlowConfig(pyramid_channels=(4, 8, 8, 8), input_size=(72, 64))
    with pytest.raises(ConfigError, match=r'pyramid_channels = \(8,\): expected at least 2'):
        FlowConfig(pyramid_channels=(8,), input_size=(64, 64))
    with pytest.raises(ConfigError, match='context_dilations'):
        FlowConfig(context_channels=(8, 4))


def test_estimator_and_context_widths_come_from_the_config():
    """A CPU-sized learned flow can be configured (the estimators dominate PWC-Net's cost)."""
    small = pwc(pyramid_channels=(8, 16, 32, 48), estimator_channels=(32, 16), dense=False,
                context_channels=(16, 16), context_dilations=(1, 2), cost='mean')
    big = pwc()
    assert small.estimators[0].out_channels == 16 and small.cost == 'mean'
    context = small.context.net
    assert [m[0].out_channels for m in context[:-1]] + [context[-1].out_channels] == [16, 16, 2]
    count = sum(p.numel() for p in small.parameters())
    assert count * 40 < sum(p.numel() for p in big.parameters())
    flow, pyramid = small(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    assert flow.shape == (1, 2, 16, 16) and len(pyramid) == 3


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_pwc_gives_the_same_flow_on_cpu_and_cuda():
    torch.manual_seed(0)
    net = pwc(pyramid_channels=(4, 8, 8), estimator_channels=(8, 8), search_range=2,
              context_channels=(8, 4), context_dilations=(1, 2)).eval()
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        ref = net(a, b)[0]
        out = net.to('cuda')(a.to('cuda'), b.to('cuda'))[0]
    assert out.device.type == 'cuda'
    torch.testing.assert_close(out.cpu(), ref, rtol=1e-3, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_default_flow_subnet_on_cuda():
    subnet = build_flow_subnet(FlowConfig()).cuda().eval()
    with torch.no_grad():
        out = subnet(torch.rand(2, 3, 240, 320, device='cuda'),
                     torch.rand(2, 3, 240, 320, device='cuda'))
    assert out.flow.shape == (2, 2, 240, 320) and out.flow.is_cuda


def textures(n, size, generator):
    """(n, 3, size, size) random textures with content at every scale, in [0, 1]."""
    t = sum(F.interpolate(torch.rand(n, 3, s, s, generator=generator), size=(size, size),
                          mode='bicubic', align_corners=False) for s in (6, 12, 24, 48))
    t = t - t.amin((1, 2, 3), keepdim=True)
    return t / t.amax((1, 2, 3), keepdim=True)


def shifted_textures(shifts, generator, size=64, margin=16):
    """Pairs with a known sub-pixel translation: img1(p) = img2(p + shift).

    Returns img1, img2 (N, 3, size, size) and the ground-truth flow (N, 2, size, size).
    """
    n = shifts.shape[0]
    big = size + 2 * margin
    tex = textures(n, big, generator)
    flow = shifts.view(n, 2, 1, 1)
    inner = slice(margin, margin + size)
    img2 = warp(tex, -flow.expand(n, 2, big, big))[..., inner, inner]
    return tex[..., inner, inner], img2, flow.expand(n, 2, size, size).contiguous()


@pytest.mark.slow
def test_small_pwc_learns_to_recover_a_known_shift():
    """SLOW (about 25 s on 2 CPU cores): train a 3-level PWC-Net on 64x64 shifted textures.

    250 Adam steps (lr 1e-3, x0.25 after 175) on random textures translated by up to 6 px in
    x and y; then new textures with known shifts must come out within 0.75 px (median over
    the interior; 0.45-0.53 px was measured for three seeds), while the
    untrained network misses them by more than 2 px.
    """
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    subnet = FlowSubnet(estimator=pwc(**SMALL), input_size=(64, 64))
    test_shifts = torch.tensor([[2.5, -1.5], [-4.0, 3.0], [1.0, 5.0]])
    a, b, gt = shifted_textures(test_shifts, torch.Generator().manual_seed(123))

    def median_error():
        with torch.no_grad():
            flow = subnet.eval()(a, b).flow[..., 16:48, 16:48]
        subnet.train()
        return (flow.flatten(2).median(2).values - test_shifts).abs().max().item()

    before = median_error()
    assert before > 2.0
    opt = torch.optim.Adam(subnet.parameters(), lr=1e-3)
    start = time.perf_counter()
    for step in range(250):
        shifts = (torch.rand(8, 2, generator=gen) * 2 - 1) * 6.0
        img1, img2, flow = shifted_textures(shifts, gen)
        out = subnet(img1, img2)
        # Weights 0.01 (level 3), 0.08 (finest): the balance this test was tuned with.
        loss = multiscale_flow_loss(out.pyramid, flow, (0.01, 0.08), reduction='mean')
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step + 1 == 175:
            opt.param_groups[0]['lr'] *= 0.25
    after = median_error()
    with torch.no_grad():
        epe = endpoint_error(subnet.eval()(a, b).flow, gt)[:, 16:48, 16:48].mean().item()
    print(f'trained {time.perf_counter() - start:.1f} s: median error {before:.2f} -> '
          f'{after:.2f} px, EPE {epe:.2f} px')
    assert after < 0.75
