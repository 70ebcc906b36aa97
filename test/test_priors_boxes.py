# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Priors, head/prior agreement, box formats, encode/decode, NMS and post-processing."""

import math

import numpy as np
import pytest
import torch

from stal_ros.config import BackboneConfig, HeadConfig, PostprocessConfig
from stal_ros.net.backbone import build_backbone, map_sizes
from stal_ros.net.box_coder import BoxCoder, cxcywh_to_xyxy, xyxy_to_cxcywh
from stal_ros.net.head import SSDHead
from stal_ros.net.postprocess import nms_per_class, Postprocessor
from stal_ros.net.priors import PriorBox
from stal_ros.net.transform import ClipTransform

SSD300_MAPS = ((38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1))
CODER = BoxCoder((0.1, 0.2))


def priors_of(config: HeadConfig) -> PriorBox:
    """Make the prior generator that ``build_model`` makes from a ``HeadConfig``."""
    return PriorBox(scales=config.scales,
                    aspect_ratios=[config.ratios(level) for level in range(6)],
                    clip=config.clip_priors)


def encode(boxes, priors, variances):
    return BoxCoder(variances).encode(boxes, priors)


def decode(offsets, priors, variances):
    return BoxCoder(variances).decode(offsets, priors)


def postprocess(loc, conf, priors, sizes, variances, config):
    """Head outputs -> camera-pixel Detections, as ``Detector.detect`` does after the model."""
    post = Postprocessor(box_coder=BoxCoder(variances), score_threshold=config.score_threshold,
                         nms_iou=config.nms_iou, pre_nms_top_k=config.pre_nms_top_k,
                         top_k=config.top_k, max_detections=config.max_detections)
    transform = ClipTransform(input_size=32, num_frames=3, target_index=2)
    return transform.to_detections(post(loc, conf, priors), sizes)


def test_ssd300_and_rfb300_prior_counts():
    ssd = priors_of(HeadConfig(ratios_per_scale=(1, 2, 2, 2, 1, 1)))
    assert ssd(SSD300_MAPS).shape == (8732, 4)           # the SSD300 figure
    rfb = priors_of(HeadConfig())
    assert rfb(SSD300_MAPS).shape == (11620, 4)          # 6,6,6,6,4,4 priors per cell
    assert rfb.count(SSD300_MAPS) == 11620


def test_first_cell_priors_literal_values():
    priors = priors_of(HeadConfig())(SSD300_MAPS)
    c = 0.5 / 38
    r2, r3 = math.sqrt(2), math.sqrt(3)
    expected = torch.tensor([
        [c, c, 0.1, 0.1], [c, c, math.sqrt(0.02), math.sqrt(0.02)],
        [c, c, 0.1 * r2, 0.1 / r2], [c, c, 0.1 / r2, 0.1 * r2],
        [c, c, 0.1 * r3, 0.1 / r3], [c, c, 0.1 / r3, 0.1 * r3],
        [1.5 / 38, c, 0.1, 0.1]])                          # next cell along x
    assert torch.allclose(priors[:7], expected, atol=1e-6)
    # Last prior: the 1x1 map, ratio 2 rotated box of scale 0.88, clipped to 1.
    assert torch.allclose(priors[-1], torch.tensor([0.5, 0.5, 0.88 / r2, min(1.0, 0.88 * r2)]))
    assert priors.min() >= 0 and priors.max() <= 1


def test_priors_unclipped():
    box = priors_of(HeadConfig(clip_priors=False))
    a = box(SSD300_MAPS)
    assert a.max() > 1.0                                   # sqrt(0.88 * 1.05) * sqrt(2) > 1
    with pytest.raises(ValueError, match='expected 6 feature-map sizes, got 2'):
        box(SSD300_MAPS[:2])


@pytest.mark.parametrize('kind, size', [('lite', 64), ('lite', 100), ('vgg16_rfb', 268)])
def test_head_outputs_match_number_of_priors(kind, size):
    torch.manual_seed(0)
    backbone = build_backbone(BackboneConfig(kind=kind, width=0.0625)).eval()
    config = HeadConfig()
    priors = priors_of(config)
    head = SSDHead(backbone.out_channels, priors.priors_per_cell, num_classes=5)
    with torch.no_grad():
        maps = backbone(torch.rand(2, 3, size, size))
        loc, conf = head(maps)
    p = priors(map_sizes(maps)).shape[0]
    assert loc.shape == (2, p, 4) and conf.shape == (2, p, 5)


def test_head_order_matches_prior_order():
    # A head whose loc conv outputs the channel index makes the prior order observable.
    head = SSDHead((1,) * 6, (2,) * 6, num_classes=2)
    for conv in head.loc:
        torch.nn.init.zeros_(conv.weight)
        conv.bias.data = torch.arange(8, dtype=torch.float32)
    maps = [torch.zeros(1, 1, 2, 3)] + [torch.zeros(1, 1, 1, 1)] * 5
    loc, _ = head(maps)
    assert loc.shape == (1, 2 * 3 * 2 + 5 * 2, 4)
    # Each cell holds 2 priors: offsets 0..3 for prior a = 0 and 4..7 for a = 1.
    assert torch.equal(loc[0, 0], torch.tensor([0., 1., 2., 3.]))
    assert torch.equal(loc[0, 1], torch.tensor([4., 5., 6., 7.]))


