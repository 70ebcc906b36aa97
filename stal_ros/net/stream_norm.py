# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Batch norm for a backbone shared by several streams: shared weights, per-stream statistics.

Paper §3.3.2: ONE backbone runs on the RGB frame and on the image-like flow.  The paper shares
the *weights*; a batch norm's running mean and variance are not weights but statistics of its
inputs, and RGB images and flow images have very different ones.  With one set of statistics
both streams update the same running mean/var (measured: the first batch norm's mean became
~0.47 RGB + 0.53 flow), so in eval mode each stream is normalised with a blend that fits
neither (a fused model that scored frame-mAP 0.95 with per-stream batch statistics scored
0.01 in eval mode).  ``StreamBatchNorm2d`` keeps one set of running statistics per stream and
shares the affine weight and bias.

Contract: the input batch is the streams stacked along the batch axis, stream-major:
(S * N, C, H, W) with rows [s * N, (s + 1) * N) from stream s.  Each stream is normalised
with its own batch statistics in training and its own running statistics in eval.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class StreamBatchNorm2d(nn.Module):
    """``BatchNorm2d`` over S stacked streams: per-stream statistics, shared affine weights.

    Args:
        num_features: C.
        num_streams: S (2 for the RGB + flow backbone).
        eps, momentum: as ``nn.BatchNorm2d``.

    Buffers ``running_mean`` and ``running_var`` are (S, C); ``weight`` and ``bias`` are (C,).
    """

    def __init__(self, num_features: int, num_streams: int, eps: float = 1e-5,
                 momentum: float | None = 0.1) -> None:
        super().__init__()
        self.num_features = num_features
        self.num_streams = num_streams
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer('running_mean', torch.zeros(num_streams, num_features))
        self.register_buffer('running_var', torch.ones(num_streams, num_features))
        self.register_buffer('num_batches_tracked', torch.zeros((), dtype=torch.long))

    @classmethod
    def from_batch_norm(cls, bn: nn.BatchNorm2d, num_streams: int) -> 'StreamBatchNorm2d':
        """Make one from ``bn``: its weights shared, its statistics copied to every stream."""
        out = cls(bn.num_features, num_streams, bn.eps, bn.momentum)
        with torch.no_grad():
            out.weight.copy_(bn.weight)
            out.bias.copy_(bn.bias)
            if bn.running_mean is not None:
                out.running_mean.copy_(bn.running_mean.expand(num_streams, -1))
                out.running_var.copy_(bn.running_var.expand(num_streams, -1))
        return out

    def reset_running_stats(self) -> None:
        """Zero the running means and batch count, set the variances to one (as nn.BatchNorm2d)."""
        self.running_mean.zero_()
        self.running_var.fill_(1.0)
        self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise (S * N, C, H, W) stream-major stacked streams; same shape out."""
        if self.training:
            self.num_batches_tracked.add_(1)
        momentum = self.momentum
        if momentum is None:  # cumulative moving average, as nn.BatchNorm2d
            momentum = 1.0 / float(self.num_batches_tracked)
        parts = x.chunk(self.num_streams, dim=0)
        out = [F.batch_norm(part, self.running_mean[s], self.running_var[s], self.weight,
                            self.bias, self.training, momentum, self.eps)
               for s, part in enumerate(parts)]
        return torch.cat(out, dim=0)

    def extra_repr(self) -> str:
        """Shown by ``print(module)``."""
        return (f'{self.num_features}, num_streams={self.num_streams}, eps={self.eps}, '
                f'momentum={self.momentum}')


def split_batch_norm(module: nn.Module, num_streams: int) -> nn.Module:
    """Replace every ``nn.BatchNorm2d`` inside ``module`` by a ``StreamBatchNorm2d``.

    Like ``nn.SyncBatchNorm.convert_sync_batchnorm``; returns ``module`` (changed in place, or
    the new norm when ``module`` itself is a batch norm).  ``num_streams`` 1 changes nothing.
    """
    if num_streams == 1:
        return module
    if isinstance(module, nn.BatchNorm2d):
        return StreamBatchNorm2d.from_batch_norm(module, num_streams)
    for name, child in module.named_children():
        setattr(module, name, split_batch_norm(child, num_streams))
    return module
