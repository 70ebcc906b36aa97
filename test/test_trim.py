# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""Offline tube post-processing: ROAD's two-label Viterbi trimming and the minimum length."""

import itertools

import numpy as np
import pytest

from stal_ros.config import TrimConfig, TubeConfig
from stal_ros.metrics import DetectedTube
from stal_ros.structures import Detections
from stal_ros.tubes import detected_tube, OnlineTubeLinker, trim_tube, trim_tubes
from stal_ros.tubes.trim import viterbi_two_label


def tube(scores, first=1, video='v', label=2):
    n = len(scores)
    boxes = np.tile([10.0, 20.0, 50.0, 90.0], (n, 1)) + np.arange(n)[:, None]
    return DetectedTube(video, label, float(np.mean(scores)), np.arange(first, first + n),
                        boxes, np.asarray(scores, np.float64))


def objective(labels, fg, bg, alpha):
    gain = np.where(labels, fg, bg).sum()
    return gain - alpha * np.count_nonzero(labels[1:] != labels[:-1])


def test_viterbi_hand_computed():
    s = np.array([0.9, 0.9, 0.1, 0.9, 0.9])
    # alpha 3: one dip is cheaper than two switches (3.7 vs 4.5 - 6).
    assert viterbi_two_label(s, 1 - s, 3.0).tolist() == [True] * 5
    # alpha 0: each frame takes its better label.
    assert viterbi_two_label(s, 1 - s, 0.0).tolist() == [True, True, False, True, True]
    # alpha 0.5: leaving for the dip gains 0.8 and costs 1.0, so stay.
    assert viterbi_two_label(s, 1 - s, 0.5).tolist() == [True] * 5
    # Ties go to 'action' (MATLAB max takes the first row, the action row in ROAD).
    assert viterbi_two_label([0.5, 0.5], [0.5, 0.5], 1.0).tolist() == [True, True]
    assert viterbi_two_label([], [], 3.0).tolist() == []


def test_viterbi_is_optimal_by_brute_force():
    rng = np.random.default_rng(0)
    for n in range(1, 9):
        for alpha in (0.0, 0.3, 1.0, 3.0):
            fg = rng.random(n)
            bg = rng.random(n)
            best = max(objective(np.array(lab, bool), fg, bg, alpha)
                       for lab in itertools.product([False, True], repeat=n))
            got = viterbi_two_label(fg, bg, alpha)
            assert objective(got, fg, bg, alpha) == pytest.approx(best)


def test_trimming_cuts_background_ends_and_applies_min_length():
    scores = [0.1] * 5 + [0.9] * 10 + [0.1] * 5
    pieces = trim_tube(tube(scores), TrimConfig(alpha=3.0, min_length=8))
    assert len(pieces) == 1
    p = pieces[0]
    # 5 background frames gain 5 * 0.8 = 4 > one switch (3): both ends are cut.
    np.testing.assert_array_equal(p.frames, np.arange(6, 16))
    assert p.score == pytest.approx(0.9) and (p.video, p.label) == ('v', 2)
    np.testing.assert_array_equal(p.boxes, tube(scores).boxes[5:15])
    assert trim_tube(tube(scores), TrimConfig(alpha=3.0, min_length=11)) == []
    # With alpha 5 a 5-frame end is not worth a switch (4 < 5): nothing is cut.
    assert trim_tube(tube(scores), TrimConfig(alpha=5.0, min_length=8))[0].frames.size == 20


def test_trimming_splits_a_tube_into_action_runs():
    scores = [0.9] * 9 + [0.05] * 9 + [0.8] * 9
    pieces = trim_tube(tube(scores), TrimConfig(alpha=3.0, min_length=8))
    assert [p.frames.tolist()[::8] for p in pieces] == [[1, 9], [19, 27]]
    assert [round(p.score, 6) for p in pieces] == [0.9, 0.8]


def test_disabled_trimming_only_drops_short_tubes():
    cfg = TrimConfig(enabled=False, min_length=8)
    short, long_ = tube([0.1] * 7), tube([0.1] * 8)
    assert trim_tubes([short, long_], cfg) == [long_]
    assert trim_tube(DetectedTube('v', 0, 0.5, np.arange(9), np.zeros((9, 4))), cfg)


def test_trimming_needs_frame_scores():
    bare = DetectedTube('v', 0, 0.5, np.arange(9), np.zeros((9, 4)))
    with pytest.raises(ValueError, match='frame_scores'):
        trim_tube(bare, TrimConfig())
    with pytest.raises(ValueError, match='background_scores'):
        trim_tube(tube([0.5] * 9), TrimConfig(), background_scores=np.ones(3))
    with pytest.raises(ValueError, match='finite'):
        viterbi_two_label([0.5, float('nan')], [0.5, 0.5], 1.0)


def test_real_background_scores_can_be_given():
    s = np.full(12, 0.6)
    bg = np.array([0.95] * 4 + [0.1] * 8)
    pieces = trim_tube(tube(s), TrimConfig(alpha=1.0, min_length=8), background_scores=bg)
    np.testing.assert_array_equal(pieces[0].frames, np.arange(5, 13))


def test_linker_tube_converts_for_the_evaluation():
    lk = OnlineTubeLinker(TubeConfig(jump_gap=3), 1)
    for t in range(12):
        d = (Detections.empty() if t in (4, 5) else
             Detections(np.array([[t, 0, t + 10, 10]], np.float32), np.array([0.7], np.float32),
                        np.array([0])))
        lk.update(d, t)
    (linked,) = lk.flush()
    dt = detected_tube(linked, 'video_01', frame_offset=1)
    np.testing.assert_array_equal(dt.frames, np.arange(1, 13))
    np.testing.assert_allclose(dt.boxes[4:6, 0], [3, 3])  # gap filled with the last box
    assert dt.score == pytest.approx(0.7) and dt.label == 0
    assert trim_tube(dt, TrimConfig(min_length=8))[0].frames.size == 12
