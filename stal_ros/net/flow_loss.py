# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Multiscale flow loss of the flow subnet (paper eq. 1, PWC-Net's training loss).

``L_flow = sum_i alpha_i * sum_x |w_i(x) - w_gt_i(x)|_2`` over the estimated pyramid levels
i (finest first), with ``w_gt_i`` the ground-truth flow averaged down to level i's grid and its
vectors scaled to that grid.  The weight-decay term of eq. 1 is the optimiser's job.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from stal_ros.net.flow import resize_flow

REDUCTIONS = ('sum', 'mean')


def _check_flow(name: str, flow: object) -> Tensor:
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
        gt: (N, 2, H, W) ground-truth flow on the same grid.

    Returns:
        (N, H, W) end-point errors (``.mean()`` gives the usual average EPE).
    """
    _check_flow('endpoint_error flow', flow)
    _check_flow('endpoint_error gt', gt)
    if flow.shape != gt.shape:
        raise ValueError(f'endpoint_error: expected flow and gt of equal shape, got '
                         f'{tuple(flow.shape)} and {tuple(gt.shape)}')
    return torch.linalg.vector_norm(flow - gt, dim=1)


def multiscale_flow_loss(pyramid: Sequence[Tensor], gt_flow: Tensor, weights: Sequence[float],
                         *, reduction: str = 'sum') -> Tensor:
    """Paper eq. 1 without the weight decay.

    Args:
        pyramid: L' estimates, finest first, each (N, 2, h_i, w_i) in pixels of its own grid
            (``FlowOutput.pyramid``).
        gt_flow: (N, 2, H, W) ground truth in pixels of the frames the flow was computed on.
        weights: alpha_i, finest first; at least L' values (a longer tuple, such as the
            default five weights for a smaller test network, is used from the finest level).
        reduction: ``'sum'`` sums the EPE over pixels as in eq. 1 (PWC-Net's training loss),
            ``'mean'`` averages over pixels (scale independent of the resolution, easier to
            balance against the detection loss); either way averaged over the batch.

    Returns:
        Scalar loss tensor.
    """
    _check_flow('multiscale_flow_loss gt_flow', gt_flow)
    if reduction not in REDUCTIONS:
        raise ValueError(f'multiscale_flow_loss: expected reduction in {list(REDUCTIONS)}, '
                         f'got {reduction!r}')
    if len(pyramid) == 0:
        raise ValueError('multiscale_flow_loss: expected at least one pyramid level, got none '
                         '(classical flows have nothing to train)')
    if len(weights) < len(pyramid):
        raise ValueError(f'multiscale_flow_loss: expected at least {len(pyramid)} weights '
                         f'(one per level), got {len(weights)}')
    total = gt_flow.new_zeros(())
    for i, (estimate, alpha) in enumerate(zip(pyramid, weights)):
        _check_flow(f'multiscale_flow_loss pyramid[{i}]', estimate)
        if estimate.shape[0] != gt_flow.shape[0]:
            raise ValueError(f'multiscale_flow_loss: expected pyramid[{i}] with batch '
                             f'{gt_flow.shape[0]} like gt_flow, got {tuple(estimate.shape)}')
        target = resize_flow(gt_flow, tuple(estimate.shape[-2:]), mode='area')
        epe = endpoint_error(estimate, target)                        # (N, h_i, w_i)
        per_sample = epe.flatten(1).sum(1) if reduction == 'sum' else epe.flatten(1).mean(1)
        total = total + float(alpha) * per_sample.mean()
    return total
