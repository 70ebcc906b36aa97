# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑥ SSD/RFB default boxes (priors) for the actual feature-map sizes (paper §3.4).

Priors are normalised ``cx, cy, w, h`` in [0, 1] of the network input; this is the only place
(with ``boxes.encode``/``decode``) where that format exists.  Level l with H_l x W_l cells has,
in every cell (row-major, y then x) and in this order: a square of side s_l, a square of side
sqrt(s_l * s_l+1), then for each extra aspect ratio r of the level the boxes
(s_l sqrt(r), s_l / sqrt(r)) and (s_l / sqrt(r), s_l sqrt(r)) (SSD, Liu et al. 2016).  Cell
centres are ((x + 0.5) / W_l, (y + 0.5) / H_l), the SSD paper's formula, so any input size
works; SSD300's integer ``steps`` give nearly the same centres at 300.  With ``clip_priors``
the values are clamped to [0, 1] as SSD does.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from stal_ros.config import HeadConfig


class PriorBox(nn.Module):
    """Default boxes for a list of L feature-map sizes; cached per (sizes, device)."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.num_levels = len(config.ratios_per_scale)
        self.priors_per_cell = config.priors_per_cell()
        self._cache: dict[tuple, torch.Tensor] = {}

    def shapes(self, level: int) -> list[tuple[float, float]]:
        """Return the A_l (w, h) sizes of level ``level``, normalised to the input side."""
        s, s_next = self.config.scales[level], self.config.scales[level + 1]
        sizes = [(s, s), (math.sqrt(s * s_next),) * 2]
        for r in self.config.ratios(level):
            sizes += [(s * math.sqrt(r), s / math.sqrt(r)), (s / math.sqrt(r), s * math.sqrt(r))]
        return sizes

    def forward(self, feature_sizes: Sequence[tuple[int, int]],
                device: torch.device | str = 'cpu') -> torch.Tensor:
        """L (H_l, W_l) sizes -> priors (P, 4) float32 cxcywh, P = sum_l H_l W_l A_l."""
        key = (tuple((int(h), int(w)) for h, w in feature_sizes), str(device))
        if len(key[0]) != self.num_levels:
            raise ValueError(f'priors: expected {self.num_levels} feature-map sizes, got '
                             f'{len(key[0])}')
        if key not in self._cache:
            self._cache[key] = self._generate(key[0]).to(device)
        return self._cache[key]

    def _generate(self, feature_sizes: tuple[tuple[int, int], ...]) -> torch.Tensor:
        out = []
        for level, (h, w) in enumerate(feature_sizes):
            if h < 1 or w < 1:
                raise ValueError(f'priors: level {level}: expected a non-empty map, got '
                                 f'{h}x{w}')
            ys = (torch.arange(h, dtype=torch.float64) + 0.5) / h
            xs = (torch.arange(w, dtype=torch.float64) + 0.5) / w
            cy, cx = torch.meshgrid(ys, xs, indexing='ij')                      # (H, W)
            sizes = torch.tensor(self.shapes(level), dtype=torch.float64)       # (A, 2)
            a = sizes.shape[0]
            centres = torch.stack([cx, cy], dim=-1).reshape(h * w, 1, 2).expand(-1, a, -1)
            wh = sizes.view(1, a, 2).expand(h * w, -1, -1)
            out.append(torch.cat([centres, wh], dim=-1).reshape(-1, 4))        # (H W A, 4)
        priors = torch.cat(out).float()
        if self.config.clip_priors:
            priors = priors.clamp(0.0, 1.0)
        return priors

    def count(self, feature_sizes: Sequence[tuple[int, int]]) -> int:
        """Return P for these feature-map sizes."""
        return sum(h * w * a for (h, w), a in zip(feature_sizes, self.priors_per_cell))
