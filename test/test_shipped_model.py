# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""The shipped CPU model: its file is the one listed, and it still scores what models/ says."""

import hashlib
import json

from stal_ros.config import TubeConfig
from stal_ros.data.motion import ground_truth, make_split, MotionConfig
from stal_ros.evaluate import evaluate
from stal_ros.net.detector import build_detector

TOLERANCE = 0.02


def test_shipped_model_scores_its_recorded_frame_map_on_a_fixed_test_set(repo):
    info = json.loads((repo / 'models' / 'lite_dis.json').read_text())
    path = repo / 'models' / 'lite_dis.pt'
    assert hashlib.sha256(path.read_bytes()).hexdigest() == info['sha256']
    assert path.stat().st_size < 25 * 2 ** 20
    detector = build_detector(checkpoint=path, device='cpu')
    check = info['ci_check']
    side = detector.config.input_size
    videos = make_split('test', check['videos'], MotionConfig(height=side, width=side))
    numbers = evaluate(detector, videos, ground_truth(videos), tubes=TubeConfig(), trim=None)
    assert numbers['frame'].mean_ap >= check['frame_map'] - TOLERANCE
    assert numbers['video'].mean_ap(0.5) >= check['video_map_0.5'] - TOLERANCE
