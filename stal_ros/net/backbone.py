# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""③ Backbones shared by the RGB and the flow path: six feature maps (paper §3.3.1-3.3.2).

Both backbones map an image batch (N, 3, S, S) to a list of six maps (N, C_l, H_l, W_l),
finest first, and expose ``out_channels`` (C_l per level), ``min_input_size`` and
``feature_sizes(S)`` (the six (H_l, W_l), computed without running the network).  The RGB and
the flow stream share one backbone; ``build_backbone(..., num_streams=2)`` gives its batch
norms per-stream statistics (``stream_norm``), and the caller then stacks the streams along
the batch axis, stream-major.

* ``VGG16RFB``: DeepLab-VGG16 (VGG16 convs from torchvision's layer definition, pool3 with
  ceil mode as SSD, pool5 3x3 stride 1, fc6 as a 3x3 conv of dilation 6 with 1024 channels,
  fc7 as a 1x1 conv) followed by RFB-Net's extra layers (Liu et al. ECCV 2018): RFB-s on
  conv4_3, RFB on fc7, two stride-2 RFBs and two unpadded 1x1+3x3 conv pairs.  Channels
  {512, 1024, 512, 256, 256, 256}, sizes 38, 19, 10, 5, 3, 1 at 300x300.
* ``LiteBackbone``: depthwise-separable convs (MobileNet-v1 style) with the same six-level
  interface (strides 8, 16, 32, 64, 128, 256) for CPU robots.

Nothing is pretrained (no downloads): convs get Kaiming-normal (fan_out, ReLU) weights and
zero biases as torchvision's VGG does, batch norms start at identity, and conv4_3 is
L2-normalised with a learned per-channel scale initialised to 20, as in SSD.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torchvision.models.vgg import make_layers

from stal_ros.config import BackboneConfig, MIN_INPUT_SIZE
from stal_ros.net.stream_norm import split_batch_norm

# VGG16 (configuration 'D') up to conv5_3 in torchvision's notation; 'M' is a 2x2 max pool.
_VGG16 = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512)
_CONV4_3 = 10  # conv4_3 is the 10th conv


def _ch(channels: int, width: float) -> int:
    """Scale a channel count by the width multiplier, keeping at least one channel."""
    return max(1, int(round(channels * width)))


def _conv(cin: int, cout: int, kernel: int | tuple[int, int] = 1, stride: int = 1,
          padding: int | tuple[int, int] = 0, dilation: int = 1,
          relu: bool = True) -> nn.Sequential:
    """Conv + batch norm (+ ReLU): RFB-Net's BasicConv."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, padding, dilation, bias=False),
        nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (SSD's conv4_3 norm)."""

    def __init__(self, channels: int, scale: float = 20.0, eps: float = 1e-10) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W) with unit-norm channel vectors times the scale."""
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt().clamp_min(self.eps)
        return x / norm * self.weight.view(1, -1, 1, 1)


class RFBlock(nn.Module):
    """Receptive Field Block: parallel 1x1 -> kxk -> dilated 3x3 branches, concat, 1x1, shortcut.

    ``small=False`` is RFB-Net's RFB (three branches, dilations v, v+1, 2v+1);
    ``small=True`` is RFB-s (four branches with 1x3/3x1 convs, dilations 1, 3, 3, 5) used on
    conv4_3.  Output = ReLU(scale * linear(concat(branches)) + shortcut(x)).
    """

    def __init__(self, cin: int, cout: int, stride: int = 1, scale: float = 0.1,
                 visual: int = 1, small: bool = False) -> None:
        super().__init__()
        if small:
            inter = max(1, cin // 4)
            quarter = max(1, inter // 4)
            self.branches = nn.ModuleList([
                nn.Sequential(_conv(cin, inter, 1, stride),
                              _conv(inter, inter, 3, 1, 1, relu=False)),
                nn.Sequential(_conv(cin, inter, 1, 1), _conv(inter, inter, (3, 1), stride, (1, 0)),
                              _conv(inter, inter, 3, 1, 3, 3, relu=False)),
                nn.Sequential(_conv(cin, inter, 1, 1), _conv(inter, inter, (1, 3), stride, (0, 1)),
                              _conv(inter, inter, 3, 1, 3, 3, relu=False)),
                nn.Sequential(_conv(cin, max(1, inter // 2), 1, 1),
                              _conv(max(1, inter // 2), quarter * 3, (1, 3), 1, (0, 1)),
                              _conv(quarter * 3, inter, (3, 1), stride, (1, 0)),
                              _conv(inter, inter, 3, 1, 5, 5, relu=False))])
            concat = 4 * inter
        else:
            inter = max(1, cin // 8)
            half = max(1, inter // 2)
            self.branches = nn.ModuleList([
                nn.Sequential(_conv(cin, 2 * inter, 1, stride),
                              _conv(2 * inter, 2 * inter, 3, 1, visual, visual, relu=False)),
                nn.Sequential(_conv(cin, inter, 1, 1), _conv(inter, 2 * inter, 3, stride, 1),
                              _conv(2 * inter, 2 * inter, 3, 1, visual + 1, visual + 1,
                                    relu=False)),
                nn.Sequential(_conv(cin, inter, 1, 1), _conv(inter, half * 3, 3, 1, 1),
                              _conv(half * 3, 2 * inter, 3, stride, 1),
                              _conv(2 * inter, 2 * inter, 3, 1, 2 * visual + 1, 2 * visual + 1,
                                    relu=False))])
            concat = 6 * inter
        self.linear = _conv(concat, cout, 1, relu=False)
        self.shortcut = _conv(cin, cout, 1, stride, relu=False)
        self.scale = scale
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, Cin, H, W) -> (N, Cout, H', W'), H' = H for stride 1, ceil(H / 2) for 2."""
        out = self.linear(torch.cat([branch(x) for branch in self.branches], dim=1))
        return self.relu(out * self.scale + self.shortcut(x))


