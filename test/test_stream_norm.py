# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Shared backbone, per-stream batch-norm statistics: eval normalises streams as training did."""

import pytest
import torch
from torch import nn

from stal_ros.config import DetectorConfig
from stal_ros.net.detector import build_model
from stal_ros.net.losses import DetectionLoss
from stal_ros.net.stream_norm import split_batch_norm, StreamBatchNorm2d


def test_stream_batch_norm_equals_one_batch_norm_per_stream_with_shared_weights():
    torch.manual_seed(0)
    rgb = torch.rand(4, 3, 5, 5) * 2 + 1                   # mean ~2
    flow = torch.randn(4, 3, 5, 5) * 0.1                   # mean ~0, small
    norm = StreamBatchNorm2d(3, num_streams=2, momentum=0.5)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        norm.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    a, b = nn.BatchNorm2d(3, momentum=0.5), nn.BatchNorm2d(3, momentum=0.5)
    for ref in (a, b):
        ref.load_state_dict({'weight': norm.weight.detach(), 'bias': norm.bias.detach(),
                             'running_mean': torch.zeros(3), 'running_var': torch.ones(3),
                             'num_batches_tracked': torch.tensor(0)})
    out = norm(torch.cat([rgb, flow]))
    torch.testing.assert_close(out, torch.cat([a(rgb), b(flow)]))
    torch.testing.assert_close(norm.running_mean, torch.stack([a.running_mean, b.running_mean]))
    torch.testing.assert_close(norm.running_var, torch.stack([a.running_var, b.running_var]))
    assert norm.running_mean[0].mean() > 0.5 and norm.running_mean[1].abs().max() < 0.1
    norm.eval(), a.eval(), b.eval()
    torch.testing.assert_close(norm(torch.cat([rgb, flow])), torch.cat([a(rgb), b(flow)]))


def test_split_batch_norm_replaces_every_batch_norm_and_keeps_its_weights():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm2d(4)))
    with torch.no_grad():
        net[1].weight.fill_(3.0)
        net[1].running_mean.fill_(0.25)
    split_batch_norm(net, 2)
    norms = [m for m in net.modules() if isinstance(m, StreamBatchNorm2d)]
    assert len(norms) == 2 and not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert torch.equal(norms[0].weight, torch.full((4,), 3.0))
    assert torch.equal(norms[0].running_mean, torch.full((2, 4), 0.25))
    assert split_batch_norm(nn.BatchNorm2d(2), 1).__class__ is nn.BatchNorm2d


def _batch():
    """Eight clips of a bright square moving right by 4 px per frame on a textured ground."""
    g = torch.Generator().manual_seed(0)
    clip = torch.rand(8, 3, 3, 128, 128, generator=g) * 0.3
    boxes = []
    for n in range(8):
        x, y = 10 + 8 * n, 20 + 6 * n
        for t in range(3):
            clip[n, t, :, y:y + 40, x + 4 * t:x + 4 * t + 30] = 0.9
        boxes.append((torch.tensor([[(x + 8) / 128, y / 128, (x + 38) / 128, (y + 40) / 128]]),
                      torch.tensor([n % 2])))
    return clip, boxes


@pytest.mark.parametrize('backbone', [{'kind': 'lite', 'width': 0.25, 'batch_norm': True},
                                      {'kind': 'vgg16_rfb', 'width': 0.0625}])
def test_eval_outputs_on_the_training_batch_match_training_outputs(backbone):
    """After training steps, eval mode (running statistics) must reproduce train mode.

    The RGB and the flow images have very different statistics; with one set of running
    statistics for both (before), eval mode normalised each stream with their blend and the
    outputs differed from training by far more than the tolerance here.
    """
    torch.manual_seed(0)
    size = 268 if backbone['kind'] == 'vgg16_rfb' else 128
    config = DetectorConfig.from_dict({
        'input_size': size, 'class_names': ['right', 'left'], 'backbone': backbone,
        'flow': {'kind': 'dis'}, 'fusion': {'kind': 'concat'}})
    model = build_model(config).train()
    clip, targets = _batch()
    if size != 128:
        clip = torch.nn.functional.interpolate(clip.flatten(0, 1), size=(size, size))
        clip = clip.view(8, 3, 3, size, size)
    criterion = DetectionLoss.from_config(config)
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    for _ in range(3):
        loss = criterion(model(clip), targets).total
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    # Running statistics of this very batch (momentum 1: the last batch's statistics).
    norms = [m for m in model.modules() if isinstance(m, (StreamBatchNorm2d, nn.BatchNorm2d))]
    assert norms and all(isinstance(m, StreamBatchNorm2d) for m in norms)
    for m in norms:
        m.momentum = 1.0
    with torch.no_grad():
        train_out = model(clip)
        model.eval()
        eval_out = model(clip)
    scale = train_out.conf.abs().mean()
    err = (eval_out.conf - train_out.conf).abs().mean() / scale
    assert err < 0.05, float(err)
