# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Online score smoothing along class-agnostic actor tracks (stal_ros.tubes.smoothing)."""

import numpy as np
import pytest

from stal_ros.config import ConfigError, TubeConfig
from stal_ros.structures import Detections
from stal_ros.tubes import ScoreSmoother

ACTOR = [10.0, 10.0, 50.0, 90.0]
ELSEWHERE = [100.0, 10.0, 140.0, 90.0]


def frame(*boxes):
    """Return the Detections of (box, label, score, class scores) tuples."""
    if not boxes:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                          np.zeros(0, np.int64), np.zeros((0, 2), np.float32))
    return Detections(np.array([b for b, *_ in boxes], np.float32),
                      np.array([s for _, _, s, _ in boxes], np.float32),
                      np.array([k for _, k, _, _ in boxes], np.int64),
                      np.array([c for *_, c in boxes], np.float32))


def test_a_tracks_past_outweighs_one_hesitant_frame():
    smoother = ScoreSmoother(TubeConfig(smooth_memory=0.6, smooth_weight=0.5), 2)
    for _ in range(3):        # the actor does class 0 for three frames
        out = smoother.update(frame((ACTOR, 0, 0.8, [0.8, 0.1])))
        np.testing.assert_allclose(out.scores, [0.8], atol=1e-6)
    # One frame prefers class 1.  The track follows its best box (label 1, class scores
    # [0.4, 0.5]): average = 0.6 * [0.8, 0.1] + 0.4 * [0.4, 0.5] = [0.64, 0.26].  The class-1
    # box is pulled down to 0.5 * 0.5 + 0.5 * 0.26; the class-0 box would rise (0.5 * 0.4 +
    # 0.5 * 0.64) but scores never do.
    hesitant = frame((ACTOR, 1, 0.5, [0.4, 0.5]), (ACTOR, 0, 0.4, [0.4, 0.5]))
    out = smoother.update(hesitant)
    np.testing.assert_allclose(out.scores, [0.5 * 0.5 + 0.5 * 0.26, 0.4], atol=1e-6)
    assert out.scores[1] > out.scores[0]           # class 0 ranks first again
    # Boxes, labels and class scores are the frame's own.
    np.testing.assert_array_equal(out.boxes, hesitant.boxes)
    np.testing.assert_array_equal(out.labels, hesitant.labels)
    np.testing.assert_array_equal(out.class_scores, hesitant.class_scores)
    assert smoother.num_tracks == 1
    # The action ends: a weak class-0 box stays weak (lifted, it would keep a tube alive).
    out = smoother.update(frame((ACTOR, 0, 0.05, [0.05, 0.02])))
    np.testing.assert_allclose(out.scores, [0.05], atol=1e-6)


def test_separate_actors_keep_separate_tracks_and_new_ones_start_from_their_own_scores():
    smoother = ScoreSmoother(TubeConfig(), 2)
    smoother.update(frame((ACTOR, 0, 0.9, [0.9, 0.05])))
    out = smoother.update(frame((ACTOR, 0, 0.9, [0.9, 0.05]),
                                (ELSEWHERE, 1, 0.7, [0.2, 0.7])))
    # The new actor's first frame: its average is its own class scores, so no change.
    np.testing.assert_allclose(out.scores, [0.9, 0.7], atol=1e-6)
    assert smoother.num_tracks == 2


def test_weak_boxes_start_no_track_and_tracks_end_after_the_jump_gap():
    config = TubeConfig(score_threshold=0.1, jump_gap=2)
    smoother = ScoreSmoother(config, 2)
    out = smoother.update(frame((ACTOR, 0, 0.05, [0.05, 0.9])))
    assert smoother.num_tracks == 0 and out.scores.tolist() == pytest.approx([0.05])
    smoother.update(frame((ACTOR, 0, 0.8, [0.8, 0.1])))
    for _ in range(2):
        smoother.update(frame())
    assert smoother.num_tracks == 1                # 2 frames without a box: still alive
    smoother.update(frame())
    assert smoother.num_tracks == 0                # the third ends it
    out = smoother.update(frame((ACTOR, 1, 0.6, [0.3, 0.6])))
    np.testing.assert_allclose(out.scores, [0.6], atol=1e-6)   # a fresh track
    smoother.reset()
    assert smoother.num_tracks == 0


def test_off_and_without_class_scores_the_frame_passes_unchanged():
    det = frame((ACTOR, 0, 0.8, [0.8, 0.1]), (ACTOR, 1, 0.3, [0.8, 0.1]))
    smoother = ScoreSmoother(TubeConfig(smooth_memory=0.0), 2)
    assert smoother.update(det) is det and smoother.num_tracks == 0
    bare = Detections(det.boxes, det.scores, det.labels)
    assert ScoreSmoother(TubeConfig(), 2).update(bare) is bare


def test_bad_settings_and_inputs_are_named():
    with pytest.raises(ConfigError, match='smooth_memory'):
        TubeConfig(smooth_memory=1.0)
    with pytest.raises(ConfigError, match='smooth_weight'):
        TubeConfig(smooth_weight=1.5)
    with pytest.raises(ValueError, match='expected 3 columns, got 2'):
        ScoreSmoother(TubeConfig(), 3).update(frame((ACTOR, 0, 0.8, [0.8, 0.1])))
    with pytest.raises(TypeError, match='expected TubeConfig'):
        ScoreSmoother({'smooth_memory': 0.5}, 2)
