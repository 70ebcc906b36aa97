# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""PWC-Net's two primitives in plain PyTorch: the cost volume and backward warping.

The authors' code shipped a prebuilt CUDA-8 correlation extension (paper.md, "What the authors'
code does differently"); here both operations are written with ordinary tensor operations so
they run on CPU and any GPU and are differentiable by autograd.  A faster kernel may later be
put behind the same functions.  Both run at every pyramid level: their inputs are not
re-checked (the contracts are in the docstrings).
"""

from __future__ import annotations

import torch
from torch import Tensor
import torch.nn.functional as F


def cost_volume(f1: Tensor, f2: Tensor, search_range: int) -> Tensor:
    """Correlate ``f1`` with displaced ``f2`` over a square search window (PWC-Net §3).

    ``out[n, k, y, x] = mean_c f1[n, c, y, x] * f2[n, c, y + dy, x + dx]`` with the
    displacement index ``k = (dy + d) * (2d + 1) + (dx + d)`` (rows of ``dy``, then ``dx``,
    each in ``-d..d``) and ``f2`` zero outside the image.  The mean over channels is PWC-Net's
    normalisation.

    Implementation: ``f2`` is zero-padded by ``d`` once and each displacement is a sliced view
    of it; one product and channel sum per displacement keeps the temporary memory at one
    feature map (an ``unfold`` of all windows would need ``(2d + 1)^2`` times the features and
    was also slower on CPU when measured).

    Args:
        f1: (N, C, H, W) features of the first image.
        f2: (N, C, H, W) features of the second (usually already warped) image.
        search_range: d >= 0, the largest displacement in feature pixels.

    Returns:
        (N, (2d + 1)^2, H, W) matching costs, same dtype and device as ``f1``.
    """
    d = search_range
    n, c, h, w = f1.shape
    side = 2 * d + 1
    padded = F.pad(f2, (d, d, d, d))                      # (N, C, H + 2d, W + 2d)
    costs = [(f1 * padded[:, :, dy:dy + h, dx:dx + w]).sum(1)     # (N, H, W) each
             for dy in range(side) for dx in range(side)]
    volume = torch.stack(costs, 1)                         # (N, (2d + 1)^2, H, W)
    return volume / c


def pixel_grid(n: int, h: int, w: int, *, device: torch.device | None = None,
               dtype: torch.dtype = torch.float32) -> Tensor:
    """Pixel-centre coordinates ``(x, y)`` of an ``h x w`` image.

    Returns:
        (N, 2, H, W) with channel 0 = column index x, channel 1 = row index y.
    """
    ys = torch.arange(h, device=device, dtype=dtype)
    xs = torch.arange(w, device=device, dtype=dtype)
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack((grid_x, grid_y), 0).unsqueeze(0).expand(n, 2, h, w)


def warp(x: Tensor, flow: Tensor, *, mask: bool = True) -> Tensor:
    """Backward-warp ``x`` by ``flow``: ``out(p) = x(p + flow(p))``, bilinear (PWC-Net §3).

    With ``flow`` the flow from image 1 to image 2, warping image 2 (or its features) gives an
    estimate of image 1.  Pixels whose sampling position falls outside ``x`` are set to zero
    when ``mask`` is true (PWC-Net's validity mask, computed here exactly from the sampling
    position instead of by warping a tensor of ones); with ``mask`` false, positions partly
    outside blend with zero padding (``grid_sample``'s ``'zeros'``).  A zero flow returns
    ``x`` (to float rounding).

    Args:
        x: (N, C, H, W) image or features.
        flow: (N, 2, H, W) displacement in pixels of ``x``, channel 0 = x (right),
            channel 1 = y (down).
        mask: zero the samples taken from outside ``x``.

    Returns:
        (N, C, H, W) warped ``x``.
    """
    n, _, h, w = x.shape
    pos = pixel_grid(n, h, w, device=x.device, dtype=flow.dtype) + flow   # (N, 2, H, W)
    # Normalise to [-1, 1] with align_corners=True: -1 and 1 are the centres of the border
    # pixels, so integer positions sample pixels exactly.
    gx = pos[:, 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = pos[:, 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), -1).to(x.dtype)                           # (N, H, W, 2)
    out = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=True)
    if mask:
        eps = 1e-3
        valid = ((pos[:, 0] >= -eps) & (pos[:, 0] <= w - 1 + eps)
                 & (pos[:, 1] >= -eps) & (pos[:, 1] <= h - 1 + eps))        # (N, H, W)
        out = out * valid.unsqueeze(1).to(out.dtype)
    return out
