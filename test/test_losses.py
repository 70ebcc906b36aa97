# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""MultiBox loss (matching, smooth L1, 3:1 hard negatives), eq. 8 total, flow freezing."""

import math

import pytest
import torch
import torch.nn.functional as F

from stal_ros.config import DetectorConfig
from stal_ros.net.box_coder import BoxCoder, cxcywh_to_xyxy
from stal_ros.net.detector import build_detector, build_model
from stal_ros.net.losses import DetectionLoss, match, MultiBoxLoss

PRIORS = torch.tensor([[0.25, 0.25, 0.3, 0.3], [0.75, 0.25, 0.3, 0.3],
                       [0.25, 0.75, 0.3, 0.3], [0.75, 0.75, 0.3, 0.3],
                       [0.5, 0.5, 0.9, 0.9]])
CODER = BoxCoder((0.1, 0.2))
TINY = {'input_size': 64, 'class_names': ['wave', 'walk'],
        'backbone': {'kind': 'lite', 'width': 0.25, 'batch_norm': True},
        'flow': {'kind': 'dis', 'input_size': [64, 64], 'pyramid_channels': [4, 6, 8],
                 'search_range': 2}}


def test_match_threshold_and_forced_best_prior():
    gt = torch.cat([cxcywh_to_xyxy(PRIORS[:1]), torch.tensor([[0.7, 0.7, 0.72, 0.72]])])
    loc_t, conf_t = match(gt, torch.tensor([1, 0]), PRIORS, 0.5, CODER)
    # Prior 0 equals box 0 (label 1 -> class 2); the tiny box 1 has IoU < 0.5 with every
    # prior but still claims its best one (prior 3); the rest is background.
    assert conf_t.tolist() == [2, 0, 0, 1, 0]
    assert torch.allclose(loc_t[0], torch.zeros(4), atol=1e-6)
    assert loc_t.shape == (5, 4)


def test_match_gives_every_ground_truth_its_own_prior():
    """Two boxes whose best prior is the same one both keep a prior (bipartite step).

    Box 0 overlaps priors 0 (IoU 0.37) and 4 (0.11); box 1 overlaps prior 0 more (0.41) and
    nothing else.  SSD's loop gave prior 0 to box 1 and left box 0 without any positive; the
    bipartite step gives prior 0 to box 1 (the best pair) and prior 4 to box 0.
    """
    gt = torch.tensor([[0.05, 0.05, 0.35, 0.25], [0.15, 0.15, 0.45, 0.35]])
    _, conf_t = match(gt, torch.tensor([0, 1]), PRIORS, 0.5, CODER)
    assert conf_t.tolist() == [2, 0, 0, 0, 1]
    positives = set(conf_t.nonzero().flatten().tolist())
    assert {int(conf_t[p]) for p in positives} == {1, 2}     # both boxes are represented


def test_degenerate_targets_fail_naming_the_box():
    loss = MultiBoxLoss((0.1, 0.2))
    conf, loc = torch.randn(1, 5, 3), torch.randn(1, 5, 4)
    for bad in ([0.2, 0.2, 0.2, 0.4], [0.3, 0.2, 0.1, 0.4], [0.1, float('nan'), 0.3, 0.4]):
        boxes = torch.tensor([[0.1, 0.1, 0.3, 0.3], bad])
        with pytest.raises(ValueError, match=r'targets\[0\] boxes\[1\] = .*x2 > x1 and y2 > y1'):
            loss(loc, conf, PRIORS, [(boxes, torch.tensor([0, 1]))])


def test_match_without_ground_truth_is_all_background():
    loc_t, conf_t = match(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), PRIORS, 0.5,
                          CODER)
    assert conf_t.tolist() == [0] * 5 and torch.count_nonzero(loc_t) == 0


def test_hard_negative_mining_three_per_positive():
    loss = MultiBoxLoss((0.1, 0.2), neg_pos_ratio=3)
    conf = torch.zeros(1, 5, 3)
    # Background logits: the lower, the harder the negative (priors 1..4).
    conf[0, 1:, 0] = torch.tensor([2.0, -1.0, -3.0, 0.0])
    loc = torch.zeros(1, 5, 4)
    loc[0, 0] = torch.tensor([1.0, 0.0, 0.0, 0.5])         # error on the positive only
    loc[0, 1] = 10.0                                         # negatives never regress
    target = (cxcywh_to_xyxy(PRIORS[:1]), torch.tensor([0]))
    reg, cls = loss(loc, conf, PRIORS, [target])
    ce = F.cross_entropy(conf[0], torch.tensor([1, 0, 0, 0, 0]), reduction='none')
    # Positive (prior 0) + the three hardest negatives (priors 3, 2, 4); prior 1 is left out.
    assert cls.item() == pytest.approx((ce[0] + ce[3] + ce[2] + ce[4]).item(), rel=1e-5)
    assert reg.item() == pytest.approx(0.5 + 0.125, rel=1e-5)  # smooth L1: 1 -> 0.5, .5 -> .125
    assert ce[0].item() == pytest.approx(math.log(3))


