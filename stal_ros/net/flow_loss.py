# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Multiscale flow loss of the flow subnet (paper eq. 1, PWC-Net's training loss).

``L_flow = sum_l alpha_l * sum_x |w_l(x) - w_gt_l(x)|_2`` over the estimated pyramid levels l,
with ``w_gt_l`` the ground-truth flow averaged down to level l's grid.  The weight-decay term of
eq. 1 is the optimiser's job.

Units, per level.  The estimates of ``PWCNet`` are in pixels of their own level's grid (a level
with 1/2^l of the input's resolution carries the input-pixel flow divided by 2^l).  The loss
puts every level in ONE unit, pixels of the ground-truth flow's frames: each estimate's vectors
are scaled by (W_gt / w_l, H_gt / h_l) before the end-point error, exactly as PWC-Net compares
every level with the same (scaled) ground truth.  With ``reduction='sum'`` each level then
sums its errors over its h_l x w_l cells (4x fewer per coarser level), and PWC-Net's weights
(alpha_6 .. alpha_2 = 0.32, 0.08, 0.02, 0.01, 0.005) roughly undo that: a uniform error of e
pixels at 320x320 contributes alpha_l * h_l * w_l * e = 128e, 64e, 32e, 32e, 32e from the
finest level (80x80) to the coarsest (5x5), i.e. 44, 22, 11, 11, 11 %.

Weights are given coarsest level first, as in PWC-Net (``FlowConfig.loss_weights``); the last
weight belongs to the finest estimate, so a network with fewer levels uses the last ones.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from stal_ros.net.flow import resize_flow

REDUCTIONS = ('sum', 'mean')


def check_flow(name: str, flow: object) -> Tensor:
    """Validate a non-empty float (N, 2, H, W) flow; raise TypeError/ValueError naming it."""
    if not isinstance(flow, Tensor):
        raise TypeError(f'{name}: expected a torch.Tensor, got {type(flow).__name__}')
    if not flow.is_floating_point():
        raise TypeError(f'{name}: expected a floating-point tensor, got {flow.dtype}')
    if flow.dim() != 4 or flow.shape[1] != 2 or flow.numel() == 0:
        raise ValueError(f'{name}: expected a non-empty (N, 2, H, W) flow, got shape '
                         f'{tuple(flow.shape)}')
    return flow


def endpoint_error(flow: Tensor, gt: Tensor) -> Tensor:
    """Per-pixel end-point error, the L2 norm of the flow difference.

    Args:
        flow: (N, 2, H, W) estimated flow.
        gt: (N, 2, H, W) ground-truth flow on the same grid, in the same unit.

    Returns:
        (N, H, W) end-point errors (``.mean()`` gives the usual average EPE).
    """
    return torch.linalg.vector_norm(flow - gt, dim=1)


def level_losses(pyramid: Sequence[Tensor], gt_flow: Tensor, weights: Sequence[float],
                 *, reduction: str = 'sum') -> list[Tensor]:
    """Compute the weighted term of each level of paper eq. 1 (their sum is the loss).

    Args:
        pyramid: L' estimates, finest first, each (N, 2, h_l, w_l) in pixels of its own grid
            (``FlowOutput.pyramid``).
        gt_flow: (N, 2, H, W) ground truth in pixels of the frames the flow was computed on.
        weights: alpha, coarsest level first; at least L' values, the last one for the finest
            estimate ``pyramid[0]``.
        reduction: ``'sum'`` sums the end-point errors over each level's cells as in eq. 1
            (PWC-Net's weights are made for it), ``'mean'`` averages them (each level then
            weighs alpha_l alone); either way averaged over the batch.

    Returns:
        L' scalars, finest level first: alpha_l * (sum or mean of the level's EPE in pixels of
        the ground-truth frames).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f'flow loss: expected reduction in {list(REDUCTIONS)}, got '
                         f'{reduction!r}')
    if len(pyramid) == 0:
        raise ValueError('flow loss: expected at least one pyramid level, got none '
                         '(classical flows have nothing to train)')
    if len(weights) < len(pyramid):
        raise ValueError(f'flow loss: expected at least {len(pyramid)} weights (one per '
                         f'level), got {len(weights)}')
    height, width = gt_flow.shape[-2:]
    finest_first = list(weights)[::-1]
    terms = []
    for estimate, alpha in zip(pyramid, finest_first):
        h, w = estimate.shape[-2:]
        target = resize_flow(gt_flow, (h, w), mode='area')        # in level-l pixels
        to_gt_pixels = estimate.new_tensor((width / w, height / h)).view(1, 2, 1, 1)
        epe = endpoint_error(estimate * to_gt_pixels, target * to_gt_pixels)  # (N, h, w)
        per_sample = epe.flatten(1).sum(1) if reduction == 'sum' else epe.flatten(1).mean(1)
        terms.append(float(alpha) * per_sample.mean())
    return terms


def multiscale_flow_loss(pyramid: Sequence[Tensor], gt_flow: Tensor, weights: Sequence[float],
                         *, reduction: str = 'sum') -> Tensor:
    """Paper eq. 1 without the weight decay: the sum of ``level_losses``.

    Args:
        pyramid: L' estimates, finest first (see ``level_losses``).
        gt_flow: (N, 2, H, W) ground truth in pixels of the frames.
        weights: alpha, coarsest level first (``FlowConfig.loss_weights``).
        reduction: ``'sum'`` (eq. 1) or ``'mean'``.

    Returns:
        Scalar loss tensor, in pixels of the ground-truth frames (times the weights).
    """
    return torch.stack(level_losses(pyramid, gt_flow, weights, reduction=reduction)).sum()
