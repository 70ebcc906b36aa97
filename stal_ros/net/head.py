# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑤ SSD/RFB-Net prediction head: per level, a 3x3 conv for box offsets and one for classes.

For level l with C_l channels and A_l priors per cell the box conv gives A_l * 4 channels and
the class conv A_l * K; outputs are flattened in the prior order of ``priors.PriorBox``
(cells row-major, then the A_l priors of the cell), concatenated over levels (paper §3.4).
Convs are Xavier-uniform with zero bias, as in SSD.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class SSDHead(nn.Module):
    """Class and box predictors on L fused maps."""

    def __init__(self, in_channels: Sequence[int], priors_per_cell: Sequence[int],
                 num_classes: int) -> None:
        super().__init__()
        if len(in_channels) != len(priors_per_cell):
            raise ValueError(f'head: expected one priors-per-cell count per level '
                             f'({len(in_channels)}), got {len(priors_per_cell)}')
        if num_classes < 2:
            raise ValueError(f'head: expected num_classes K >= 2 (background + 1), got '
                             f'{num_classes}')
        self.num_classes = num_classes
        self.in_channels = tuple(in_channels)
        self.priors_per_cell = tuple(priors_per_cell)
        self.loc = nn.ModuleList(nn.Conv2d(c, a * 4, 3, padding=1)
                                 for c, a in zip(in_channels, priors_per_cell))
        self.conf = nn.ModuleList(nn.Conv2d(c, a * num_classes, 3, padding=1)
                                  for c, a in zip(in_channels, priors_per_cell))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, maps: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """L maps (N, C_l, H_l, W_l) -> loc (N, P, 4), conf logits (N, P, K)."""
        locs, confs = [], []
        for m, loc, conf in zip(maps, self.loc, self.conf):
            n = m.shape[0]
            # (N, A*4, H, W) -> (N, H, W, A*4) -> (N, H*W*A, 4): cells row-major, then priors.
            locs.append(loc(m).permute(0, 2, 3, 1).reshape(n, -1, 4))
            confs.append(conf(m).permute(0, 2, 3, 1).reshape(n, -1, self.num_classes))
        return torch.cat(locs, dim=1), torch.cat(confs, dim=1)
