# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""④ Multiscale fusion of RGB maps m^a and flow maps m^of (paper §3.3.3, Table 2, eq. 7).

Every module maps two lists of L maps, (N, C_l, H_l, W_l) each, finest first (the RGB maps
m^a and the flow maps m^of of the same shapes, as the shared backbone makes them), to one list
of L maps with the same shapes:

* ``ConcatFusion`` (M-Concat, the paper's default): concat channels, 1x1 conv back to C_l.
* ``SumFusion`` / ``AverageFusion`` (M-Sum / M-Average): element-wise sum / mean, 1x1 conv.
* ``PyramidFusion`` (STFP, eq. 7): top-down; the fused map of level l is
  m^a_l + m^of_l + conv1x1(upsample(fused_{l+1})), starting from the coarsest level.
* ``NoFusion``: RGB only (the ablation of Table 2); the flow path is not run at all.

Initialisation (from scratch, no pretrained weights): the 1x1 convs of concat/sum/average start
as the identity on each input (so the fused map starts as the mean of m^a and m^of, or their
sum / mean), zero bias; the STFP lateral convs are Xavier-uniform.  Starting from a meaningful
combination keeps the detector trainable from the first iteration.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from stal_ros.config import FusionConfig


class _Fusion(nn.Module):
    """Shared interface: ``forward(rgb, flow) -> fused`` lists of L maps."""

    needs_flow = True

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        self.out_channels = tuple(channels)


class NoFusion(_Fusion):
    """RGB only (ablation): returns m^a unchanged; ``needs_flow`` is False."""

    needs_flow = False

    def forward(self, rgb: Sequence[torch.Tensor],
                flow: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """L maps (N, C_l, H_l, W_l) -> the same L maps."""
        return list(rgb)


class ConcatFusion(_Fusion):
    """M-Concat: conv1x1([m^a, m^of]) with C_l output channels per level."""

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__(channels)
        self.convs = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in channels)
        for conv, c in zip(self.convs, channels):
            eye = torch.eye(c).view(c, c, 1, 1) * 0.5
            with torch.no_grad():
                conv.weight.copy_(torch.cat([eye, eye], dim=1))
                conv.bias.zero_()

    def forward(self, rgb: Sequence[torch.Tensor],
                flow: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Two lists of L maps (N, C_l, H_l, W_l) -> L fused maps of the same shapes."""
        return [conv(torch.cat([a, b], dim=1)) for conv, a, b in zip(self.convs, rgb, flow)]


class SumFusion(_Fusion):
    """M-Sum: conv1x1(m^a + m^of); ``average=True`` gives M-Average: conv1x1((m^a + m^of) / 2)."""

    def __init__(self, channels: Sequence[int], average: bool = False) -> None:
        super().__init__(channels)
        self.average = average
        self.convs = nn.ModuleList(nn.Conv2d(c, c, 1) for c in channels)
        for conv, c in zip(self.convs, channels):
            with torch.no_grad():
                conv.weight.copy_(torch.eye(c).view(c, c, 1, 1))
                conv.bias.zero_()

    def forward(self, rgb: Sequence[torch.Tensor],
                flow: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Two lists of L maps (N, C_l, H_l, W_l) -> L fused maps of the same shapes."""
        out = []
        for conv, a, b in zip(self.convs, rgb, flow):
            merged = a + b
            out.append(conv(merged * 0.5 if self.average else merged))
        return out


class AverageFusion(SumFusion):
    """M-Average: conv1x1((m^a + m^of) / 2)."""

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__(channels, average=True)


class PyramidFusion(_Fusion):
    """STFP (eq. 7): fused_L = m^a_L + m^of_L; fused_l = m^a_l + m^of_l + conv(up(fused_l+1)).

    ``up`` is bilinear resizing to level l's size (the maps are not exact multiples, e.g.
    3 -> 5 at 300x300); ``conv`` is a 1x1 conv from C_{l+1} to C_l channels.
    """

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__(channels)
        self.laterals = nn.ModuleList(
            nn.Conv2d(coarse, fine, 1) for fine, coarse in zip(channels[:-1], channels[1:]))
        for conv in self.laterals:
            nn.init.xavier_uniform_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, rgb: Sequence[torch.Tensor],
                flow: Sequence[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Two lists of L maps (N, C_l, H_l, W_l) -> L fused maps of the same shapes."""
        fused = [rgb[-1] + flow[-1]]
        for level in range(len(rgb) - 2, -1, -1):
            a, b = rgb[level], flow[level]
            up = F.interpolate(fused[0], size=a.shape[-2:], mode='bilinear', align_corners=False)
            fused.insert(0, a + b + self.laterals[level](up))
        return fused


def build_fusion(config: FusionConfig, channels: Sequence[int]) -> nn.Module:
    """Build the fusion named by ``config.kind`` for maps with ``channels`` (C_l per level)."""
    kinds = {'concat': ConcatFusion, 'sum': SumFusion, 'average': AverageFusion,
             'stfp': PyramidFusion, 'none': NoFusion}
    if config.kind not in kinds:
        raise ValueError(f'detector.fusion.kind = {config.kind!r}: expected one of '
                         f'{sorted(kinds)}')
    return kinds[config.kind](channels)