def test_format_conversion_literals():
    xyxy = torch.tensor([[10., 20., 30., 60.]])
    assert torch.equal(xyxy_to_cxcywh(xyxy), torch.tensor([[20., 40., 20., 40.]]))
    assert torch.equal(cxcywh_to_xyxy(xyxy_to_cxcywh(xyxy)), xyxy)


def test_encode_literal_and_decode_zero_is_prior():
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    gt = torch.tensor([[0.42, 0.3, 0.62, 0.7]])         # cx 0.52, cy 0.5, w 0.2, h 0.4
    t = encode(gt, priors, (0.1, 0.2))
    assert torch.allclose(t, torch.tensor([[0.02 / (0.1 * 0.2), 0.0, 0.0, 0.0]]), atol=1e-5)
    assert torch.allclose(decode(torch.zeros(1, 4), priors, (0.1, 0.2)),
                          cxcywh_to_xyxy(priors))


def test_encode_decode_round_trip():
    g = torch.Generator().manual_seed(0)
    priors = priors_of(HeadConfig())(SSD300_MAPS)
    xy = torch.rand(priors.shape[0], 2, generator=g) * 0.6
    wh = torch.rand(priors.shape[0], 2, generator=g) * 0.4 + 0.01
    boxes = torch.cat([xy, xy + wh], dim=1)
    back = decode(encode(boxes, priors, (0.1, 0.2)), priors, (0.1, 0.2))
    assert torch.allclose(back, boxes, atol=1e-5)
    batched = decode(encode(boxes.expand(3, -1, -1), priors, (0.1, 0.2)), priors, (0.1, 0.2))
    assert batched.shape == (3, priors.shape[0], 4)


def test_nms_keeps_the_right_boxes():
    boxes = torch.tensor([[0., 0., 10., 10.],      # 0: class 0, best
                          [1., 1., 11., 11.],      # 1: class 0, IoU 0.68 with 0 -> dropped
                          [20., 20., 30., 30.],    # 2: class 0, disjoint -> kept
                          [1., 1., 11., 11.],      # 3: class 1, other class -> kept
                          [0., 0., 10., 9.]])      # 4: class 1, IoU 0.61 with 3 -> dropped
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = torch.tensor([0, 0, 0, 1, 1])
    assert nms_per_class(boxes, scores, labels, 0.45).tolist() == [0, 2, 3]
    assert nms_per_class(boxes, scores, labels, 0.75).tolist() == [0, 1, 2, 3, 4]
    assert nms_per_class(boxes, scores, labels, 0.75, top_k=2).tolist() == [0, 1, 3, 4]


def _one_box_outputs(num_priors=4, k=3):
    priors = torch.tensor([[0.25, 0.25, 0.2, 0.2], [0.75, 0.75, 0.2, 0.2],
                           [0.5, 0.5, 0.4, 0.4], [0.3, 0.7, 0.2, 0.2]])[:num_priors]
    loc = torch.zeros(1, num_priors, 4)
    conf = torch.full((1, num_priors, k), -5.0)
    conf[..., 0] = 5.0                                   # background everywhere ...
    conf[0, 1] = torch.tensor([-5.0, -5.0, 5.0])         # ... but prior 1 is class 2 (fg 1)
    return loc, conf, priors


def test_postprocess_maps_to_pixels_of_each_image():
    loc, conf, priors = _one_box_outputs()
    config = PostprocessConfig(score_threshold=0.5)
    loc2, conf2 = loc.expand(2, -1, -1), conf.expand(2, -1, -1)
    dets = postprocess(loc2, conf2, priors, [(100, 200), (480, 640)], (0.1, 0.2), config)
    assert [len(d) for d in dets] == [1, 1]
    np.testing.assert_allclose(dets[0].boxes, [[130., 65., 170., 85.]], rtol=1e-5)
    np.testing.assert_allclose(dets[1].boxes, [[416., 312., 544., 408.]], rtol=1e-5)
    assert dets[0].labels.tolist() == [1] and dets[0].boxes.dtype == np.float32
    assert dets[0].scores[0] > 0.99
    assert dets[0].class_scores.shape == (1, 2)
    assert dets[0].class_scores[0, 1] == pytest.approx(dets[0].scores[0])


def test_postprocess_threshold_topk_max_and_clipping():
    loc, conf, priors = _one_box_outputs()
    none = postprocess(loc, conf, priors, [(10, 10)], (0.1, 0.2),
                       PostprocessConfig(score_threshold=0.99995))
    assert len(none[0]) == 0 and none[0].boxes.shape == (0, 4)
    uniform = torch.zeros(1, 4, 3)                       # every class 1/3 everywhere
    dets = postprocess(loc, uniform, priors, [(10, 10)], (0.1, 0.2),
                       PostprocessConfig(score_threshold=0.3, nms_iou=1.0, top_k=3,
                                         max_detections=5))[0]
    assert len(dets) == 5                                # 2 classes x top 3, capped at 5
    assert np.bincount(dets.labels).max() <= 3
    big = torch.tensor([[[0., 0., 10., 10.]]]).expand(1, 4, 4)   # huge boxes -> clipped
    dets = postprocess(big, conf, priors, [(50, 80)], (0.1, 0.2),
                       PostprocessConfig())[0]
    assert dets.boxes.min() >= 0 and dets.boxes[:, [0, 2]].max() <= 80
    assert dets.boxes[:, [1, 3]].max() <= 50
