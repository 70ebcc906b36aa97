# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Weight averaging (SWA): the running mean of the weights and the batch-norm re-estimation."""

import pytest
import torch
from torch import nn

from stal_ros.net.averaging import estimate_batch_norm, WeightAverage
from stal_ros.net.stream_norm import StreamBatchNorm2d


def test_the_average_is_the_mean_of_the_weights_it_was_given():
    model = nn.Linear(3, 2)
    average = WeightAverage(model)
    with pytest.raises(ValueError, match='no weights have been averaged'):
        average.apply_to(model)
    for value in (1.0, 2.0, 6.0):
        with torch.no_grad():
            model.weight.fill_(value)
            model.bias.fill_(-value)
        average.update(model)
    restored = WeightAverage(model)
    restored.load_state_dict(average.state_dict())
    restored.apply_to(model)
    assert restored.count == 3
    torch.testing.assert_close(model.weight, torch.full((2, 3), 3.0))
    torch.testing.assert_close(model.bias, torch.full((2,), -3.0))
    with pytest.raises(ValueError, match='other parameters'):
        WeightAverage(nn.Linear(3, 2, bias=False)).load_state_dict(average.state_dict())


def test_batch_norm_statistics_are_the_plain_mean_over_the_batches_per_stream():
    torch.manual_seed(0)
    norm = StreamBatchNorm2d(3, num_streams=2, momentum=0.1)
    plain = nn.BatchNorm2d(3)
    model = nn.Sequential(norm, plain).eval()
    with torch.no_grad():
        norm.running_mean.fill_(7.0)     # stale statistics that must not survive
    batches = [torch.randn(4, 3, 5, 5) * (i + 1) + torch.tensor([0.0, 1.0, 2.0]).view(1, 3, 1, 1)
               for i in range(3)]
    assert estimate_batch_norm(model, iter(batches), 3) == 3
    assert not model.training and norm.momentum == 0.1 and plain.momentum == 0.1
    for s in range(2):
        want = torch.stack([b[2 * s:2 * s + 2].mean(dim=(0, 2, 3)) for b in batches]).mean(0)
        torch.testing.assert_close(norm.running_mean[s], want)
    assert norm.num_batches_tracked.item() == 3 and plain.num_batches_tracked.item() == 3
    assert estimate_batch_norm(nn.Linear(2, 2), iter([]), 1) == 0    # nothing to estimate
    with pytest.raises(ValueError, match='batches >= 1'):
        estimate_batch_norm(model, iter(batches), 0)
