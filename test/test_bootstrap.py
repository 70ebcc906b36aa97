# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The bootstrap over videos: each draw scores the drawn videos, a video drawn twice twice."""

import numpy as np
import pytest

from stal_ros.metrics import (DetectedTube, frame_ap, FrameDetections, GroundTruth,
                              GroundTruthTube, VideoAnnotations)
from stal_ros.metrics.bootstrap import bootstrap_map

BOX = np.array([0.0, 0.0, 10.0, 10.0])


def two_videos():
    """Video 'hit': a 5-frame tube of class 0, detected on every frame and as a tube.

    Video 'miss': the same tube, with nothing detected.  Each video holds half the split's
    true boxes, so a draw of (hit, hit) scores 1, (hit, miss) or (miss, hit) 0.5, (miss, miss)
    0, for frame-mAP and video-mAP alike.
    """
    frames = np.arange(5)
    boxes = np.tile(BOX, (5, 1))
    gt = GroundTruth([VideoAnnotations(v, 5, (GroundTruthTube(v, 0, frames, boxes),))
                      for v in ('hit', 'miss')], 1)
    dets = FrameDetections(['hit'] * 5, frames, np.zeros(5), np.full(5, 0.9), boxes)
    tubes = [DetectedTube('hit', 0, 0.9, frames, boxes)]
    return gt, dets, tubes


def test_draws_score_the_drawn_videos_and_repeat_with_the_seed():
    gt, dets, tubes = two_videos()
    spread = bootstrap_map(gt, dets, tubes, draws=60, seed=3)
    for name in ('frame_map', 'video_map'):
        interval = spread[name]
        assert interval.value == pytest.approx(0.5)
        assert interval.samples.shape == (60,)
        assert set(np.round(interval.samples, 6)) <= {0.0, 0.5, 1.0}
        # All three outcomes occur in 60 draws (each has probability >= 1/4).
        assert set(np.round(interval.samples, 6)) == {0.0, 0.5, 1.0}
        assert interval.low == 0.0 and interval.high == 1.0
        assert 0.3 < interval.sd < 0.45            # sqrt(1/8) = 0.354 in the limit
    # A frame draw and a video draw of the same videos agree here (both depend on the hits).
    assert np.array_equal(spread['frame_map'].samples, spread['video_map'].samples)
    again = bootstrap_map(gt, dets, tubes, draws=60, seed=3)
    assert np.array_equal(again['frame_map'].samples, spread['frame_map'].samples)
    other = bootstrap_map(gt, dets, tubes, draws=60, seed=4)
    assert not np.array_equal(other['frame_map'].samples, spread['frame_map'].samples)


def test_perfect_detections_have_no_spread():
    rng = np.random.default_rng(0)
    videos, records, tubes = [], [], []
    for v in range(6):
        first, n = int(rng.integers(0, 5)), int(rng.integers(3, 8))
        label = v % 3
        boxes = np.tile(rng.uniform(0, 50, 2), 2) + np.array([0, 0, 20, 30])
        boxes = np.tile(boxes, (n, 1))
        frames = np.arange(first, first + n)
        tube = GroundTruthTube(f'v{v}', label, frames, boxes)
        videos.append(VideoAnnotations(f'v{v}', 20, (tube,)))
        records += [(f'v{v}', int(f), label, 0.8, b) for f, b in zip(frames, boxes)]
        tubes.append(DetectedTube(f'v{v}', label, 0.8, frames, boxes))
    gt = GroundTruth(videos, 3)
    dets = FrameDetections.from_records(records)
    assert frame_ap(gt, dets).mean_ap == pytest.approx(1.0)
    spread = bootstrap_map(gt, dets, tubes, draws=20)
    for interval in spread.values():
        assert np.allclose(interval.samples, 1.0) and interval.sd == pytest.approx(0.0)
        assert interval.to_dict() == pytest.approx(
            {'value': 1.0, 'sd': 0.0, 'low': 1.0, 'high': 1.0})


def test_bad_arguments_are_named():
    gt, dets, tubes = two_videos()
    with pytest.raises(ValueError, match='draws: expected an int >= 1, got 0'):
        bootstrap_map(gt, dets, tubes, draws=0)
    with pytest.raises(ValueError, match=r'level: expected a value in \(0, 1\), got 1.5'):
        bootstrap_map(gt, dets, tubes, draws=5, level=1.5)
