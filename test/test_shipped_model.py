# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The shipped CPU model: its file is the one listed, and it still scores what models/ says."""

import hashlib
import json

from conftest import REPO
import pytest

from stal_ros.config import TubeConfig
from stal_ros.data.motion import ground_truth, make_split, MotionConfig
from stal_ros.evaluate import evaluate
from stal_ros.net.detector import build_detector

TOLERANCE = 0.02


@pytest.fixture(scope='module')
def shipped():
    """Return models/lite_dis.json, the model and its fixed test videos (loaded once)."""
    info = json.loads((REPO / 'models' / 'lite_dis.json').read_text())
    detector = build_detector(checkpoint=REPO / 'models' / 'lite_dis.pt', device='cpu')
    # The benchmark's own 128 x 128 videos, as in training; the model resizes them.
    videos = make_split('test', info['ci_check']['videos'], MotionConfig())
    return info, detector, videos


def test_shipped_model_is_the_listed_file(repo):
    info = json.loads((repo / 'models' / 'lite_dis.json').read_text())
    path = repo / 'models' / 'lite_dis.pt'
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info['sha256']
    assert path.stat().st_size < 25 * 2 ** 20


def test_shipped_model_scores_its_recorded_frame_map_on_a_fixed_test_set(shipped):
    info, detector, videos = shipped
    check = info['ci_check']
    numbers = evaluate(detector, videos, ground_truth(videos), tubes=TubeConfig(), trim=None)
    assert numbers['frame'].mean_ap >= check['frame_map'] - TOLERANCE
    assert numbers['video'].mean_ap(0.5) >= check['video_map_0.5'] - TOLERANCE


def test_shipped_model_needs_motion_to_recognise_the_actions(shipped):
    """Clips without motion (the target frame repeated K times) leave the model nearly blind.

    The benchmark's classes are defined only by how actors move, so a model that reads the
    class from the flow must lose almost everything when the flow is zero.  The figures with
    and without motion on these videos are recorded in models/lite_dis.json (``ci_check``).
    """
    from stal_ros.frames import FrameBuffer
    from stal_ros.metrics import frame_ap
    from stal_ros.metrics.annotations import FrameDetections
    info, detector, videos = shipped
    check = info['ci_check']
    k = detector.config.frames.num_frames
    parts = []
    for video in videos:
        clips = []
        for t, frame in enumerate(video.frames):
            buffer = FrameBuffer(detector.config.frames)
            for j in range(k):                       # K copies of frame t: a still scene
                clip = buffer.push(frame, t * 1000 + j + 1)
            clips.append(clip)
        for t, dets in enumerate(detector.detect(clips)):
            parts.append(FrameDetections.from_detections(video.name, t, dets))
    still = frame_ap(ground_truth(videos), FrameDetections.concatenate(parts), 0.5).mean_ap
    assert still <= check['static_frame_map'] + TOLERANCE
    assert still < 0.25 * check['frame_map']
