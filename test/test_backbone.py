# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Backbones: six maps with the paper's sizes and channels, lite interface, initialisation."""

import pytest
import torch
from torch import nn

from stal_ros.config import BackboneConfig, MIN_INPUT_SIZE
from stal_ros.net.backbone import (build_backbone, L2Norm, LiteBackbone, map_sizes, RFBlock,
                                   VGG16RFB)


def _meta_maps(backbone_config, size):
    """Shapes of a full-size backbone without computing (meta tensors)."""
    with torch.device('meta'):
        backbone = build_backbone(backbone_config).eval()
        maps = backbone(torch.empty(1, 3, size, size))
    return backbone, maps


def test_vgg16_rfb_paper_sizes_and_channels_at_300():
    backbone, maps = _meta_maps(BackboneConfig(), 300)
    assert backbone.out_channels == (512, 1024, 512, 256, 256, 256)
    assert [m.shape[1] for m in maps] == [512, 1024, 512, 256, 256, 256]
    assert map_sizes(maps) == ((38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1))


def test_vgg16_rfb_other_sizes_and_minimum():
    _, maps = _meta_maps(BackboneConfig(), 320)
    assert map_sizes(maps) == ((40, 40), (20, 20), (10, 10), (5, 5), (3, 3), (1, 1))
    _, maps = _meta_maps(BackboneConfig(), MIN_INPUT_SIZE['vgg16_rfb'])
    assert map_sizes(maps)[-1] == (1, 1)


@pytest.mark.parametrize('kind', ['vgg16_rfb', 'lite'])
def test_feature_sizes_without_running_equal_the_real_maps(kind):
    """Priors are made at build time from ``feature_sizes(S)``: it must equal the maps."""
    for size in (MIN_INPUT_SIZE[kind], 268, 299, 300, 301, 320, 417, 512):
        backbone, maps = _meta_maps(BackboneConfig(kind=kind), size)
        assert backbone.feature_sizes(size) == map_sizes(maps), size


def test_lite_batch_norm_setting_acts():
    """backbone.batch_norm is honoured by the lite backbone (it was silently ignored)."""
    def norms(batch_norm):
        backbone = build_backbone(BackboneConfig(kind='lite', width=0.25, batch_norm=batch_norm))
        return [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms(True)) == 25
    assert norms(False) == []
    plain = build_backbone(BackboneConfig(kind='lite', width=0.25, batch_norm=False))
    assert all(m.bias is not None for m in plain.modules() if isinstance(m, nn.Conv2d))


def test_deeplab_vgg16_layers_and_parameter_count():
    with torch.device('meta'):
        vgg = VGG16RFB()
    # VGG16 conv layers (14,714,688 parameters, as torchvision's vgg16().features), fc6 as a
    # 3x3 dilation-6 conv 512 -> 1024 and fc7 as a 1x1 conv 1024 -> 1024.
    base = sum(p.numel() for p in vgg.to_conv4_3.parameters())
    base += sum(p.numel() for p in vgg.to_fc7.parameters())
    assert base == 14_714_688 + (512 * 1024 * 9 + 1024) + (1024 * 1024 + 1024)
    pools = [m for m in vgg.modules() if isinstance(m, nn.MaxPool2d)]
    assert [p.ceil_mode for p in pools] == [False, False, True, False, False]
    assert (pools[-1].kernel_size, pools[-1].stride) == (3, 1)        # pool5
    fc6 = [m for m in vgg.to_fc7 if isinstance(m, nn.Conv2d)][-2]
    assert fc6.dilation == (6, 6) and fc6.out_channels == 1024
    assert isinstance(vgg.norm, L2Norm) and isinstance(vgg.rfb_s, RFBlock)


def test_lite_backbone_same_interface():
    backbone, maps = _meta_maps(BackboneConfig(kind='lite'), 300)
    assert isinstance(backbone, LiteBackbone)
    assert len(maps) == 6 and backbone.out_channels == (128, 256, 256, 128, 128, 128)
    assert map_sizes(maps) == ((38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (2, 2))
    with torch.device('meta'):
        vgg = build_backbone(BackboneConfig())
    lite_params = sum(p.numel() for p in backbone.parameters())
    assert lite_params * 20 < sum(p.numel() for p in vgg.parameters())


@pytest.mark.parametrize('kind, size', [('lite', 32), ('lite', 47), ('vgg16_rfb', 268)])
def test_real_forward_backward_small(kind, size):
    torch.manual_seed(0)
    backbone = build_backbone(BackboneConfig(kind=kind, width=0.0625, batch_norm=True))
    x = torch.rand(2, 3, size, size, requires_grad=True)
    maps = backbone(x)
    assert [m.shape[1] for m in maps] == list(backbone.out_channels)
    assert all(m.shape[0] == 2 and m.shape[-1] >= 1 for m in maps)
    assert all(torch.isfinite(m).all() for m in maps)
    sum(m.square().mean() for m in maps).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_width_scales_channels():
    backbone = build_backbone(BackboneConfig(width=0.25))
    assert backbone.out_channels == (128, 256, 128, 64, 64, 64)


def test_initialisation_from_scratch():
    torch.manual_seed(0)
    backbone = build_backbone(BackboneConfig(kind='vgg16_rfb', width=0.125))
    assert torch.equal(backbone.norm.weight, torch.full((64,), 20.0))
    for m in backbone.modules():
        if isinstance(m, nn.Conv2d) and m.bias is not None:
            assert torch.count_nonzero(m.bias) == 0
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    conv = backbone.to_conv4_3[0]
    # Kaiming normal, fan_out, ReLU gain: std = sqrt(2 / (out_channels * 3 * 3)).
    expected = (2.0 / (conv.out_channels * 9)) ** 0.5
    assert abs(conv.weight.std().item() - expected) < 0.35 * expected


def test_l2norm_normalises_channels():
    norm = L2Norm(4, scale=20.0)
    x = torch.randn(2, 4, 3, 3)
    y = norm(x)
    assert torch.allclose(y.norm(dim=1), torch.full((2, 3, 3), 20.0), atol=1e-4)