def test_no_positives_gives_zero_loss_and_bad_targets_fail():
    loss = MultiBoxLoss((0.1, 0.2))
    conf, loc = torch.randn(1, 5, 3), torch.randn(1, 5, 4)
    reg, cls = loss(loc, conf, PRIORS, [(torch.zeros(0, 4), torch.zeros(0))])
    assert reg.item() == 0 and cls.item() == 0
    with pytest.raises(ValueError, match=r'labels: expected foreground indices in \[0, 2\)'):
        loss(loc, conf, PRIORS, [(cxcywh_to_xyxy(PRIORS[:1]), torch.tensor([2]))])
    with pytest.raises(ValueError, match='expected 1 targets, got 2'):
        loss(loc, conf, PRIORS, [(torch.zeros(0, 4), torch.zeros(0))] * 2)


def _batch(size=32):
    """Two clips with one actor each; boxes normalised xyxy."""
    g = torch.Generator().manual_seed(0)
    clip = torch.rand(2, 3, 3, size, size, generator=g)
    u = size // 32
    clip[0, :, :, 5 * u:20 * u, 10 * u:22 * u] = 0.9          # a bright, still actor
    for t in range(3):                                           # a dark one moving right
        clip[1, t, :, 15 * u:30 * u, (2 + 2 * t) * u:(12 + 2 * t) * u] = 0.1
    targets = [(torch.tensor([[10 / 32, 5 / 32, 22 / 32, 20 / 32]]), torch.tensor([0])),
               (torch.tensor([[6 / 32, 15 / 32, 16 / 32, 30 / 32]]), torch.tensor([1]))]
    return clip, targets


def test_training_after_detect_differentiates_through_decoded_boxes():
    """Priors made under detect()'s inference mode must not leak into training."""
    torch.manual_seed(0)
    config = DetectorConfig.from_dict(dict(TINY, input_size=32, device='cpu'))
    detector = build_detector(config)
    detector.detect([torch.randint(0, 255, (3, 32, 32, 3), dtype=torch.uint8).numpy()])
    model = detector.model.train()
    clip, _ = _batch(32)
    out = model(clip)
    boxes = CODER.decode(out.loc, out.priors)                 # (N, P, 4) normalised xyxy
    boxes.abs().sum().backward()
    assert model.head.loc[0].weight.grad is not None


def test_batch_of_one_fails_with_a_clear_message_when_a_map_is_one_cell():
    model = build_model(DetectorConfig.from_dict(dict(TINY, input_size=32))).train()
    assert model.min_train_batch == 2                          # 32 px: the last map is 1x1
    clip, targets = _batch(32)
    with pytest.raises(ValueError, match='training batch of at least 2 clips, got 1'):
        model(clip[:1])
    model.eval()
    assert model(clip[:1]).loc.shape[0] == 1                 # inference takes one clip
    big = build_model(DetectorConfig.from_dict(dict(TINY, input_size=300)))
    assert big.min_train_batch == 1                            # lite at 300: last map 2x2


def test_loss_falls_by_more_than_half_when_overfitting():
    torch.manual_seed(0)
    config = DetectorConfig.from_dict(dict(TINY, input_size=32))
    model = build_model(config).train()
    criterion = DetectionLoss.from_config(config)
    clip, targets = _batch(32)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(12):
        terms = criterion(model(clip), targets)
        optimiser.zero_grad()
        terms.total.backward()
        optimiser.step()
        losses.append(terms.total.item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert terms.flow.item() == 0.0                          # DIS: nothing to learn


def test_total_adds_flow_loss_and_freezing():
    torch.manual_seed(0)
    config = DetectorConfig.from_dict(dict(TINY, flow=dict(TINY['flow'], kind='pwc')))
    model = build_model(config).train()
    clip, targets = _batch(64)
    gt = [torch.zeros(2, 2, 64, 64), torch.ones(2, 2, 64, 64)]
    criterion = DetectionLoss.from_config(config)
    assert criterion.flow_level_weights == config.flow.loss_weights
    terms = criterion(model(clip), targets, gt)
    assert terms.flow.item() > 0
    mean = DetectionLoss.from_config(config, flow_reduction='mean')(model(clip), targets, gt)
    assert 0 < mean.flow.item() < terms.flow.item()
    assert terms.total.item() == pytest.approx(
        terms.conf.item() + terms.reg.item() + terms.flow.item(), rel=1e-5)
    terms.total.backward()
    pwc = list(model.motion.flow_subnet.parameters())
    assert all(p.grad is not None for p in pwc)
    assert DetectionLoss.from_config(config)(model(clip), targets, None).flow.item() == 0.0
    with pytest.raises(ValueError, match='expected 2 ground-truth flows'):
        DetectionLoss.from_config(config)(model(clip), targets, gt[:1])

    model.zero_grad(set_to_none=True)
    model.freeze_flow()
    terms = DetectionLoss.from_config(config)(model(clip), targets, gt)
    terms.total.backward()
    assert all(p.grad is None for p in pwc)
    assert not model.motion.flow_subnet.training and model.training
    assert any(p.grad is not None for p in model.backbone.parameters())
    model.unfreeze_flow()
    DetectionLoss.from_config(config)(model(clip), targets, gt).total.backward()
    assert all(p.grad is not None for p in pwc)
