# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑥ SSD/RFB default boxes (priors) for the backbone's feature-map sizes (paper §3.4).

Priors are normalised ``cx, cy, w, h`` in [0, 1] of the network input; this is the only place
(with ``box_coder``) where that format exists.  Level l with H_l x W_l cells has, in every
cell (row-major, y then x) and in this order: a square of side s_l, a square of side
sqrt(s_l * s_l+1), then for each extra aspect ratio r of the level the boxes
(s_l sqrt(r), s_l / sqrt(r)) and (s_l / sqrt(r), s_l sqrt(r)) (SSD, Liu et al. 2016).  Cell
centres are ((x + 0.5) / W_l, (y + 0.5) / H_l), the SSD paper's formula, so any input size
works; SSD300's integer ``steps`` give nearly the same centres at 300.  With ``clip`` the
values are clamped to [0, 1] as SSD does.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch


class PriorBox:
    """Default-box generator from plain values (torchvision's ``DefaultBoxGenerator`` style).

    Args:
        scales: L + 1 sizes s_0 .. s_L as fractions of the input side, increasing.
        aspect_ratios: per level, the extra aspect ratios r >= 1 (each adds r and 1 / r).
        clip: clamp the priors to [0, 1].

    Attributes:
        priors_per_cell: A_l per level, 2 + 2 * len(aspect_ratios[l]).

    """

    def __init__(self, *, scales: Sequence[float], aspect_ratios: Sequence[Sequence[float]],
                 clip: bool) -> None:
        self.scales = tuple(float(s) for s in scales)
        self.aspect_ratios = tuple(tuple(float(r) for r in level) for level in aspect_ratios)
        self.clip = bool(clip)
        self.num_levels = len(self.aspect_ratios)
        self.priors_per_cell = tuple(2 + 2 * len(r) for r in self.aspect_ratios)

    def shapes(self, level: int) -> list[tuple[float, float]]:
        """Return the A_l (w, h) sizes of level ``level``, normalised to the input side."""
        s, s_next = self.scales[level], self.scales[level + 1]
        sizes = [(s, s), (math.sqrt(s * s_next),) * 2]
        for r in self.aspect_ratios[level]:
            sizes += [(s * math.sqrt(r), s / math.sqrt(r)), (s / math.sqrt(r), s * math.sqrt(r))]
        return sizes

    def __call__(self, feature_sizes: Sequence[tuple[int, int]]) -> torch.Tensor:
        """L (H_l, W_l) sizes -> priors (P, 4) float32 cxcywh, P = sum_l H_l W_l A_l."""
        if len(feature_sizes) != self.num_levels:
            raise ValueError(f'priors: expected {self.num_levels} feature-map sizes, got '
                             f'{len(feature_sizes)}')
        out = []
        for level, (h, w) in enumerate(feature_sizes):
            ys = (torch.arange(h, dtype=torch.float64) + 0.5) / h
            xs = (torch.arange(w, dtype=torch.float64) + 0.5) / w
            cy, cx = torch.meshgrid(ys, xs, indexing='ij')                      # (H, W)
            sizes = torch.tensor(self.shapes(level), dtype=torch.float64)       # (A, 2)
            a = sizes.shape[0]
            centres = torch.stack([cx, cy], dim=-1).reshape(h * w, 1, 2).expand(-1, a, -1)
            wh = sizes.view(1, a, 2).expand(h * w, -1, -1)
            out.append(torch.cat([centres, wh], dim=-1).reshape(-1, 4))        # (H W A, 4)
        priors = torch.cat(out).float()
        return priors.clamp(0.0, 1.0) if self.clip else priors

    def count(self, feature_sizes: Sequence[tuple[int, int]]) -> int:
        """Return P for these feature-map sizes."""
        return sum(h * w * a for (h, w), a in zip(feature_sizes, self.priors_per_cell))
