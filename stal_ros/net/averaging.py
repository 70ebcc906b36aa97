# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Stochastic weight averaging (Izmailov et al., UAI 2018) for the detector.

SWA takes the running mean of the weights visited late in training (at a constant or cyclic
learning rate) instead of the last iterate: the mean lies nearer the centre of the wide
optimum the iterates circle and generalises better, at no cost at inference.  The averaged
weights never produced activations during training, so the batch-norm running statistics
must be estimated again with the averaged weights (``estimate_batch_norm``): a forward pass
over training batches in training mode, with a cumulative (not exponential) average.
Per-stream batch norms (``StreamBatchNorm2d``) are handled like ``nn.BatchNorm2d``.

``torch.optim.swa_utils`` does the same with ``AveragedModel`` (a deep copy kept on the
device) and ``update_bn``, which only knows the ``nn`` batch norms and calls
``model(input)`` on loader batches; this module keeps only the averaged parameters (no second
model during training), saves them in the resumable training state and knows the stream
batch norms.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import torch
from torch import nn

from stal_ros.net.stream_norm import StreamBatchNorm2d

_NORMS = (nn.modules.batchnorm._BatchNorm, StreamBatchNorm2d)


class WeightAverage:
    """The running mean of a model's parameters (buffers are not averaged).

    Args:
        model: the model being trained; its parameter names fix what is averaged.
    """

    def __init__(self, model: nn.Module) -> None:
        self.names = [name for name, _ in model.named_parameters()]
        self.count = 0
        self.mean: dict[str, torch.Tensor] = {}

    def update(self, model: nn.Module) -> None:
        """Add ``model``'s current parameters to the mean."""
        self.count += 1
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name not in self.mean:
                    self.mean[name] = param.detach().clone()
                else:
                    self.mean[name].add_(param.detach() - self.mean[name], alpha=1.0 / self.count)

    def apply_to(self, model: nn.Module) -> None:
        """Copy the mean into ``model``'s parameters (its buffers are left as they are).

        Raises:
            ValueError: nothing has been averaged yet.
        """
        if not self.count:
            raise ValueError('WeightAverage.apply_to: no weights have been averaged yet')
        with torch.no_grad():
            for name, param in model.named_parameters():
                param.copy_(self.mean[name])

    def state_dict(self) -> dict:
        """Plain tensors and ints (loadable with ``weights_only=True``)."""
        return {'count': self.count,
                'mean': {k: v.detach().cpu() for k, v in self.mean.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore what ``state_dict`` returned (the tensors move to the parameters' device).

        Raises:
            ValueError: the state averages other parameters than this model's.
        """
        mean = state['mean']
        if state['count'] and sorted(mean) != sorted(self.names):
            raise ValueError('WeightAverage.load_state_dict: the state averages other '
                             'parameters than this model has')
        self.count = int(state['count'])
        self.mean = dict(mean)

    def to(self, device: torch.device) -> 'WeightAverage':
        """Move the mean to ``device``; return self."""
        self.mean = {k: v.to(device) for k, v in self.mean.items()}
        return self


def estimate_batch_norm(model: nn.Module, clips: Iterable[torch.Tensor],
                        batches: int) -> int:
    """Re-estimate every batch norm's running statistics from ``batches`` forward passes.

    The statistics are reset and then averaged cumulatively over the batches (momentum None),
    in training mode and without gradients; the momentum and the training/eval mode are
    restored afterwards.  A model without batch norms is left alone.

    Args:
        model: called as ``model(clips)``.
        clips: yields input batches, e.g. (N, K, 3, H, W) training clips on the model's device.
        batches: how many batches to draw (>= 1).

    Returns:
        The number of batches used (0 when the model has no batch norm).
    """
    if batches < 1:
        raise ValueError(f'estimate_batch_norm: expected batches >= 1, got {batches}')
    norms = [m for m in model.modules() if isinstance(m, _NORMS)
             and getattr(m, 'track_running_stats', True)]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    was_training = model.training
    model.train()
    source: Iterator[torch.Tensor] = iter(clips)
    with torch.no_grad():
        for _ in range(batches):
            model(next(source))
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.train(was_training)
    return batches