class VGG16RFB(nn.Module):
    """DeepLab-VGG16 + RFB-Net extras: six maps {512, 1024, 512, 256, 256, 256} x width."""

    def __init__(self, width: float = 1.0, batch_norm: bool = False) -> None:
        super().__init__()
        spec = [item if isinstance(item, str) else _ch(item, width) for item in _VGG16]
        layers = make_layers(spec, batch_norm=batch_norm)
        pools = [m for m in layers if isinstance(m, nn.MaxPool2d)]
        pools[2].ceil_mode = True  # SSD's pool3: 75 -> 38 at 300x300
        # Split right after conv4_3's ReLU, the source of the first map.
        convs, split = 0, 0
        for split, m in enumerate(layers, start=1):
            convs += isinstance(m, nn.Conv2d)
            if convs == _CONV4_3 and isinstance(m, nn.ReLU):
                break
        self.to_conv4_3 = layers[:split]
        c512, c1024 = _ch(512, width), _ch(1024, width)
        # §3.3.1: pool5 3x3 stride 1; fc6 dilated 3x3 (DeepLab-LargeFOV, dilation 6); fc7 1x1.
        self.to_fc7 = nn.Sequential(
            *layers[split:],
            nn.MaxPool2d(3, 1, 1),
            nn.Conv2d(c512, c1024, 3, padding=6, dilation=6), nn.ReLU(inplace=True),
            nn.Conv2d(c1024, c1024, 1), nn.ReLU(inplace=True))
        self.norm = L2Norm(c512)
        c256, c128 = _ch(256, width), _ch(128, width)
        self.rfb_s = RFBlock(c512, c512, stride=1, scale=1.0, small=True)
        self.rfb_fc7 = RFBlock(c1024, c1024, stride=1, scale=1.0, visual=2)
        self.extras = nn.ModuleList([
            RFBlock(c1024, c512, stride=2, scale=1.0, visual=2),
            RFBlock(c512, c256, stride=2, scale=1.0, visual=1),
            nn.Sequential(_conv(c256, c128, 1), _conv(c128, c256, 3)),
            nn.Sequential(_conv(c256, c128, 1), _conv(c128, c256, 3))])
        self.out_channels = (c512, c1024, c512, c256, c256, c256)
        self.min_input_size = MIN_INPUT_SIZE['vgg16_rfb']
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, S, S) -> six maps (N, C_l, H_l, W_l); S >= 268 (38..1 cells at S = 300)."""
        conv4_3 = self.to_conv4_3(x)
        fc7 = self.to_fc7(conv4_3)
        maps = [self.rfb_s(self.norm(conv4_3)), self.rfb_fc7(fc7)]
        y = maps[-1]
        for layer in self.extras:
            y = layer(y)
            maps.append(y)
        return maps

    @staticmethod
    def feature_sizes(size: int) -> tuple[tuple[int, int], ...]:
        """Return the six (H_l, W_l) for an S x S input: (38, 19, 10, 5, 3, 1) at S = 300."""
        s = size // 2 // 2            # pool1, pool2 (floor)
        s = -(-s // 2)                # pool3 (ceil mode, SSD) -> conv4_3
        sides = [s, s // 2]           # pool4 (floor) -> fc7; pool5 and fc6/fc7 keep the size
        for _ in range(2):            # stride-2 RFBs (3x3, padding 1)
            sides.append((sides[-1] - 1) // 2 + 1)
        for _ in range(2):            # unpadded 3x3 convs
            sides.append(sides[-1] - 2)
        return tuple((n, n) for n in sides)


def _separable(cin: int, cout: int, stride: int, batch_norm: bool) -> nn.Sequential:
    """Depthwise 3x3 (+BN, ReLU6) then pointwise 1x1 (+BN, ReLU6) (MobileNet-v1 block).

    Without batch norm the convs have biases instead.
    """
    def norm(c: int) -> list[nn.Module]:
        return [nn.BatchNorm2d(c)] if batch_norm else []
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=not batch_norm), *norm(cin),
        nn.ReLU6(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=not batch_norm), *norm(cout), nn.ReLU6(inplace=True))


class LiteBackbone(nn.Module):
    """Depthwise-separable six-scale backbone, {128, 256, 256, 128, 128, 128} x width.

    Every downsampling is a padded stride-2 conv, so the maps have ceil(S / 8), ceil(S / 16),
    ... cells (38, 19, 10, 5, 3, 2 at S = 300) and any S >= 32 gives six non-empty maps.
    """

    def __init__(self, width: float = 1.0, batch_norm: bool = True) -> None:
        super().__init__()
        c = [_ch(n, width) for n in (16, 32, 64, 128, 256)]

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return _separable(cin, cout, stride, batch_norm)
        stem_norm = [nn.BatchNorm2d(c[0])] if batch_norm else []
        self.stem = nn.Sequential(
            nn.Conv2d(3, c[0], 3, 2, 1, bias=not batch_norm), *stem_norm,
            nn.ReLU6(inplace=True),
            block(c[0], c[1], 2), block(c[1], c[1], 1),
            block(c[1], c[2], 2), block(c[2], c[2], 1), block(c[2], c[3], 1))
        self.stage16 = nn.Sequential(block(c[3], c[4], 2), block(c[4], c[4], 1),
                                     block(c[4], c[4], 1))
        self.extras = nn.ModuleList([block(c[4], c[4], 2), block(c[4], c[3], 2),
                                     block(c[3], c[3], 2), block(c[3], c[3], 2)])
        self.out_channels = (c[3], c[4], c[4], c[3], c[3], c[3])
        self.min_input_size = MIN_INPUT_SIZE['lite']
        _init_weights(self, fan_in=not batch_norm)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, S, S) -> six maps (N, C_l, ceil(S / 2^(l+3)), ...), S >= 32."""
        maps = [self.stem(x)]
        maps.append(self.stage16(maps[-1]))
        for layer in self.extras:
            maps.append(layer(maps[-1]))
        return maps

    @staticmethod
    def feature_sizes(size: int) -> tuple[tuple[int, int], ...]:
        """Return the six (H_l, W_l) of an S x S input: ceil(S / 2^(l+3)), 38 .. 2 at S = 300."""
        return tuple((-(-size // 2 ** k),) * 2 for k in range(3, 9))


def _init_weights(module: nn.Module, fan_in: bool = False) -> None:
    """From scratch: Kaiming-normal convs (ReLU gain), zero biases, identity batch norms.

    ``fan_in`` keeps the forward activations at unit scale, which a network without batch
    norm needs (with fan_out the lite backbone's ReLU6 saturated and passed no gradient).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            # PyTorch's fan_out of a depthwise conv counts all its channels, which would make
            # the weights sqrt(C) times too small; use its true fan (the 3x3 kernel) instead.
            mode = 'fan_in' if m.groups > 1 or fan_in else 'fan_out'
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity='relu')
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_backbone(config: BackboneConfig, num_streams: int = 1) -> nn.Module:
    """Build the backbone named by ``config.kind`` (randomly initialised, see module doc).

    ``num_streams`` > 1 gives every batch norm per-stream statistics (``stream_norm``): the
    backbone then takes the streams stacked along the batch axis, stream-major.
    """
    if config.kind == 'vgg16_rfb':
        backbone: nn.Module = VGG16RFB(config.width, config.batch_norm)
    else:
        backbone = LiteBackbone(config.width, config.batch_norm)
    return split_batch_norm(backbone, num_streams)


def map_sizes(maps: Sequence[torch.Tensor]) -> tuple[tuple[int, int], ...]:
    """Return the (H_l, W_l) of each of the L maps."""
    return tuple((int(m.shape[-2]), int(m.shape[-1])) for m in maps)
